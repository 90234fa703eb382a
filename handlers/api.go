package handlers

import (
	"context"
	_ "embed"
	"fmt"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"

	"auditdb/handlers/apijson"
	"auditdb/handlers/render"
	"auditdb/models"
	"auditdb/models/merkle"
)

// EventLister reads full events (details and integrity fields included) for the API.
type EventLister interface {
	ListFull(ctx context.Context, org string, f models.EventFilter, after *models.Cursor, limit int) (models.EventPage, error)
	Get(ctx context.Context, org string, id int64) (*models.Event, error)
}

// EventVerifier checks one event and records the check.
type EventVerifier interface {
	VerifyEvent(ctx context.Context, org string, id int64, by string) (*merkle.EventCheck, error)
}

// LogReader serves proofs and checkpoints from the Merkle log.
type LogReader interface {
	ProveAt(ctx context.Context, org string, eventID, size int64) (*merkle.InclusionProof, error)
	Latest(ctx context.Context, org string) (*merkle.Checkpoint, error)
	CheckpointOfSize(ctx context.Context, org string, size int64) (*merkle.Checkpoint, error)
	ProveConsistency(ctx context.Context, org string, from, to int64) (*merkle.Consistency, error)
	Key() *merkle.CheckpointKey
}

// API page sizes.
const (
	APIPageSize    = 100
	APIMaxPageSize = 500
)

// APIListEvents lists the key's organization's events newest first, with the console's
// filters (from, to, action, status, principal, resource_type, resource_id,
// classification, correlation_id, q), limit and a keyset cursor (after).
func APIListEvents(events EventLister, now func() time.Time) fiber.Handler {
	return func(c *fiber.Ctx) error {
		org := render.APIKeyOf(c).OrganizationID
		filter, _, err := ParseEventFilter(func(k string) string { return c.Query(k) }, now())
		if err != nil {
			return err
		}
		limit, err := apiLimit(c)
		if err != nil {
			return err
		}
		after, err := queryCursor(c, filter)
		if err != nil {
			return err
		}
		page, err := events.ListFull(c.UserContext(), org, filter, after, limit)
		if err != nil {
			return err
		}
		out := apijson.EventPage{Events: make([]apijson.Event, len(page.Events))}
		for i := range page.Events {
			out.Events[i] = apijson.NewEvent(&page.Events[i])
		}
		if page.Next != nil {
			s := page.Next.String()
			out.NextCursor = &s
		}
		return c.JSON(out)
	}
}

// APIGetEvent returns one event of the key's organization; another organization's event
// is a 404 like a missing one.
func APIGetEvent(events EventLister) fiber.Handler {
	return func(c *fiber.Ctx) error {
		id, err := pathID(c, "event")
		if err != nil {
			return err
		}
		ev, err := events.Get(c.UserContext(), render.APIKeyOf(c).OrganizationID, id)
		if err != nil {
			return err
		}
		return c.JSON(apijson.NewEvent(ev))
	}
}

// APIVerifyEvent recomputes an event's hash and signature, compares them with the Merkle
// log, records the check in audit_integrity_log and returns it (200 whatever the outcome:
// the status field says success, tampered or failure).
func APIVerifyEvent(v EventVerifier) fiber.Handler {
	return func(c *fiber.Ctx) error {
		id, err := pathID(c, "event")
		if err != nil {
			return err
		}
		k := render.APIKeyOf(c)
		check, err := v.VerifyEvent(c.UserContext(), k.OrganizationID, id, "api-key:"+k.Prefix)
		if err != nil {
			return err
		}
		return c.JSON(apijson.NewVerification(check))
	}
}

// ArchivedEventLocator finds the archive holding an event that retention moved out of
// audit_log (models.EventStore implements it).
type ArchivedEventLocator interface {
	ArchivedEvent(ctx context.Context, org string, id int64) (string, error)
}

