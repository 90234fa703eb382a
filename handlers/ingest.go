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

// AnswerStore finds the first answer to an Idempotency-Key.
type AnswerStore interface {
	Lookup(ctx context.Context, org, key string) (*ingest.StoredAnswer, error)
}

// Ingest is what the ingest routes need.
type Ingest struct {
	Builder EventBuilder
	Sink    EventSink
	Answers AnswerStore
	Now     func() time.Time
}

// IdempotencyHeader is the request header that makes a retried POST safe.
const IdempotencyHeader = "Idempotency-Key"

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
		claim, replay, err := in.idempotency(c, org)
		if err != nil || replay != nil {
			return answerReplay(c, replay, false, err)
		}
		input, err := eventjson.DecodeOne(c.Body())
		if err != nil {
			return inputError(err)
		}
		ev, err := in.Builder.BuildOne(c.UserContext(), org, input, received)
		if err != nil {
			return err
		}
		res, err := in.write(c, org, []models.Event{ev}, received, claim)
		if err != nil || res.Receipts == nil {
			return answerWrite(c, in, org, claim, res, false, err)
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
		claim, replay, err := in.idempotency(c, org)
		if err != nil || replay != nil {
			return answerReplay(c, replay, true, err)
		}
		inputs, err := decode(c.Body())
		if err != nil {
			return inputError(err)
		}
		events, err := in.Builder.BuildBatch(c.UserContext(), org, inputs, received)
		if err != nil {
			return err
		}
		res, err := in.write(c, org, events, received, claim)
		if err != nil || res.Receipts == nil {
			return answerWrite(c, in, org, claim, res, true, err)
		}
		return sendJSON(c, fiber.StatusCreated, apijson.AppendBatchReceiptJSON(make([]byte, 0, 128*len(res.Receipts)), res.Receipts))
	}
}

func (in Ingest) write(c *fiber.Ctx, org string, events []models.Event, received time.Time, claim *ingest.IdempotencyClaim) (ingest.WriteResult, error) {
	return in.Sink.Write(c.UserContext(), ingest.WriteRequest{Org: org, Events: events, Received: received,
		Idempotency: claim, KeepDeadLetter: true, Source: "api"})
}

// answerWrite answers a write that produced no receipts: a dead letter, a lost
// Idempotency-Key race (answered like a retry), or an error.
func answerWrite(c *fiber.Ctx, in Ingest, org string, claim *ingest.IdempotencyClaim, res ingest.WriteResult, batch bool, err error) error {
	if errors.Is(err, ingest.ErrIdempotencyTaken) {
		prior, lerr := in.Answers.Lookup(c.UserContext(), org, claim.Key)
		if lerr != nil {
			return lerr
		}
		if prior == nil {
			return err
		}
		return answerReplay(c, prior, batch, checkSameRequest(prior, claim))
	}
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusAccepted).JSON(apijson.NewDeadLettered(res.DeadLetter))
}

// idempotency reads the Idempotency-Key header: no key gives (nil, nil, nil); a key seen
// before gives its stored answer (or a conflict when the body differs); a new key gives
// the claim the writer stores the answer under.
func (in Ingest) idempotency(c *fiber.Ctx, org string) (*ingest.IdempotencyClaim, *ingest.StoredAnswer, error) {
	key := c.Get(IdempotencyHeader)
	if key == "" {
		return nil, nil, nil
	}
	if len(key) > 255 || !printableASCII(key) {
		return nil, nil, models.Invalid(IdempotencyHeader, "must be 1-255 printable ASCII characters")
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s %s\n%s\n", c.Method(), c.Path(), mediaType(c))
	h.Write(c.Body())
	claim := &ingest.IdempotencyClaim{Key: key, RequestHash: h.Sum(nil)}
	prior, err := in.Answers.Lookup(c.UserContext(), org, key)
	if err != nil || prior == nil {
		return claim, nil, err
	}
	return nil, prior, checkSameRequest(prior, claim)
}

func checkSameRequest(prior *ingest.StoredAnswer, claim *ingest.IdempotencyClaim) error {
	if string(prior.RequestHash) != string(claim.RequestHash) {
		return models.Conflict(IdempotencyHeader, "was already used in the last 24 hours for a different request")
	}
	return nil
}

// answerReplay repeats a stored first answer, or returns err.
func answerReplay(c *fiber.Ctx, prior *ingest.StoredAnswer, batch bool, err error) error {
	if err != nil {
		return err
	}
	c.Set("Idempotent-Replayed", "true")
	if batch {
		return sendJSON(c, prior.Status, apijson.AppendBatchReceiptJSON(nil, prior.Receipts))
	}
	if len(prior.Receipts) != 1 {
		return models.Conflict(IdempotencyHeader, "was already used in the last 24 hours for a different request")
	}
	return sendJSON(c, prior.Status, apijson.AppendReceiptJSON(nil, prior.Receipts[0]))
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
