package handlers

import (
	"context"
	"fmt"
	"io"
	"os"
	"regexp"
	"time"

	"github.com/gofiber/fiber/v2"

	"auditdb/handlers/render"
	"auditdb/models"
	"auditdb/models/bundle"
)

// EvidenceBundler writes evidence bundles (bundle.Service).
type EvidenceBundler interface {
	Check(ctx context.Context, org string, f models.EventFilter) error
	Write(ctx context.Context, org string, f models.EventFilter, w io.Writer) (bundle.Summary, error)
}

var unsafeFileChars = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// MaxConcurrentBundles is how many evidence bundles one instance builds at once, and
// MaxConcurrentBundlesPerOrg how many of them one organization's: a request beyond either
// is refused with a 429 rather than queued (each may read a million events), so one
// organization cannot take every slot from the others.
const (
	MaxConcurrentBundles       = 4
	MaxConcurrentBundlesPerOrg = 1
)

// DownloadEvidenceBundle sends the evidence bundle of the events list's current filter: a
// .zip an auditor checks offline with `auditdb verify-bundle`. The filter's range is at most
// a year and its events at most bundle.MaxEvents, refused with a 400 or 413 naming "to".
// The bundle is built in a temporary file first, so a failure is an error page rather than
// a cut-off download, and the export is self-audited before a byte is sent.
func DownloadEvidenceBundle(bundles EvidenceBundler, audit Auditor, now func() time.Time) fiber.Handler {
	building := newSlots(MaxConcurrentBundlesPerOrg, MaxConcurrentBundles)
	return func(c *fiber.Ctx) error {
		v := render.ViewerOf(c)
		if v.OrgID == "" {
			return models.Forbidden("you are not a member of any organization")
		}
		filter, _, err := ParseEventFilter(func(k string) string { return c.Query(k) }, now())
		if err != nil {
			return err
		}
		filter.ExcludeRestricted = true // a GDPR restriction keeps a subject out of exports
		release, refused := building.take(v.OrgID)
		switch refused {
		case refusedOrg:
			return &models.Error{Kind: models.KindTooMany, RetryAfter: 30 * time.Second,
				Message: fmt.Sprintf("your organization has %d evidence bundle(s) being built already; retry in a minute", MaxConcurrentBundlesPerOrg)}
		case refusedAll:
			return &models.Error{Kind: models.KindTooMany, RetryAfter: 30 * time.Second,
				Message: fmt.Sprintf("%d evidence bundles are being built already; retry in a minute", MaxConcurrentBundles)}
		}
		defer release()
		ctx := c.UserContext()
		if err := bundles.Check(ctx, v.OrgID, filter); err != nil {
			return err
		}
		f, err := os.CreateTemp("", "auditdb-bundle-*.zip")
		if err != nil {
			return fmt.Errorf("handlers: evidence bundle: %w", err)
		}
		os.Remove(f.Name()) // the open file stays readable until it is closed
		sum, err := bundles.Write(ctx, v.OrgID, filter, f)
		if err == nil {
			err = audit.Record(ctx, models.AuditEntry{Org: v.OrgID, Action: models.ActionDataExport, Actor: ActorOf(c),
				TargetType: "evidence_bundle", TargetID: fmt.Sprintf("checkpoint-%d", sum.CheckpointNumber),
				Outcome: fmt.Sprintf("Evidence bundle of %d events (%d archived) and %d removed events, %s to %s, against checkpoint %d (tree size %d)",
					sum.Events, sum.Archived, sum.Removed, filter.From.UTC().Format(time.RFC3339), filter.To.UTC().Format(time.RFC3339),
					sum.CheckpointNumber, sum.CheckpointSize),
				Details: bundleAuditDetails(filter, sum)})
		}
		var size int64
		if err == nil {
			size, err = f.Seek(0, io.SeekEnd)
		}
		if err == nil {
			_, err = f.Seek(0, io.SeekStart)
		}
		if err != nil {
			f.Close()
			return err
		}
		name := fmt.Sprintf("evidence-%s-%s.zip", unsafeFileChars.ReplaceAllString(v.OrgID, "_"), now().UTC().Format("20060102T150405Z"))
		c.Set(fiber.HeaderContentType, "application/zip")
		c.Set(fiber.HeaderContentDisposition, `attachment; filename="`+name+`"`)
		c.Set(fiber.HeaderCacheControl, "no-store")
		return c.SendStream(f, int(size)) // closed once sent
	}
}

// bundleAuditDetails is what the self-audit event records of a bundle: the filter as
// given and the counts.
func bundleAuditDetails(f models.EventFilter, sum bundle.Summary) map[string]any {
	d := map[string]any{"from": f.From.UTC().Format(time.RFC3339), "to": f.To.UTC().Format(time.RFC3339),
		"events": sum.Events, "archived": sum.Archived, "removed": sum.Removed, "notSequenced": sum.NotSequenced,
		"checkpointSize": sum.CheckpointSize, "format": bundle.Format}
	for k, val := range map[string]string{"action": f.Action, "status": f.Status, "principal": f.PrincipalID,
		"resourceType": f.ResourceType, "resourceId": f.ResourceID, "classification": f.Classification,
		"correlationId": f.CorrelationID, "q": f.Query.String()} {
		if val != "" {
			d[k] = val
		}
	}
	return d
}
