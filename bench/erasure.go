package bench

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"
	"gorm.io/gorm"

	"auditdb/models"
	"auditdb/models/erasure"
	"auditdb/models/ingest"
	"auditdb/models/merkle"
)

// ErasureOptions configures the erasure benchmark.
type ErasureOptions struct {
	DB            *gorm.DB
	Sealer        *models.Sealer
	Log           *merkle.Log
	Org           string
	Events        int // in the organization, the subject's included
	SubjectEvents int // of the subject (and as many of the baseline principal)
	Batch         int // the engine's batch size (0: its default)
	// ByResource makes the subject a target resource (Patient/bench-patient, the events'
	// principals random) instead of a principal.
	ByResource bool
	// V1 seals every event with the first scheme (sha256-jcs-v1) instead of the current one;
	// V2 with the second (sha256-jcs-v2).
	V1, V2 bool
	Out    io.Writer
}

// ErasureResult is what the erasure benchmark measured.
type ErasureResult struct {
	Erase                     time.Duration // the engine's Erase of the subject
	RawDelete                 time.Duration // a plain DELETE … RETURNING of as many rows of another principal (rolled back)
	VerifyBefore, VerifyAfter time.Duration // merkle CheckOrg of the whole organization
	Result                    erasure.Result
}

// Erasure seeds o.Events events of one organization over 5,000 principals, o.SubjectEvents
// of them of the subject (the principal "bench-subject", or with ByResource the target
// Patient/bench-patient; every tenth a critical action: kept pseudonymized, except v1
// events of a target, which are deleted) and as many by "bench-baseline"; sequences them; verifies the organization; times a plain DELETE
// … RETURNING of the baseline principal's rows in a transaction that is rolled back (the
// floor any erasure pays); times the engine's erasure of the subject; and verifies again.
func Erasure(ctx context.Context, o ErasureOptions) (ErasureResult, error) {
	var res ErasureResult
	out := o.Out
	start := time.Now()
	if err := writeErasureEvents(ctx, o); err != nil {
		return res, err
	}
	fmt.Fprintf(out, "seeded %d events (%d of the subject) in %s\n", o.Events, o.SubjectEvents, time.Since(start).Round(time.Millisecond))
	start = time.Now()
	for {
		r, err := o.Log.Sequence(ctx, 50_000)
		if err != nil {
			return res, err
		}
		if r.Leaves == 0 {
			break
		}
	}
	fmt.Fprintf(out, "sequenced into the Merkle log in %s\n", time.Since(start).Round(time.Millisecond))
	verifier := merkle.NewVerifier(o.DB, o.Sealer, o.Log)
	start = time.Now()
	rep, err := verifier.CheckOrg(ctx, o.Org)
	if err != nil {
		return res, err
	}
	res.VerifyBefore = time.Since(start)
	fmt.Fprintf(out, "verify before: %d events, %d problems, in %s\n", rep.Events, rep.Problems, res.VerifyBefore.Round(time.Millisecond))

	var deleted int64
	start = time.Now()
	err = models.WithPgx(ctx, o.DB, func(conn *pgx.Conn) error {
		tx, err := conn.Begin(ctx)
		if err != nil {
			return err
		}
		defer tx.Rollback(ctx)
		if _, err := tx.Exec(ctx, `SET LOCAL auditdb.purpose = 'gdpr'`); err != nil {
			return err
		}
		rows, _ := tx.Query(ctx, `DELETE FROM audit_log WHERE organization_id = $1 AND principal_id = 'bench-baseline' RETURNING id, hash`, o.Org)
		var id int64
		var h string
		_, err = pgx.ForEachRow(rows, []any{&id, &h}, func() error { deleted++; return nil })
		return err
	})
	if err != nil {
		return res, err
	}
	res.RawDelete = time.Since(start)
	fmt.Fprintf(out, "baseline: plain DELETE … RETURNING of %d rows (rolled back) in %s\n", deleted, res.RawDelete.Round(time.Millisecond))

	key := make([]byte, 32)
	rand.Read(key)
	parts := models.NewPartitionManager(o.DB)
	engine := erasure.NewEngine(o.DB, models.NewAuditTrail(o.DB, o.Sealer, parts), key)
	if o.Batch > 0 {
		engine.Batch = o.Batch
	}
	start = time.Now()
	phase, phaseStart := "", start
	subject := erasure.Subject{PrincipalID: "bench-subject"}
	if o.ByResource {
		subject = erasure.Subject{ResourceType: "Patient", ResourceID: "bench-patient"}
	}
	r, err := engine.Erase(ctx, o.Org, "bench-request", subject,
		models.SystemActor("bench"), func(p erasure.Progress) {
			if p.Phase != phase {
				if phase != "" {
					fmt.Fprintf(out, "  phase %s: %s\n", phase, time.Since(phaseStart).Round(time.Millisecond))
				}
				phase, phaseStart = p.Phase, time.Now()
				if phase == "log" {
					fmt.Fprintf(out, "  before the log phase (holds, count): %s\n", time.Since(start).Round(time.Millisecond))
				}
			}
		})
	if err != nil {
		return res, err
	}
	res.Erase, res.Result = time.Since(start), r
	fmt.Fprintf(out, "erase: %d events (%d deleted, %d kept pseudonymized) in %s = %.0f events/s (%.2f × the plain DELETE's time)\n",
		r.Matched, r.Deleted, r.Pseudonymized, res.Erase.Round(time.Millisecond), float64(r.Matched)/res.Erase.Seconds(),
		res.Erase.Seconds()/res.RawDelete.Seconds())
	fmt.Fprintf(out, "  free text naming the subject: %d events redacted, %d left (older scheme, legal hold, key name or number)\n", r.MentionsRedacted, r.MentionsLeft)
	if _, err := o.Log.Sequence(ctx, 1000); err != nil {
		return res, err
	}
	start = time.Now()
	rep, err = verifier.CheckOrg(ctx, o.Org)
	if err != nil {
		return res, err
	}
	res.VerifyAfter = time.Since(start)
	fmt.Fprintf(out, "verify after: %d events, %d removed by record, %d problems, in %s (%.2f × before)\n",
		rep.Events, rep.Removed, rep.Problems, res.VerifyAfter.Round(time.Millisecond), res.VerifyAfter.Seconds()/res.VerifyBefore.Seconds())
	for _, line := range rep.RemovedBy {
		fmt.Fprintf(out, "  %s\n", line)
	}
	if !rep.OK() {
		return res, fmt.Errorf("bench: verify after the erasure found %d problems", rep.Problems)
	}
	return res, nil
}

