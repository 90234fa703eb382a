package ingest

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"gorm.io/gorm"

	"auditdb/models"
	"auditdb/models/eventjson"
)

// DeadLetter is a row of archive_dlq_event: events that were accepted but that the
// database refused, kept with the reason until someone replays them.
type DeadLetter struct {
	ID                int64           `gorm:"column:id;primaryKey"`
	OrganizationID    *string         `gorm:"column:organization_id"`
	Timestamp         time.Time       `gorm:"column:timestamp"`
	Action            string          `gorm:"column:action"`
	FailureReason     string          `gorm:"column:failure_reason"`
	FailureCount      int             `gorm:"column:failure_count"`
	FirstFailureTime  time.Time       `gorm:"column:first_failure_time"`
	LastFailureTime   time.Time       `gorm:"column:last_failure_time"`
	OriginalJobID     *string         `gorm:"column:original_job_id"`
	OriginalQueueName *string         `gorm:"column:original_queue_name"`
	OriginalEvent     json.RawMessage `gorm:"column:original_event;type:jsonb"`
	Metadata          json.RawMessage `gorm:"column:metadata;type:jsonb"`
	ReplayedAt        *time.Time      `gorm:"column:replayed_at"`
	ReplayedBy        *string         `gorm:"column:replayed_by"`
	ReplayResult      json.RawMessage `gorm:"column:replay_result;type:jsonb"`
}

// TableName maps DeadLetter to archive_dlq_event.
func (DeadLetter) TableName() string { return "archive_dlq_event" }

// EventCount returns how many events the dead letter holds.
func (d *DeadLetter) EventCount() int {
	var evs []json.RawMessage
	if json.Unmarshal(d.OriginalEvent, &evs) != nil {
		return 0
	}
	return len(evs)
}

// deadLetterQueue names the ingest path in original_queue_name.
const deadLetterQueue = "ingest"

// DeadLetterStore keeps, lists and replays dead letters of one organization at a time.
type DeadLetterStore struct {
	db  *gorm.DB
	now func() time.Time
}

// NewDeadLetterStore returns a store over db.
func NewDeadLetterStore(db *gorm.DB) *DeadLetterStore { return &DeadLetterStore{db: db, now: time.Now} }

// Add keeps req's events, as API input, with the database's reason for refusing them.
func (s *DeadLetterStore) Add(ctx context.Context, req WriteRequest, reason string) (*DeadLetter, error) {
	inputs := make([]eventjson.Event, len(req.Events))
	for i := range req.Events {
		inputs[i] = inputOf(&req.Events[i])
	}
	body, err := json.Marshal(inputs)
	if err != nil {
		return nil, fmt.Errorf("ingest: dead letter: %w", err)
	}
	action := req.Events[0].Action
	if len(req.Events) > 1 {
		action = "batch of " + strconv.Itoa(len(req.Events)) + " events"
	}
	meta, _ := json.Marshal(map[string]any{"events": len(req.Events), "source": req.Source})
	queue := deadLetterQueue
	now := s.now().UTC()
	dl := &DeadLetter{OrganizationID: &req.Org, Timestamp: req.Received.UTC(), Action: models.Truncate(action, 255),
		FailureReason: models.Truncate(reason, 2000), FailureCount: 1, FirstFailureTime: now, LastFailureTime: now,
		OriginalQueueName: &queue, OriginalEvent: body, Metadata: meta}
	if req.Idempotency != nil {
		dl.OriginalJobID = &req.Idempotency.Key
	}
	if err := s.db.WithContext(ctx).Create(dl).Error; err != nil {
		return nil, fmt.Errorf("ingest: add dead letter: %w", err)
	}
	return dl, nil
}

// List returns org's dead letters, newest first, at most limit.
func (s *DeadLetterStore) List(ctx context.Context, org string, limit int) ([]DeadLetter, error) {
	var out []DeadLetter
	err := s.db.WithContext(ctx).Where("organization_id = ?", org).Order("id DESC").Limit(limit).Find(&out).Error
	if err != nil {
		return nil, fmt.Errorf("ingest: list dead letters: %w", err)
	}
	return out, nil
}

// Get returns dead letter id of org, or KindNotFound.
func (s *DeadLetterStore) Get(ctx context.Context, org string, id int64) (*DeadLetter, error) {
	var dl DeadLetter
	err := s.db.WithContext(ctx).Where("organization_id = ? AND id = ?", org, id).Take(&dl).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, models.NotFound("dead letter")
	}
	if err != nil {
		return nil, fmt.Errorf("ingest: get dead letter: %w", err)
	}
	return &dl, nil
}

// markReplayed marks dead letter id replayed and reports whether this call did (false:
// it was marked already).
func (s *DeadLetterStore) markReplayed(ctx context.Context, org string, id int64, by string, rs []Receipt) (bool, error) {
	body, _ := json.Marshal(storedAnswer{Receipts: rs})
	res := s.db.WithContext(ctx).Model(&DeadLetter{}).Where("organization_id = ? AND id = ? AND replayed_at IS NULL", org, id).
		Updates(map[string]any{"replayed_at": s.now().UTC(), "replayed_by": by, "replay_result": string(body)})
	if res.Error != nil {
		return false, fmt.Errorf("ingest: mark dead letter replayed: %w", res.Error)
	}
	return res.RowsAffected == 1, nil
}

