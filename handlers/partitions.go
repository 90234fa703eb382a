package handlers

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"

	"auditdb/handlers/render"
	"auditdb/models"
	"auditdb/views/components"
	"auditdb/views/pages/retention"
)

// PartitionAdmin shows the partitions and runs the ensure and drop-expired actions.
type PartitionAdmin interface {
	Overview(ctx context.Context, now time.Time) ([]models.PartitionInfo, error)
	EnsurePreview(ctx context.Context, now time.Time) ([]string, error)
	DropPreview(ctx context.Context, now time.Time) ([]models.Partition, error)
	Ensure(ctx context.Context, org string, now time.Time, confirm string, by models.Actor) ([]string, error)
	DropExpired(ctx context.Context, org string, now time.Time, confirm string, by models.Actor) ([]models.Partition, error)
}

// PartitionDeps is what the partitions page needs.
type PartitionDeps struct {
	Partitions PartitionAdmin
	Now        func() time.Time
}

// The actions of the partitions page (?preview= and the path of their POST).
const (
	partitionsEnsure = "ensure"
	partitionsDrop   = "drop-expired"
)

// PartitionsPage lists the partitions; ?preview=ensure or ?preview=drop-expired adds the
// action's dry run and its confirmation form.
func PartitionsPage(d PartitionDeps) fiber.Handler {
	return func(c *fiber.Ctx) error {
		return renderPartitions(c, d, fiber.StatusOK, c.Query("preview"), nil)
	}
}

// EnsurePartitions creates the missing partitions once the typed confirmation matches the
// dry run.
func EnsurePartitions(d PartitionDeps) fiber.Handler {
	return func(c *fiber.Ctx) error {
		v := render.ViewerOf(c)
		created, err := d.Partitions.Ensure(c.UserContext(), v.OrgID, d.Now(), c.FormValue("confirm"), ActorOf(c))
		if fe := refusalOf(err); fe != nil {
			return renderPartitions(c, d, render.StatusOf(err), partitionsEnsure, fe)
		} else if err != nil {
			return err
		}
		return redirectDone(c, "/retention/partitions", donePartitionsEnsured, strconv.Itoa(len(created)))
	}
}

// DropExpiredPartitions drops the partitions past retention once the typed confirmation
// matches the dry run.
func DropExpiredPartitions(d PartitionDeps) fiber.Handler {
	return func(c *fiber.Ctx) error {
		v := render.ViewerOf(c)
		dropped, err := d.Partitions.DropExpired(c.UserContext(), v.OrgID, d.Now(), c.FormValue("confirm"), ActorOf(c))
		if fe := refusalOf(err); fe != nil {
			return renderPartitions(c, d, render.StatusOf(err), partitionsDrop, fe)
		} else if err != nil {
			return err
		}
		return redirectDone(c, "/retention/partitions", donePartitionsDropped, strconv.Itoa(len(dropped)))
	}
}

func renderPartitions(c *fiber.Ctx, d PartitionDeps, status int, preview string, fe *components.FormError) error {
	v := render.ViewerOf(c)
	ctx := c.UserContext()
	now := d.Now()
	all, err := d.Partitions.Overview(ctx, now)
	if err != nil {
		return err
	}
	p := retention.PartitionsProps{CSRF: v.Session.CSRFToken(), Flash: flash(c), Error: fe}
	if fe != nil {
		p.Flash = ""
	}
	for _, part := range all {
		rows := "never analyzed"
		if part.Rows >= 0 {
			rows = "≈ " + count(part.Rows)
		}
		p.Rows = append(p.Rows, retention.PartitionRow{Name: part.Name, Range: components.Date(part.From) + " – " + components.Date(part.To),
			Rows: rows, TableSize: bytesOf(part.TableBytes), IndexSize: bytesOf(part.IndexBytes), State: part.State})
	}
	switch preview {
	case partitionsEnsure:
		names, err := d.Partitions.EnsurePreview(ctx, now)
		if err != nil {
			return err
		}
		p.Preview = &retention.PartitionAction{Title: "Ensure partitions (dry run)", Names: names, Count: strconv.Itoa(len(names)),
			Summary: fmt.Sprintf("Would create %d partitions, from this month through %d months ahead:", len(names), models.MonthsAhead),
			Post:    "/retention/partitions/" + partitionsEnsure, Button: "Create partitions",
			Empty: fmt.Sprintf("Every partition from this month through %d months ahead exists: nothing to create.", models.MonthsAhead)}
	case partitionsDrop:
		parts, err := d.Partitions.DropPreview(ctx, now)
		if refusal := refusalOf(err); refusal != nil {
			p.Error = refusal
		} else if err != nil {
			return err
		}
		a := &retention.PartitionAction{Title: "Drop expired partitions (dry run)", Count: strconv.Itoa(len(parts)),
			Post: "/retention/partitions/" + partitionsDrop, Button: "Drop partitions",
			Empty: "No partition is entirely past retention (or under a legal hold): nothing to drop."}
		var rows int64
		for _, part := range parts {
			a.Names = append(a.Names, part.Name)
			if part.Rows > 0 {
				rows += part.Rows
			}
		}
		a.Summary = fmt.Sprintf("Would drop %d partitions, about %s rows, entirely past the longest retention. This cannot be undone:", len(parts), count(rows))
		p.Preview = a
	}
	return render.HTML(c, status, retention.Partitions(v.Shell("Partitions", "retention"), p))
}

// bytesOf formats a size in bytes as people read it.
func bytesOf(n int64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