func writeErasureEvents(ctx context.Context, o ErasureOptions) error {
	rng := mrand.New(mrand.NewPCG(15, 15))
	parts := models.NewPartitionManager(o.DB)
	actions := []string{"patient.record.read", "document.update", "role.update", "export.create"}
	now := time.Now().UTC()
	batch := make([]models.Event, 0, 10_000)
	mentioned := "bench-subject"
	if o.ByResource {
		mentioned = "bench-patient"
	}
	for i := 0; i < o.Events; i++ {
		var outcome *string
		extra := ""
		ts := now.Add(-time.Duration(rng.IntN(60*24*3600)) * time.Second).Truncate(time.Microsecond)
		principal := fmt.Sprintf("user-%d", rng.IntN(5000))
		action := actions[rng.IntN(len(actions))]
		rtype, rid := "document", fmt.Sprintf("doc-%d", rng.IntN(100_000))
		switch {
		case i%(o.Events/o.SubjectEvents) == 0 && i/(o.Events/o.SubjectEvents) < o.SubjectEvents:
			if o.ByResource {
				rtype, rid = "Patient", "bench-patient"
			} else {
				principal = "bench-subject"
			}
			if i/(o.Events/o.SubjectEvents)%10 == 0 {
				action = "auth.login.success"
				if o.ByResource {
					action = "data.access.unauthorized"
				}
				// The kept events name the subject in their free text too.
				s := "session of " + mentioned
				outcome = &s
			}
		case i%(o.Events/o.SubjectEvents) == 1 && i/(o.Events/o.SubjectEvents) < o.SubjectEvents:
			principal = "bench-baseline"
		case i%1000 == 502:
			// One event in 1,000, of other principals, mentions the subject (a search).
			extra = `,"search":{"q":"` + mentioned + `"}`
		}
		ev := models.Event{OrganizationID: o.Org, Timestamp: ts, Action: action, Status: "success",
			DataClassification: "INTERNAL", RetentionPolicy: "standard", EventVersion: "1.0", PrincipalID: &principal,
			TargetResourceType: &rtype, TargetResourceID: &rid, OutcomeDescription: outcome,
			Details: fmt.Appendf(nil, `{"ip":"10.%d.%d.%d","userAgent":"Mozilla/5.0","requestId":"req-%d"%s}`,
				rng.IntN(256), rng.IntN(256), rng.IntN(256), i, extra)}
		seal := o.Sealer.Seal
		if o.V1 {
			seal = o.Sealer.SealV1
		} else if o.V2 {
			seal = o.Sealer.SealV2
		}
		if err := seal(&ev); err != nil {
			return err
		}
		batch = append(batch, ev)
		if len(batch) == cap(batch) || i == o.Events-1 {
			if _, err := ingest.CopyEvents(ctx, o.DB, parts, batch); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	return nil
}
