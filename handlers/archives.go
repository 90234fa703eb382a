package handlers

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"auditdb/handlers/render"
	"auditdb/models"
	eventviews "auditdb/views/pages/events"
	"auditdb/views/pages/retention"
)

// ArchiveBrowser reads an organization's retention archives. Load hands out an archive
// only once both checksums and its event count have matched; a mismatch raises the
// integrity alert and is an error wrapping models.ErrArchiveCorrupt.
type ArchiveBrowser interface {
	List(ctx context.Context, org string) ([]models.Archive, error)
	Get(ctx context.Context, org, id string) (*models.Archive, error)
	Load(ctx context.Context, org, id string) (*models.VerifiedArchive, error)
	RecordRetrieval(ctx context.Context, org, id, what string, by models.Actor) error
}

// ListArchives shows the current organization's archives with their metadata.
func ListArchives(archives ArchiveBrowser) fiber.Handler {
	return func(c *fiber.Ctx) error {
		v := render.ViewerOf(c)
		list, err := archives.List(c.UserContext(), v.OrgID)
		if err != nil {
			return err
		}
		p := retention.ArchivesProps{Superadmin: v.User.Superadmin, Rows: make([]retention.ArchiveRow, 0, len(list))}
		for i := range list {
			p.Rows = append(p.Rows, archiveRow(&list[i]))
		}
		return render.HTML(c, fiber.StatusOK, retention.Archives(v.Shell("Archives", "retention"), p))
	}
}

// archivePath is the page of an archive of the viewer's organization: its id without the
// organization, which the path never carries (the id is organization/policy/month/part).
func archivePath(a *models.Archive) string {
	return "/retention/archives/" + a.Policy + "/" + a.Month.Format("2006-01") + "/" + strconv.Itoa(a.Part)
}

// archiveID reads the archive id of the viewer's organization from the path; a malformed
// one is a 404 like an unknown one.
func archiveID(c *fiber.Ctx, v *render.Viewer) (string, error) {
	policy, month, part := c.Params("policy"), c.Params("month"), c.Params("part")
	if v.OrgID == "" || policy == "" || strings.ContainsAny(policy, "/\x00") {
		return "", models.NotFound("archive")
	}
	if _, err := time.Parse("2006-01", month); err != nil {
		return "", models.NotFound("archive")
	}
	if n, err := strconv.Atoi(part); err != nil || n <= 0 {
		return "", models.NotFound("archive")
	}
	return v.OrgID + "/" + policy + "/" + month + "/" + part, nil
}

func archiveRow(a *models.Archive) retention.ArchiveRow {
	r := retention.ArchiveRow{ID: a.ID, Policy: a.Policy, Month: a.Month.Format("2006-01"), Part: strconv.Itoa(a.Part),
		Count: count(a.EventCount), Retrieved: count(a.RetrievedCount), LastRetrieval: a.LastRetrievedAt, Deleted: a.DeletedAt,
		SHA256Original: a.SHA256Original, SHA256Stored: a.SHA256Compressed,
		OriginalSize: byteSize(a.OriginalSize), CompressedSize: byteSize(a.CompressedSize),
		Ratio: fmt.Sprintf("%.1f×", a.Ratio())}
	if a.EventCount > 0 {
		first, last := a.FirstEventAt, a.LastEventAt
		r.First, r.Last = &first, &last
		r.IDRange = strconv.FormatInt(a.MinEventID, 10) + "–" + strconv.FormatInt(a.MaxEventID, 10)
		r.LeafRange = strconv.FormatInt(a.MinLeafIndex, 10) + "–" + strconv.FormatInt(a.MaxLeafIndex, 10)
	} else {
		r.IDRange, r.LeafRange, r.Ratio = "—", "—", "—"
	}
	if a.DeletedAt == nil {
		r.Href = archivePath(a)
	}
	return r
}

// byteSize formats n bytes in B, KiB, MiB or GiB.
func byteSize(n int64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 2; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMG"[exp])
}

