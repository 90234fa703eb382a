package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"gorm.io/gorm"

	"auditdb/models"
	"auditdb/models/ingest"
)

// RLSOptions configure the row-level security benchmark.
type RLSOptions struct {
	Events     int // events in the data set the list reads
	Rounds     int // rounds alternating RLS on and off
	Iterations int // list queries per case, mode and round
	Batches    int // ingest batches per path, mode and round
	BatchSize  int // rows per ingest batch
	Sealer     *models.Sealer
	Now        time.Time
	DSN        string // the database, for the bare-SQL baseline over pgx
	Out        io.Writer
}

// RLS measures what row-level security costs, as the ratio of RLS enabled to RLS disabled
// on audit_log, alternating the two in rounds on the same data:
//
//   - the events list through EventStore.List (a tenant transaction: SET LOCAL role and
//     organization, then the keyset query), next to the same SQL run bare without a
//     transaction (the path before RLS);
//   - ingest of single-organization batches with INSERT … SELECT FROM unnest under the
//     tenant role (COPY FROM is refused for a role that RLS applies to), and the system
//     path's COPY (CopyEvents, as the demo seeder and the ingest writer use it).
//
// It changes the table's RLS setting, so it must run on a database of its own; RLS is left
// enabled at the end. It prints a table and returns the first error.
func RLS(ctx context.Context, db *gorm.DB, o RLSOptions) (err error) {
	if err := seedDemo(ctx, db, o.Sealer, o.Events, o.Now, o.Out); err != nil {
		return err
	}
	parts := models.NewPartitionManager(db)
	setRLS := func(on bool) error {
		verb := "DISABLE"
		if on {
			verb = "ENABLE"
		}
		return db.WithContext(ctx).Exec("ALTER TABLE audit_log " + verb + " ROW LEVEL SECURITY").Error
	}
	defer func() {
		if rerr := setRLS(true); err == nil {
			err = rerr
		}
	}()

	conn, err := pgx.Connect(ctx, o.DSN)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	store := models.NewEventStore(db)
	window := models.EventFilter{From: o.Now.Add(-30 * 24 * time.Hour), To: o.Now.Add(5 * time.Minute)}
	failures := window
	failures.Status = "failure"
	listCases := []struct {
		name   string
		filter models.EventFilter
	}{{"first page", window}, {"status=failure", failures}}

	type key struct {
		name string
		on   bool
	}
	lists := map[key][]time.Duration{}
	bare := map[string][]time.Duration{}
	plainGORM := map[string][]time.Duration{}
	rates := map[key]float64{} // rows per second, summed over rounds
	rowsPer := map[key]int{}
	elapsed := map[key]time.Duration{}

	for round := 0; round < o.Rounds; round++ {
		for _, on := range []bool{round%2 == 0, round%2 != 0} {
			if err := setRLS(on); err != nil {
				return err
			}
			for _, c := range listCases {
				ts, err := timeIt(o.Iterations, func() error {
					page, err := store.List(ctx, benchOrg, c.filter, nil, 50)
					if err == nil && len(page.Events) == 0 {
						err = fmt.Errorf("bench: the list is empty")
					}
					return err
				})
				if err != nil {
					return err
				}
				lists[key{c.name, on}] = append(lists[key{c.name, on}], ts...)
				if on { // the bare query does not depend on the table's RLS setting (superuser)
					sqlText, args := models.ListSQL(benchOrg, c.filter, nil, 51)
					ts, err := timeIt(o.Iterations, func() error {
						rows, err := conn.Query(ctx, sqlText, args...)
						if err != nil {
							return err
						}
						for rows.Next() {
						}
						rows.Close()
						return rows.Err()
					})
					if err != nil {
						return err
					}
					bare[c.name] = append(bare[c.name], ts...)
					// The same query through GORM without the tenant transaction: what the
					// store did before RLS.
					ts, err = timeIt(o.Iterations, func() error {
						var rows []models.Event
						return db.WithContext(ctx).Raw(sqlText, args...).Scan(&rows).Error
					})
					if err != nil {
						return err
					}
					plainGORM[c.name] = append(plainGORM[c.name], ts...)
				}
			}
			for _, path := range []string{"tenant INSERT…unnest", "system COPY"} {
				for b := 0; b < o.Batches; b++ {
					batch, err := rlsBatch(o.Sealer, o.Now, round*1_000_000+b*o.BatchSize, o.BatchSize)
					if err != nil {
						return err
					}
					if err := parts.EnsureFor(ctx, "audit_log", o.Now); err != nil {
						return err
					}
					start := time.Now()
					if path == "system COPY" {
						_, err = ingest.CopyEvents(ctx, db, parts, batch)
					} else {
						err = tenantInsert(ctx, conn, rlsIngestOrg, batch)
					}
					if err != nil {
						return fmt.Errorf("bench: %s: %w", path, err)
					}
					k := key{path, on}
					elapsed[k] += time.Since(start)
					rowsPer[k] += len(batch)
				}
			}
		}
	}
	for k, d := range elapsed {
		rates[k] = float64(rowsPer[k]) / d.Seconds()
	}

	fmt.Fprintf(o.Out, "\nevents list of %s through EventStore.List (tenant transaction), %d runs per case and mode\n", benchOrg, o.Rounds*o.Iterations)
	fmt.Fprintf(o.Out, "%-16s %22s %22s %16s %22s %22s\n", "case", "RLS on p50 / p95", "RLS off p50 / p95", "on/off p50 / p95",
		"GORM, no tx p50 / p95", "bare pgx p50 / p95")
	for _, c := range listCases {
		on, off := percentiles(lists[key{c.name, true}]), percentiles(lists[key{c.name, false}])
		g, b := percentiles(plainGORM[c.name]), percentiles(bare[c.name])
		fmt.Fprintf(o.Out, "%-16s %22s %22s %16s %22s %22s\n", c.name, ms(on.P50)+" / "+ms(on.P95), ms(off.P50)+" / "+ms(off.P95),
			fmt.Sprintf("%.2fx / %.2fx", float64(on.P50)/float64(off.P50), float64(on.P95)/float64(off.P95)),
			ms(g.P50)+" / "+ms(g.P95), ms(b.P50)+" / "+ms(b.P95))
	}
	fmt.Fprintf(o.Out, "(RLS on/off: the store's path, a tenant transaction; GORM, no tx: the same query as the store ran it before RLS)\n")
	fmt.Fprintf(o.Out, "\ningest of %d-row single-organization batches, %d batches per path and mode\n", o.BatchSize, o.Rounds*o.Batches)
	fmt.Fprintf(o.Out, "%-22s %16s %16s %16s\n", "path", "RLS on rows/s", "RLS off rows/s", "cost on/off")
	for _, path := range []string{"tenant INSERT…unnest", "system COPY"} {
		on, off := rates[key{path, true}], rates[key{path, false}]
		fmt.Fprintf(o.Out, "%-22s %16.0f %16.0f %15.2fx\n", path, on, off, off/on)
	}
	return nil
}