func (s *DeadLetterStore) replayFailed(ctx context.Context, org string, id int64, reason string) error {
	err := s.db.WithContext(ctx).Exec(`UPDATE archive_dlq_event SET failure_count = failure_count + 1,
		last_failure_time = ?, failure_reason = ? WHERE organization_id = ? AND id = ?`,
		s.now().UTC(), models.Truncate(reason, 2000), org, id).Error
	if err != nil {
		return fmt.Errorf("ingest: record failed replay: %w", err)
	}
	return nil
}

// eventWriter is what a replay needs from the Writer.
type eventWriter interface {
	Write(ctx context.Context, req WriteRequest) (WriteResult, error)
}

// DeadLetterReplayer replays dead letters through the normal ingest path: the events are
// validated against today's rules, sealed afresh and written by the writer.
type DeadLetterReplayer struct {
	trail   *models.AuditTrail
	store   *DeadLetterStore
	answers *IdempotencyStore
	builder *Builder
	writer  eventWriter
}

// NewDeadLetterReplayer returns a replayer; replays are self-audited through trail.
func NewDeadLetterReplayer(store *DeadLetterStore, answers *IdempotencyStore, builder *Builder, writer eventWriter, trail *models.AuditTrail) *DeadLetterReplayer {
	return &DeadLetterReplayer{store: store, answers: answers, builder: builder, writer: writer, trail: trail}
}

// Replay writes dead letter id of org again and marks it replayed by by. A replay happens
// at most once: it runs under an internal Idempotency-Key of its own, out of clients'
// reach, so a repeated click (or a crash between the write and the mark) cannot write the
// events twice. It returns
// KindNotFound for another organization's letter, KindConflict when it was replayed
// already, and KindInvalid (recorded on the letter) when the events still fail.
func (r *DeadLetterReplayer) Replay(ctx context.Context, org string, id int64, by models.Actor) ([]Receipt, error) {
	dl, err := r.store.Get(ctx, org, id)
	if err != nil {
		return nil, err
	}
	if dl.ReplayedAt != nil {
		return nil, models.Conflict("id", "this dead letter was replayed already")
	}
	sum := sha256.Sum256(dl.OriginalEvent)
	// The key lives in the internal scope: no client's Idempotency-Key can stand in for it.
	claim := &IdempotencyClaim{Key: "dead-letter:" + strconv.FormatInt(id, 10), RequestHash: sum[:], internal: true}
	fail := func(err error) ([]Receipt, error) {
		if rerr := r.store.replayFailed(ctx, org, id, models.MessageOf(err)); rerr != nil {
			return nil, rerr
		}
		return nil, err
	}
	res, err := r.answers.Idempotent(ctx, org, claim, func(claim *IdempotencyClaim) (WriteResult, error) {
		ins, err := eventjson.DecodeArray(dl.OriginalEvent, MaxBatchNDJSON)
		if err != nil {
			return WriteResult{}, models.Invalid("original_event", err.Error())
		}
		now := r.store.now()
		events, err := r.builder.BuildBatch(ctx, org, ins, now)
		if err != nil {
			return WriteResult{}, err
		}
		return r.writer.Write(ctx, WriteRequest{Org: org, Events: events, Received: now, Source: "replay", Idempotency: claim})
	})
	if err != nil {
		if models.KindOf(err) == models.KindInvalid {
			return fail(err)
		}
		return nil, err
	}
	marked, err := r.store.markReplayed(ctx, org, id, by.Principal(), res.Receipts)
	if err != nil || !marked { // a concurrent replay of the letter marked and audited it
		return res.Receipts, err
	}
	return res.Receipts, r.trail.Record(ctx, models.AuditEntry{Org: org, Action: models.ActionDeadLetterReplay, Actor: by,
		TargetType: "dead_letter", TargetID: strconv.FormatInt(id, 10),
		Outcome: fmt.Sprintf("dead letter %d replayed: %d events recorded", id, len(res.Receipts))})
}

// inputOf is ev in the ingest API's JSON form.
func inputOf(ev *models.Event) eventjson.Event {
	return eventjson.Event{Timestamp: ev.Timestamp.UTC().Format(models.TimestampLayout), Action: ev.Action, Status: ev.Status,
		PrincipalID: ev.PrincipalID, TargetResourceType: ev.TargetResourceType, TargetResourceID: ev.TargetResourceID,
		OutcomeDescription: ev.OutcomeDescription, CorrelationID: ev.CorrelationID,
		DataClassification: ev.DataClassification, RetentionPolicy: ev.RetentionPolicy, EventVersion: ev.EventVersion,
		TTL: ev.TTL, Details: ev.Details}
}