// ShowArchive shows an archive's metadata and one page of its events matching the events
// list's filters (an open time range is the archive's whole range), after checking the
// archive in full; htmx requests get the results fragment alone. A corrupt archive shows
// what failed and no event (status 500); each successful read counts as a retrieval.
func ShowArchive(archives ArchiveBrowser) fiber.Handler {
	return func(c *fiber.Ctx) error {
		v := render.ViewerOf(c)
		id, err := archiveID(c, v)
		if err != nil {
			return err
		}
		ctx := c.UserContext()
		meta, err := archives.Get(ctx, v.OrgID, id)
		if err != nil {
			return err
		}
		if meta.DeletedAt != nil {
			return models.NotFound("archive")
		}
		filter, values, err := parseArchiveFilter(c, *meta)
		if err != nil {
			return err
		}
		after, err := models.ParseArchiveAfter(c.Query("after"))
		if err != nil {
			return err
		}
		path := archivePath(meta)
		p := retention.ArchiveProps{Superadmin: v.User.Superadmin, Path: path, Filter: values,
			Statuses: models.EventStatuses, Classifications: models.DataClassifications}
		va, err := archives.Load(ctx, v.OrgID, id)
		if errors.Is(err, models.ErrArchiveCorrupt) {
			p.Archive = archiveRow(meta)
			p.Corrupt = models.ArchiveProblem(err) + "."
			return render.HTML(c, fiber.StatusInternalServerError, retention.Archive(v.Shell("Archive", "retention"), p))
		}
		if err != nil {
			return err
		}
		page, err := va.Page(filter, after, EventsPageSize)
		if err != nil {
			return err
		}
		if err := archives.RecordRetrieval(ctx, v.OrgID, id, "events page", ActorOf(c)); err != nil {
			return err
		}
		if meta, err = archives.Get(ctx, v.OrgID, id); err != nil { // the counts just recorded
			return err
		}
		p.Archive = archiveRow(meta)
		p.DownloadZst, p.DownloadJSON = path+"/download.jsonl.zst", path+"/download.json"
		for i := range page.Events {
			row := EventRow(&page.Events[i])
			row.Href = ""
			p.Rows = append(p.Rows, row)
		}
		base := filterQuery(c)
		if page.Next != 0 {
			p.NextHref = withParam(path, base, "after", strconv.FormatInt(page.Next, 10))
		}
		if after != 0 {
			p.FirstHref = withParam(path, base, "", "")
		}
		if render.IsHTMX(c) {
			return render.HTML(c, fiber.StatusOK, retention.ArchiveResults(p))
		}
		return render.HTML(c, fiber.StatusOK, retention.Archive(v.Shell("Archive "+meta.Policy+" "+p.Archive.Month, "retention"), p))
	}
}

// parseArchiveFilter reads the events list's filters; a bound left empty is the archive's
// own first or last event instead of the list's last 30 days.
func parseArchiveFilter(c *fiber.Ctx, a models.Archive) (models.EventFilter, eventviews.FilterValues, error) {
	others := func(k string) string {
		if k == "from" || k == "to" {
			return ""
		}
		return c.Query(k)
	}
	f, fv, err := ParseEventFilter(others, a.LastEventAt)
	if err != nil {
		return f, fv, err
	}
	fv.From, fv.To = c.Query("from"), c.Query("to")
	f.From, f.To = time.Time{}, time.Time{}
	if fv.From != "" {
		if f.From, err = parseFormTime(fv.From); err != nil {
			return f, fv, models.Invalid("from", "must be a date and time such as 2026-01-31T13:45 (UTC)")
		}
	}
	if fv.To != "" {
		if f.To, err = parseFormTime(fv.To); err != nil {
			return f, fv, models.Invalid("to", "must be a date and time such as 2026-01-31T13:45 (UTC)")
		}
	}
	f = models.ArchiveFilterRange(f, a)
	return f, fv, f.Validate()
}

// DownloadArchive sends an archive as .jsonl.zst (the stored bytes) or .json (an array of
// its events, streamed line by line in flat memory), after checking it in full; a corrupt
// archive is refused with the archive's page saying why.
func DownloadArchive(archives ArchiveBrowser, format string) fiber.Handler {
	return func(c *fiber.Ctx) error {
		v := render.ViewerOf(c)
		id, err := archiveID(c, v)
		if err != nil {
			return err
		}
		ctx := c.UserContext()
		meta, err := archives.Get(ctx, v.OrgID, id)
		if err != nil {
			return err
		}
		if meta.DeletedAt != nil {
			return models.NotFound("archive")
		}
		va, err := archives.Load(ctx, v.OrgID, id)
		if errors.Is(err, models.ErrArchiveCorrupt) {
			p := retention.ArchiveProps{Superadmin: v.User.Superadmin, Path: archivePath(meta), Archive: archiveRow(meta),
				Corrupt: models.ArchiveProblem(err) + "."}
			return render.HTML(c, fiber.StatusInternalServerError, retention.Archive(v.Shell("Archive", "retention"), p))
		}
		if err != nil {
			return err
		}
		if err := archives.RecordRetrieval(ctx, v.OrgID, id, "download "+format, ActorOf(c)); err != nil {
			return err
		}
		name := strings.NewReplacer("/", "_", `"`, "_").Replace(meta.Policy + "_" + meta.Month.Format("2006-01") + "_part" + strconv.Itoa(meta.Part))
		c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
		if format == "jsonl.zst" {
			c.Set(fiber.HeaderContentType, "application/zstd")
			c.Set(fiber.HeaderContentDisposition, `attachment; filename="`+name+`.jsonl.zst"`)
			return c.Send(va.Compressed())
		}
		r, err := va.Lines()
		if err != nil {
			return err
		}
		c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSONCharsetUTF8)
		c.Set(fiber.HeaderContentDisposition, `attachment; filename="`+name+`.json"`)
		c.Context().SetBodyStreamWriter(func(w *bufio.Writer) {
			defer r.Close()
			// The content was checked by Load; should a line still fail, the stream stops
			// short (an unterminated array), never ending as if complete.
			if err := r.WriteJSONArray(w); err == nil {
				w.Flush()
			}
		})
		return nil
	}
}