// rlsIngestOrg receives the ingest batches, so they do not grow the list's data set.
const rlsIngestOrg = "bench-rls-ingest"

// rlsBatch returns n sealed events of rlsIngestOrg stamped just before now.
func rlsBatch(sealer *models.Sealer, now time.Time, offset, n int) ([]models.Event, error) {
	out := make([]models.Event, n)
	for i := range out {
		k := offset + i
		principal := "svc-" + strconv.Itoa(k%50)
		outcome := "bench write " + strconv.Itoa(k)
		details, _ := json.Marshal(map[string]any{"ip": "10.0." + strconv.Itoa(k%250) + ".1", "n": k})
		out[i] = models.Event{OrganizationID: rlsIngestOrg, Timestamp: now.Add(-time.Duration(k%3_600_000) * time.Millisecond),
			Action: "bench.rls.write", Status: "success", PrincipalID: &principal, OutcomeDescription: &outcome,
			EventVersion: "1.0", DataClassification: "INTERNAL", RetentionPolicy: "standard", Details: details}
		if err := sealer.Seal(&out[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// tenantInsert writes batch in one transaction under the tenant role, as a tenant-scoped
// writer must (row-level security refuses COPY FROM for that role).
func tenantInsert(ctx context.Context, conn *pgx.Conn, org string, batch []models.Event) error {
	n := len(batch)
	ts := make([]time.Time, n)
	principal, orgs, action, status, outcome := make([]*string, n), make([]string, n), make([]string, n), make([]string, n), make([]*string, n)
	hash, alg, version, class, retention := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	details, salt, digest, sig, commitments := make([]string, n), make([][]byte, n), make([]*string, n), make([]string, n), make([]*string, n)
	for i := range batch {
		ev := &batch[i]
		ts[i], principal[i], orgs[i], action[i], status[i], outcome[i] = ev.Timestamp, ev.PrincipalID, ev.OrganizationID, ev.Action, ev.Status, ev.OutcomeDescription
		hash[i], alg[i], version[i], class[i], retention[i] = ev.Hash, ev.HashAlgorithm, ev.EventVersion, ev.DataClassification, ev.RetentionPolicy
		details[i], salt[i], sig[i] = string(ev.Details), ev.SubjectSalt, ev.Signature
		if ev.SubjectDigest != "" {
			digest[i] = &ev.SubjectDigest
		}
		if ev.FieldCommitments != nil {
			c := string(ev.FieldCommitments)
			commitments[i] = &c
		}
	}
	return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT set_config('role', $1, true), set_config($2, $3, true)",
			models.TenantRole, models.TenantSetting, org); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO audit_log ("timestamp", principal_id, organization_id, action, status,
			outcome_description, hash, hash_algorithm, event_version, data_classification, retention_policy, details,
			subject_salt, subject_digest, signature, field_commitments)
			SELECT * FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
				$8::text[], $9::text[], $10::text[], $11::text[], $12::text[]::jsonb[], $13::bytea[], $14::text[], $15::text[],
				$16::text[]::jsonb[])`,
			ts, principal, orgs, action, status, outcome, hash, alg, version, class, retention, details, salt, digest, sig, commitments)
		return err
	})
}

// timeIt runs fn ten times to warm caches, connections and plans, then n times timed.
func timeIt(n int, fn func() error) ([]time.Duration, error) {
	for i := 0; i < 10; i++ {
		if err := fn(); err != nil {
			return nil, err
		}
	}
	out := make([]time.Duration, 0, n)
	for i := 0; i < n; i++ {
		start := time.Now()
		if err := fn(); err != nil {
			return nil, err
		}
		out = append(out, time.Since(start))
	}
	return out, nil
}
