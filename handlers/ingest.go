package handlers

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"mime"
	"time"

	"github.com/gofiber/fiber/v2"

	"auditdb/handlers/apijson"
	"auditdb/handlers/render"
	"auditdb/models"
	"auditdb/models/eventjson"
	"auditdb/models/ingest"
	"auditdb/models/metrics"
)

// EventBuilder validates decoded events against the organization's rules and seals them.
type EventBuilder interface {
	BuildOne(ctx context.Context, org string, in eventjson.Input, received time.Time) (models.Event, error)
	BuildBatch(ctx context.Context, org string, ins []eventjson.Input, received time.Time) ([]models.Event, error)
}

// EventSink writes sealed events durably and says so (the group-commit writer).
type EventSink interface {
	Write(ctx context.Context, req ingest.WriteRequest) (ingest.WriteResult, error)
}

// IdempotentWriter runs a write at most once per Idempotency-Key and answers the others
// with the first answer (ingest.IdempotencyStore.Idempotent).
type IdempotentWriter interface {
	Idempotent(ctx context.Context, org string, claim *ingest.IdempotencyClaim,
		write func(*ingest.IdempotencyClaim) (ingest.WriteResult, error)) (ingest.WriteResult, error)
}

// Ingest is what the ingest routes need.
type Ingest struct {
	Builder EventBuilder
	Sink    EventSink
	Answers IdempotentWriter
	Now     func() time.Time
}

// IdempotencyHeader is the request header that makes a retried POST safe.
const IdempotencyHeader = "Idempotency-Key"

// ReplayedHeader marks an answer that repeats the first answer to an Idempotency-Key.
const ReplayedHeader = "Idempotent-Replayed"

// IngestEvent records one event (POST /api/v1/events). It answers 201 with {id, hash,
// timestamp} once the event is committed, 202 when the database refused it after
// validation and it was kept as a dead letter, and the error vocabulary otherwise.
func IngestEvent(in Ingest) fiber.Handler {
	return func(c *fiber.Ctx) error {
		received := in.Now()
		if mediaType(c) != fiber.MIMEApplicationJSON {
			return fiber.NewError(fiber.StatusUnsupportedMediaType, "Content-Type must be application/json")
		}
		org := render.APIKeyOf(c).OrganizationID
		claim, err := idempotencyClaim(c)
		if err != nil {
			return err
		}
		var res ingest.WriteResult
		if claim == nil { // no closure, no lookup: the plain path costs nothing extra
			res, err = in.writeOne(c, org, received, nil)
		} else {
			res, err = in.Answers.Idempotent(c.UserContext(), org, claim, func(claim *ingest.IdempotencyClaim) (ingest.WriteResult, error) {
				return in.writeOne(c, org, received, claim)
			})
		}
		if err != nil || res.Receipts == nil {
			return answerDeadLetter(c, res, err)
		}
		if res.Replayed {
			if len(res.Receipts) != 1 { // cannot happen: the request hash covers the route
				return ingest.ErrIdempotencyConflict
			}
			c.Set(ReplayedHeader, "true")
		} else {
			metrics.IngestBytes(len(c.Body()))
		}
		return sendJSON(c, fiber.StatusCreated, apijson.AppendReceiptJSON(nil, res.Receipts[0]))
	}
}

// IngestBatch records a batch atomically (POST /api/v1/events/batch): a JSON array of at
// most ingest.MaxBatchArray events, or NDJSON of at most ingest.MaxBatchNDJSON lines. One
// bad event refuses the whole batch, naming its index.
func IngestBatch(in Ingest) fiber.Handler {
	return func(c *fiber.Ctx) error {
		received := in.Now()
		var decode func([]byte) ([]eventjson.Input, error)
		switch mediaType(c) {
		case fiber.MIMEApplicationJSON:
			decode = func(b []byte) ([]eventjson.Input, error) { return eventjson.DecodeArray(b, ingest.MaxBatchArray) }
		case "application/x-ndjson", "application/ndjson", "application/jsonl":
			decode = func(b []byte) ([]eventjson.Input, error) { return eventjson.DecodeNDJSON(b, ingest.MaxBatchNDJSON) }
		default:
			return fiber.NewError(fiber.StatusUnsupportedMediaType,
				"Content-Type must be application/json (an array) or application/x-ndjson (one event per line)")
		}
		org := render.APIKeyOf(c).OrganizationID
		claim, err := idempotencyClaim(c)
		if err != nil {
			return err
		}
		var res ingest.WriteResult
		if claim == nil {
			res, err = in.writeBatch(c, org, received, decode, nil)
		} else {
			res, err = in.Answers.Idempotent(c.UserContext(), org, claim, func(claim *ingest.IdempotencyClaim) (ingest.WriteResult, error) {
				return in.writeBatch(c, org, received, decode, claim)
			})
		}
		if err != nil || res.Receipts == nil {
			return answerDeadLetter(c, res, err)
		}
		if res.Replayed {
			c.Set(ReplayedHeader, "true")
		} else {
			metrics.IngestBytes(len(c.Body()))
		}
		return sendJSON(c, fiber.StatusCreated, apijson.AppendBatchReceiptJSON(make([]byte, 0, 128*len(res.Receipts)), res.Receipts))
	}
}

