package models

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"gorm.io/gorm"
)

// copyColumns are the audit_log columns written by CopyEvents, in order.
var copyColumns = []string{
	"timestamp", "ttl", "principal_id", "organization_id", "action", "target_resource_type",
	"target_resource_id", "status", "outcome_description", "hash", "hash_algorithm", "event_version",
	"correlation_id", "data_classification", "retention_policy", "processing_latency", "details",
	"subject_salt", "subject_digest", "signature",
}

// WithPgx runs fn on one pooled connection as a native pgx connection, for what GORM
// cannot do (COPY).
func WithPgx(ctx context.Context, db *gorm.DB, fn func(*pgx.Conn) error) error {
	sqlDB, err := db.DB()
	if err != nil {
		return fmt.Errorf("models: pool: %w", err)
	}
	conn, err := sqlDB.Conn(ctx)
	if err != nil {
		return fmt.Errorf("models: acquire connection: %w", err)
	}
	defer conn.Close()
	return conn.Raw(func(driverConn any) error {
		c, ok := driverConn.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("models: driver connection is %T, not pgx", driverConn)
		}
		return fn(c.Conn())
	})
}

// CopyEvents writes sealed events into audit_log with one COPY inside one transaction,
// creating any missing monthly partition first. Every event must already be sealed (see
// Sealer.Seal). It returns the number of rows written; on error nothing is written.
func (s *EventStore) CopyEvents(ctx context.Context, parts *PartitionManager, events []Event) (int64, error) {
	if len(events) == 0 {
		return 0, nil
	}
	months := map[time.Time]bool{}
	var times []time.Time
	for i := range events {
		if events[i].Hash == "" || events[i].Signature == "" {
			return 0, fmt.Errorf("models: event %d is not sealed", i)
		}
		if m := MonthStart(events[i].Timestamp); !months[m] {
			months[m] = true
			times = append(times, m)
		}
	}
	if err := parts.EnsureFor(ctx, "audit_log", times...); err != nil {
		return 0, err
	}
	var n int64
	err := WithPgx(ctx, s.db, func(conn *pgx.Conn) error {
		return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			var err error
			n, err = tx.CopyFrom(ctx, pgx.Identifier{"audit_log"}, copyColumns, pgx.CopyFromSlice(len(events), func(i int) ([]any, error) {
				ev := &events[i]
				var details any
				if len(ev.Details) > 0 {
					details = string(ev.Details)
				}
				return []any{
					ev.Timestamp.UTC(), ev.TTL, ev.PrincipalID, ev.OrganizationID, ev.Action, ev.TargetResourceType,
					ev.TargetResourceID, ev.Status, ev.OutcomeDescription, ev.Hash, ev.HashAlgorithm, ev.EventVersion,
					ev.CorrelationID, ev.DataClassification, ev.RetentionPolicy, ev.ProcessingLatency, details,
					ev.SubjectSalt, ev.SubjectDigest, ev.Signature,
				}, nil
			}))
			return err
		})
	})
	if err != nil {
		return 0, fmt.Errorf("models: copy events: %w", err)
	}
	return n, nil
}
