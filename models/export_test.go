package models

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"gorm.io/gorm"
)

// Internals the external tests (package models_test, which needs pgtest and so cannot live
// inside package models) check directly.

// RecomputeSubjectDigest exposes the subject digest recomputation to tests.
func (s *Sealer) RecomputeSubjectDigest(ev *Event) (string, error) {
	return s.recomputeSubjectDigest(ev)
}

// NormalizeErrorRecord is ErrorRecord.normalize at the current time.
func NormalizeErrorRecord(r ErrorRecord) ErrorRecord { return r.normalize(time.Now()) }

// EncodeArchiveLine is the archiver's line encoder (appendArchiveLine).
func EncodeArchiveLine(l *ArchiveLine) ([]byte, error) {
	var scratch bytes.Buffer
	return appendArchiveLine(nil, &scratch, l, false)
}

// EncodeArchiveLineFromJSONB is the encoder as retention runs it: details and field
// commitments as read from jsonb columns, compacted without validation.
func EncodeArchiveLineFromJSONB(l *ArchiveLine) ([]byte, error) {
	var scratch bytes.Buffer
	return appendArchiveLine(nil, &scratch, l, true)
}

// GoverningPolicy is the Go side of the retention rules: the name of the policy governing an
// event of policy name and classification class in org at now ("" for none).
func GoverningPolicy(ctx context.Context, db *gorm.DB, org string, now time.Time, name, class string) (string, error) {
	r, err := loadRetentionRules(ctx, db, org, now)
	if err != nil {
		return "", err
	}
	if p := r.governing(name, class); p != nil {
		return p.Name, nil
	}
	return "", nil
}

// GovernedBySQL is the SQL side of the retention rules: for each of org's events, the name of
// the policy whose governsSQL selects it (ids with none are absent); an event selected by
// two policies is an error.
func GovernedBySQL(ctx context.Context, db *gorm.DB, org string, now time.Time) (map[int64]string, error) {
	r, err := loadRetentionRules(ctx, db, org, now)
	if err != nil {
		return nil, err
	}
	out := map[int64]string{}
	err = WithPgx(ctx, db, func(conn *pgx.Conn) error {
		for _, p := range r.policies {
			gov, args := r.governsSQL(p, "e")
			rows, _ := conn.Query(ctx, pgxSQL(`SELECT e.id FROM audit_log e WHERE e.organization_id = ? AND `+gov),
				append([]any{org}, args...)...)
			ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
			if err != nil {
				return err
			}
			for _, id := range ids {
				if prev, ok := out[id]; ok {
					return fmt.Errorf("event %d is governed by %s and %s", id, prev, p.Name)
				}
				out[id] = p.Name
			}
		}
		return nil
	})
	return out, err
}

// InsertArchiveRow is the archiver's COPY of one archive_storage row, in its own transaction.
func InsertArchiveRow(ctx context.Context, db *gorm.DB, a *Archive, meta string, content []byte, runID int64) error {
	return WithPgx(ctx, db, func(conn *pgx.Conn) error {
		return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			return insertArchiveRow(ctx, tx, a, meta, content, runID, time.Now())
		})
	})
}

// BuildArchive builds an archive of lines, through the archiver's pipe (a goroutine encoding
// while lines are added) when piped, else line by line; it returns the compressed bytes and
// the archive's filled metadata. Details are validated (not read from jsonb).
func BuildArchive(lines []ArchiveLine, piped bool) ([]byte, Archive, error) {
	var a Archive
	w, err := newArchiveWriter()
	if err != nil {
		return nil, a, err
	}
	if piped {
		p := startArchivePipe(w)
		for i := range lines {
			p.add(&lines[i])
		}
		if err := p.wait(); err != nil {
			return nil, a, err
		}
	} else {
		for i := range lines {
			if err := w.add(&lines[i]); err != nil {
				return nil, a, err
			}
		}
	}
	content, err := w.finish(&a)
	return bytes.Clone(content), a, err
}

// CandidateRanges is candidateRanges: [from, to) without the excluded UTC days.
func CandidateRanges(from, to time.Time, excluded []time.Time) []TimeRange {
	return candidateRanges(from, to, excluded)
}

// PlanRow is one row of a retention plan: policy name, month and counts.
type PlanRow struct {
	Policy                string
	Month                 time.Time
	Archive, Delete, Kept int64
}

// RetentionPlans returns org's retention plan at now both ways: by (policy, classification,
// day) groups with the Go rules, and by the SQL rules over every row.
func RetentionPlans(ctx context.Context, db *gorm.DB, org string, now time.Time) (byDay, byCase []PlanRow, err error) {
	r, err := loadRetentionRules(ctx, db, org, now)
	if err != nil {
		return nil, nil, err
	}
	conv := func(rows []retentionPlanRow) []PlanRow {
		out := make([]PlanRow, len(rows))
		for i, p := range rows {
			out[i] = PlanRow{p.Policy.Name, p.Month, p.Archive, p.Delete, p.Kept}
		}
		return out
	}
	d, err := r.planByDay(ctx, db)
	if err != nil {
		return nil, nil, err
	}
	c, err := r.planByCase(ctx, db)
	return conv(d), conv(c), err
}

// ReadDetectionRunBatch is readRunBatch: the whole runs from the leaf from on (leaves, their
// events and the feed rows they finish), or, when none starts there, how many leaves to read
// instead (limit).
func ReadDetectionRunBatch(ctx context.Context, db *gorm.DB, org string, from int64, n int) (events []DetectEventForTest,
	leaves, limit int, finished []int64, err error) {
	err = WithPgx(ctx, db, func(conn *pgx.Conn) error {
		var b detectBatch
		b, limit, err = readRunBatch(ctx, conn, org, from, n)
		events, leaves, finished = b.events, b.leaves, b.fed
		return err
	})
	return
}

// DetectEventForTest is what detection reads of an event.
type DetectEventForTest = detectEvent

// ReadDetectionBatch reads org's leaves [from, from+n) as a detection pass does (the feed,
// then audit_log for the rest: batch), and also what the feed alone gave (fed) and what
// audit_log alone holds (logged), and the feed rows the batch finished.
func ReadDetectionBatch(ctx context.Context, db *gorm.DB, org string, from int64, n int) (batch, fed, logged []DetectEventForTest, finished []int64, err error) {
	err = WithPgx(ctx, db, func(conn *pgx.Conn) error {
		leaves, err := readLeaves(ctx, conn, org, from, n)
		if err != nil || len(leaves) == 0 {
			return err
		}
		if batch, finished, err = readBatchEvents(ctx, conn, org, leaves); err != nil {
			return err
		}
		if logged, err = readDetectEvents(ctx, conn, org, leaves); err != nil {
			return err
		}
		fed, _, _, err = readFeed(ctx, conn, org, 0, 1<<62, func(int64) bool { return true })
		return err
	})
	return
}