// writeOne decodes, builds and writes the request's one event under claim.
func (in Ingest) writeOne(c *fiber.Ctx, org string, received time.Time, claim *ingest.IdempotencyClaim) (ingest.WriteResult, error) {
	input, err := eventjson.DecodeOne(c.Body())
	if err != nil {
		return ingest.WriteResult{}, inputError(err)
	}
	ev, err := in.Builder.BuildOne(c.UserContext(), org, input, received)
	if err != nil {
		return ingest.WriteResult{}, err
	}
	return in.write(c, org, []models.Event{ev}, received, claim)
}

// writeBatch decodes, builds and writes the request's batch under claim.
func (in Ingest) writeBatch(c *fiber.Ctx, org string, received time.Time, decode func([]byte) ([]eventjson.Input, error), claim *ingest.IdempotencyClaim) (ingest.WriteResult, error) {
	inputs, err := decode(c.Body())
	if err != nil {
		return ingest.WriteResult{}, inputError(err)
	}
	events, err := in.Builder.BuildBatch(c.UserContext(), org, inputs, received)
	if err != nil {
		return ingest.WriteResult{}, err
	}
	return in.write(c, org, events, received, claim)
}

func (in Ingest) write(c *fiber.Ctx, org string, events []models.Event, received time.Time, claim *ingest.IdempotencyClaim) (ingest.WriteResult, error) {
	return in.Sink.Write(c.UserContext(), ingest.WriteRequest{Org: org, Events: events, Received: received,
		Idempotency: claim, KeepDeadLetter: true, Source: "api"})
}

// answerDeadLetter answers a write that produced no receipts: the dead letter that keeps
// the events, or the error.
func answerDeadLetter(c *fiber.Ctx, res ingest.WriteResult, err error) error {
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusAccepted).JSON(apijson.NewDeadLettered(res.DeadLetter))
}

// idempotencyClaim reads the Idempotency-Key header: nil without one, else the key and the
// digest of the request (method, route, media type and body) it names.
func idempotencyClaim(c *fiber.Ctx) (*ingest.IdempotencyClaim, error) {
	key := c.Get(IdempotencyHeader)
	if key == "" {
		return nil, nil
	}
	if len(key) > 255 || !printableASCII(key) {
		return nil, models.Invalid(IdempotencyHeader, "must be 1-255 printable ASCII characters")
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s %s\n%s\n", c.Method(), c.Path(), mediaType(c))
	h.Write(c.Body())
	return &ingest.IdempotencyClaim{Key: key, RequestHash: h.Sum(nil)}, nil
}

// inputError turns decoder errors into the error vocabulary.
func inputError(err error) error {
	var e *eventjson.Error
	if errors.As(err, &e) {
		ie := models.Invalid(e.Field, e.Message)
		if e.Index >= 0 {
			return models.AtIndex(e.Index, ie)
		}
		return ie
	}
	var tm *eventjson.TooManyError
	if errors.As(err, &tm) {
		return models.TooLarge("events", fmt.Sprintf("a batch holds at most %d events; split it", tm.Max))
	}
	return err
}

// sendJSON answers with status and the JSON body.
func sendJSON(c *fiber.Ctx, status int, body []byte) error {
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	return c.Status(status).Send(body)
}

// mediaType is the request's Content-Type without parameters, lower-cased; "" when it is
// missing or unreadable.
func mediaType(c *fiber.Ctx) string {
	ct := c.Get(fiber.HeaderContentType)
	if ct == fiber.MIMEApplicationJSON { // what nearly every client sends: nothing to parse
		return ct
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return ""
	}
	return mt
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