// APIEventProof returns the inclusion proof of an event in its organization's latest signed
// checkpoint, or in the one of tree size ?checkpoint=SIZE. An archived event keeps its proof:
// its log entry stays when its row moves to an archive. It is a 404 for another
// organization's event, a 404 with Retry-After until a checkpoint includes the event, a
// 400 for a size never published and a 409 when the event came after the chosen checkpoint.
func APIEventProof(events EventLister, log LogReader) fiber.Handler {
	return func(c *fiber.Ctx) error {
		id, err := pathID(c, "event")
		if err != nil {
			return err
		}
		var size int64
		if raw, ok := c.Queries()["checkpoint"]; ok {
			if size, err = treeSizeParam("checkpoint", raw); err != nil {
				return err
			}
		}
		org := render.APIKeyOf(c).OrganizationID
		if _, err := events.Get(c.UserContext(), org, id); err != nil {
			loc, ok := events.(ArchivedEventLocator)
			if !ok || models.KindOf(err) != models.KindNotFound {
				return err
			}
			if _, aerr := loc.ArchivedEvent(c.UserContext(), org, id); aerr != nil {
				return err
			}
		}
		p, err := log.ProveAt(c.UserContext(), org, id, size)
		if err != nil {
			return err
		}
		return c.JSON(apijson.NewProof(p, log.Key().VerifierKey()))
	}
}

// APILatestCheckpoint returns the newest signed checkpoint of the key's organization.
func APILatestCheckpoint(log LogReader) fiber.Handler {
	return func(c *fiber.Ctx) error {
		cp, err := log.Latest(c.UserContext(), render.APIKeyOf(c).OrganizationID)
		if err != nil {
			return err
		}
		return c.JSON(apijson.NewCheckpoint(cp, log.Key().VerifierKey()))
	}
}

// APICheckpoint returns the key's organization's checkpoint of tree size :size, exactly as
// it was published; a size the organization never published is a 404.
func APICheckpoint(log LogReader) fiber.Handler {
	return func(c *fiber.Ctx) error {
		size, err := treeSizeParam("size", c.Params("size"))
		if err != nil {
			return models.NotFound("checkpoint")
		}
		cp, err := log.CheckpointOfSize(c.UserContext(), render.APIKeyOf(c).OrganizationID, size)
		if err != nil {
			return err
		}
		return c.JSON(apijson.NewCheckpoint(cp, log.Key().VerifierKey()))
	}
}

// APIConsistencyProof returns the RFC 6962 consistency proof between two published tree
// sizes (?from=N&to=M) of the key's organization, with both checkpoints.
func APIConsistencyProof(log LogReader) fiber.Handler {
	return func(c *fiber.Ctx) error {
		from, err := treeSizeParam("from", c.Query("from"))
		if err != nil {
			return err
		}
		to, err := treeSizeParam("to", c.Query("to"))
		if err != nil {
			return err
		}
		p, err := log.ProveConsistency(c.UserContext(), render.APIKeyOf(c).OrganizationID, from, to)
		if err != nil {
			return err
		}
		return c.JSON(apijson.NewConsistencyProof(p, log.Key().VerifierKey()))
	}
}

// treeSizeParam parses a tree size parameter: a decimal number of at least 1.
func treeSizeParam(name, raw string) (int64, error) {
	if raw == "" {
		return 0, models.Invalid(name, "is required: a published tree size")
	}
	n, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || n < 1 {
		return 0, models.Invalid(name, "must be a tree size: a whole number of at least 1")
	}
	return n, nil
}

//go:embed openapi.yaml
var openAPIDocument []byte

// OpenAPI serves the API's OpenAPI 3 document.
func OpenAPI() fiber.Handler {
	return func(c *fiber.Ctx) error {
		c.Set(fiber.HeaderContentType, "application/yaml; charset=utf-8")
		return c.Send(openAPIDocument)
	}
}

// OpenAPIDocument returns the document OpenAPI serves (for tests).
func OpenAPIDocument() []byte { return openAPIDocument }

// apiLimit reads an API list's ?limit: APIPageSize when absent, else 1 to APIMaxPageSize.
func apiLimit(c *fiber.Ctx) (int, error) {
	raw := c.Query("limit")
	if raw == "" {
		return APIPageSize, nil
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < 1 || n > APIMaxPageSize {
		return 0, models.Invalid("limit", fmt.Sprintf("must be a number from 1 to %d", APIMaxPageSize))
	}
	return n, nil
}
