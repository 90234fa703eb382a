package erasure_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"gorm.io/gorm"

	"auditdb/models"
	"auditdb/models/erasure"
	"auditdb/models/ingest"
	"auditdb/models/merkle"
	"auditdb/models/pgtest"
	"auditdb/models/querycache"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

var testKey = []byte("pseudonym-test-key-0123456789abc")

// fixture is an organization with events of ten principals ("user-0" … "user-9"), every
// fifth targeting the patient Patient/p-42, every tenth a login (a critical action), the
// oldest ones archived by retention; a Merkle log with a checkpoint; and an engine.
type fixture struct {
	t      *testing.T
	db     *gorm.DB
	org    string
	other  string
	log    *merkle.Log
	engine *erasure.Engine
	sealer *models.Sealer
}

var dpo = models.Actor{UserID: 7, Email: "dpo@example.com"}

// Schemes events are sealed with: every event with the first scheme, or a third with each
// of v1, v2 and v3 (the subject's events then span all three).
const (
	schemeV1    = "v1"
	schemeMixed = "mixed"
)

func newFixture(t *testing.T, n, archived int) *fixture {
	return newSchemeFixture(t, n, archived, schemeMixed)
}

func newSchemeFixture(t *testing.T, n, archived int, scheme string) *fixture {
	db := pgtest.DB(t)
	f := &fixture{t: t, db: db, org: pgtest.NewOrg(t, "a"), other: pgtest.NewOrg(t, "b"), sealer: pgtest.Sealer(t)}
	key, err := merkle.NewCheckpointKey([]byte("checkpoint-test-seed-0123456789!"))
	if err != nil {
		t.Fatal(err)
	}
	f.log = merkle.NewLog(db, key)
	f.log.CheckpointEvery = 0
	parts := models.NewPartitionManager(db)
	trail := models.NewAuditTrail(db, f.sealer, parts)
	f.engine = erasure.NewEngine(db, trail, testKey)
	if err := db.Exec(`INSERT INTO audit_retention_policy (organization_id, policy_name, retention_days, archive_after_days,
		data_classification, description) VALUES (?, 'short', 3650, 10, 'INTERNAL', 'test')`, f.org).Error; err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	old := time.Date(2022, time.March, 1, 0, 0, 0, 0, time.UTC)
	evs := make([]models.Event, 0, n+10)
	for i := range n {
		p := fmt.Sprintf("user-%d", i%10)
		ev := models.Event{OrganizationID: f.org, Timestamp: now.Add(-time.Duration(n-i) * time.Second), Action: "record.read",
			Status: "success", DataClassification: "INTERNAL", RetentionPolicy: "standard", EventVersion: "1.0", PrincipalID: &p,
			Details: []byte(fmt.Sprintf(`{"ip":"10.0.0.%d","email":"%s@example.com","n":%d}`, i%10, p, i))}
		if i < archived {
			ev.Timestamp, ev.RetentionPolicy = old.Add(time.Duration(i)*time.Minute), "short"
		}
		if i%10 == 3 && i%20 == 3 {
			ev.Action = "auth.login.success"
		}
		if i%5 == 1 {
			rt, rid := "Patient", "p-42"
			ev.TargetResourceType, ev.TargetResourceID = &rt, &rid
			if i%15 == 1 {
				ev.Action = "data.access.unauthorized"
			}
		}
		evs = append(evs, ev)
	}
	// The same principal id in another organization: never touched.
	for range 10 {
		p := "user-3"
		evs = append(evs, models.Event{OrganizationID: f.other, Timestamp: now.Add(-time.Minute), Action: "record.read",
			Status: "success", DataClassification: "INTERNAL", RetentionPolicy: "standard", EventVersion: "1.0", PrincipalID: &p,
			Details: []byte(`{"email":"user-3@example.com"}`)})
	}
	for i := range evs {
		seal := f.sealer.Seal
		switch {
		case scheme == schemeV1 || i%3 == 0:
			seal = f.sealer.SealV1
		case i%3 == 1:
			seal = f.sealer.SealV2
		}
		if err := seal(&evs[i]); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ingest.CopyEvents(context.Background(), db, parts, evs); err != nil {
		t.Fatal(err)
	}
	f.sequence()
	if archived > 0 {
		re := models.NewRetentionEngine(db, trail, parts)
		re.Now = func() time.Time { return time.Date(2022, time.May, 1, 0, 0, 0, 0, time.UTC) }
		re.PartSize = max(archived/3, 1)
		res, err := re.Run(context.Background(), models.RetentionOptions{Org: f.org})
		if err != nil {
			t.Fatal(err)
		}
		if res.Archived != int64(archived) {
			t.Fatalf("archived %d events, want %d", res.Archived, archived)
		}
		f.sequence()
	}
	return f
}

// seal seals evs and copies them into audit_log, as ingest writes them (not yet sequenced).
func (f *fixture) seal(evs []models.Event) {
	f.t.Helper()
	for i := range evs {
		if err := f.sealer.Seal(&evs[i]); err != nil {
			f.t.Fatal(err)
		}
	}
	if _, err := ingest.CopyEvents(context.Background(), f.db, models.NewPartitionManager(f.db), evs); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) sequence() {
	f.t.Helper()
	if _, err := f.log.Sequence(context.Background(), 1_000_000); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) count(sql string, args ...any) int64 {
	f.t.Helper()
	var n int64
	if err := f.db.Raw(sql, args...).Scan(&n).Error; err != nil {
		f.t.Fatal(err)
	}
	return n
}

func (f *fixture) verify() *merkle.OrgReport {
	f.t.Helper()
	f.sequence()
	rep, err := merkle.NewVerifier(f.db, f.sealer, f.log).CheckOrg(context.Background(), f.org)
	if err != nil {
		f.t.Fatal(err)
	}
	return rep
}

// plantTraces puts the identifiers where erasure must reach them besides events: an alert,
// a delivery, detection state, the error log and a cached answer in Redis.
func (f *fixture) plantTraces(cache *querycache.Cache) {
	t := f.t
	t.Helper()
	ctx := context.Background()
	for _, q := range []string{
		`INSERT INTO alerts (id, organization_id, severity, type, title, description, principal, metadata)
			VALUES ('al-` + f.org + `', ?, 'HIGH', 'SECURITY', 'Brute force by user-3', 'user-3 failed 12 logins on Patient p-42',
			'user-3', '{"principal":"user-3","resource":"p-42"}')`,
		`INSERT INTO archive_dlq_event (organization_id, action, failure_reason, original_event)
			VALUES (?, 'record.read', 'bad timestamp', '{"principalId":"user-3","action":"record.read"}')`,
		`INSERT INTO detection_hit_run (organization_id, rule, group_key, first_time, last_time, hits, event_times, event_ids,
			resource_types) VALUES (?, 'brute_force', 'user-3', now(), now(), 1, ARRAY[now()], ARRAY[1::bigint], ARRAY['x'])`,
	} {
		if err := f.db.Exec(q, f.org).Error; err != nil {
			t.Fatal(err)
		}
	}
	if err := models.NewPartitionManager(f.db).EnsureFor(ctx, "error_log", time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := f.db.Exec(`INSERT INTO error_log (id, category, severity, code, message, user_id, organization_id, context, "timestamp")
		VALUES ('e-`+f.org+`', 'api', 'ERROR', 'X', 'export for user-3 failed', 'user-3', ?, '{"subject":"p-42"}', now())`, f.org).Error; err != nil {
		t.Fatal(err)
	}
	if _, err := querycache.Get(ctx, cache, f.org, "top-principals", func(context.Context) ([]string, error) {
		return []string{"user-3", "user-4"}, nil
	}); err != nil {
		t.Fatal(err)
	}
}

// traces returns where the identifiers are still found, anywhere erasure must reach.
func (f *fixture) traces(rdb *redis.Client, prefix string, ids ...string) []string {
	t := f.t
	t.Helper()
	var found []string
	for _, id := range ids {
		for _, table := range []string{"audit_log", "pseudonym_mapping", "alerts", "alert_deliveries", "detection_hit_run",
			"error_log", "error_aggregation", "archive_dlq_event", "gdpr_erasure_runs", "archive_rewrites", "removed_events"} {
			if n := f.count(`SELECT count(*) FROM `+table+` x WHERE x.organization_id = ? AND strpos(x::text, ?) > 0`, f.org, id); n > 0 {
				var rows []string // the first of them, to tell which were missed
				f.db.Raw(`SELECT left(x::text, 400) FROM `+table+` x WHERE x.organization_id = ? AND strpos(x::text, ?) > 0 LIMIT 3`,
					f.org, id).Scan(&rows)
				found = append(found, fmt.Sprintf("%d rows of %s hold %q, such as:\n  %s", n, table, id, strings.Join(rows, "\n  ")))
			}
		}
		eachArchivedLine(t, f, func(l *models.ArchiveLine) {
			if b, _ := json.Marshal(l); strings.Contains(string(b), id) {
				found = append(found, fmt.Sprintf("archived event %d holds %q", l.ID, id))
			}
		})
		if rdb != nil {
			keys, err := rdb.Keys(context.Background(), prefix+"*").Result()
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range keys {
				v, _ := rdb.Get(context.Background(), k).Result()
				if strings.Contains(k, id) || strings.Contains(v, id) {
					found = append(found, "redis key "+k+" holds "+id)
				}
			}
		}
	}
	return found
}

func redisClient(t *testing.T) *redis.Client {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	if err := rdb.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("redis: %v", err)
	}
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

var subject = erasure.Subject{PrincipalID: "user-3", ResourceType: "Patient", ResourceID: "p-42"}

func TestEraseAmongTenThousandEventsKeepsEveryProof(t *testing.T) {
	for _, scheme := range []string{schemeV1, schemeMixed} {
		t.Run(scheme, func(t *testing.T) { testErase(t, scheme) })
	}
}

func testErase(t *testing.T, scheme string) {
	f := newSchemeFixture(t, 10_000, 600, scheme)
	ctx := context.Background()
	rdb := redisClient(t)
	prefix := "erasuretest:" + f.org + ":"
	cache := querycache.New(f.db, rdb, querycache.Config{Prefix: prefix}, nil)
	f.engine.Cache = cache
	f.plantTraces(cache)
	if len(f.traces(rdb, prefix, "user-3")) == 0 {
		t.Fatal("the fixture planted no traces")
	}
	before, err := f.engine.Count(ctx, f.org, subject)
	if err != nil {
		t.Fatal(err)
	}
	// user-3: 1,000 events; Patient/p-42: every fifth event (2,000, none of user-3).
	if before != 1000+2000 {
		t.Fatalf("count before: %d", before)
	}
	if rep := f.verify(); !rep.OK() {
		t.Fatalf("verify before: %+v", rep.Findings)
	}
	cpBefore, err := f.log.Latest(ctx, f.org)
	if err != nil {
		t.Fatal(err)
	}
	var other []int64 // events of other subjects, live and archived
	f.db.Raw(`SELECT audit_log_id FROM audit_leaf l WHERE organization_id = ? AND NOT EXISTS (SELECT 1 FROM audit_log e
		WHERE e.organization_id = l.organization_id AND e.id = l.audit_log_id AND (e.principal_id = 'user-3' OR e.target_resource_id = 'p-42'))
		ORDER BY leaf_index LIMIT 5`, f.org).Scan(&other)
	var phases []string
	res, err := f.engine.Erase(ctx, f.org, "req-1", subject, dpo, func(p erasure.Progress) {
		if len(phases) == 0 || phases[len(phases)-1] != p.Phase {
			phases = append(phases, p.Phase)
		}
		if p.Done > p.Total {
			t.Errorf("progress %d of %d", p.Done, p.Total)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(phases, ",") != "log,mentions,archives,done" {
		t.Errorf("phases: %v", phases)
	}
	if res.Matched != before || res.Deleted+res.Pseudonymized+res.ArchivedDeleted+res.ArchivedPseudonymized != before {
		t.Fatalf("result %+v, %d events matched before", res, before)
	}
	// Kept: user-3's logins, and (v2 only) the unauthorized accesses to the patient.
	if res.Pseudonymized == 0 || res.ArchivedPseudonymized == 0 || res.ArchivedDeleted == 0 || res.ArchivesRewritten == 0 {
		t.Fatalf("result %+v", res)
	}
	if !strings.HasPrefix(res.Pseudonym, "ers_") {
		t.Fatalf("pseudonym %q", res.Pseudonym)
	}
	if n, _ := f.engine.Count(ctx, f.org, subject); n != 0 {
		t.Fatalf("%d events still match the subject", n)
	}
	if n := f.count(`SELECT count(*) FROM removed_events WHERE organization_id = ? AND reason = 'gdpr' AND request_id = 'req-1'`, f.org); n != res.Deleted+res.ArchivedDeleted {
		t.Fatalf("%d removals recorded, %d deleted", n, res.Deleted+res.ArchivedDeleted)
	}
	rep := f.verify()
	if !rep.OK() {
		t.Fatalf("verify after: %d problems: %+v", rep.Problems, rep.Findings)
	}
	if scheme == schemeMixed && (rep.PseudonymizedFields == 0 || rep.ErasedFields == 0) {
		t.Fatalf("verify counts %d pseudonymized and %d erased fields of v2 events", rep.PseudonymizedFields, rep.ErasedFields)
	}
	if want := fmt.Sprintf("%d events erased by request req-1", res.Deleted+res.ArchivedDeleted); !strings.Contains(strings.Join(rep.RemovedBy, "\n"), want) {
		t.Fatalf("verify names %q, want %q", rep.RemovedBy, want)
	}
	// Proofs of other events, and consistency with the checkpoint before the erasure.
	for _, id := range other {
		p, err := f.log.Prove(ctx, f.org, id)
		if err != nil {
			t.Fatal(err)
		}
		if err := merkle.VerifyInclusion(p); err != nil {
			t.Fatalf("inclusion of %d: %v", id, err)
		}
	}
	cpAfter, err := f.log.Latest(ctx, f.org)
	if err != nil {
		t.Fatal(err)
	}
	hashes, err := f.log.ConsistencyProof(ctx, f.org, cpBefore.TreeSize, cpAfter.TreeSize)
	if err != nil {
		t.Fatal(err)
	}
	if err := merkle.VerifyConsistency(cpBefore.TreeSize, cpAfter.TreeSize, hashes, cpBefore.RootHash, cpAfter.RootHash); err != nil {
		t.Fatalf("consistency: %v", err)
	}
	// Kept events show the pseudonym, lost their salt and personal details, and verify.
	var kept []models.Event
	f.db.Where("organization_id = ? AND (principal_id = ? OR target_resource_id = ?)", f.org, res.Pseudonym, res.Pseudonym).Find(&kept)
	if int64(len(kept)) != res.Pseudonymized {
		t.Fatalf("%d kept events show the pseudonym, %d pseudonymized", len(kept), res.Pseudonymized)
	}
	byScheme := map[string]int{}
	for _, ev := range kept {
		byScheme[ev.HashAlgorithm]++
		v, err := f.sealer.Verify(&ev)
		if err != nil || !v.HashOK || !v.SignatureOK {
			t.Fatalf("kept event %d (%s): %+v %v", ev.ID, ev.HashAlgorithm, v, err)
		}
		byPrincipal := ev.PrincipalID != nil && *ev.PrincipalID == res.Pseudonym
		if byPrincipal && (ev.SubjectSalt != nil || strings.Contains(string(ev.Details), "email")) {
			t.Fatalf("kept event %d keeps its salt or personal details: salt=%x details=%s", ev.ID, ev.SubjectSalt, ev.Details)
		}
		if !byPrincipal && !models.PerFieldScheme(ev.HashAlgorithm) {
			t.Fatalf("kept a v1 event of the patient: %d", ev.ID)
		}
		checks, err := models.CheckFieldCommitments(&ev)
		if err != nil {
			t.Fatal(err)
		}
		states := map[string]string{}
		for _, c := range checks {
			states[c.Name] = c.State
			if c.State == models.FieldMismatch {
				t.Fatalf("kept event %d: %+v", ev.ID, c)
			}
		}
		if models.PerFieldScheme(ev.HashAlgorithm) && byPrincipal && (states["principalId"] != models.FieldPseudonymized ||
			states["details.email"] != models.FieldErased || states["details.ip"] != models.FieldErased) {
			t.Fatalf("kept v2 event %d field states: %v", ev.ID, states)
		}
		if models.PerFieldScheme(ev.HashAlgorithm) && !byPrincipal && states["targetResourceId"] != models.FieldPseudonymized {
			t.Fatalf("kept v2 event %d of the patient: %v", ev.ID, states)
		}
		if ev.Action != "auth.login.success" && ev.Action != "data.access.unauthorized" {
			t.Fatalf("kept a non-critical event: %s", ev.Action)
		}
	}
	if scheme == schemeMixed && (byScheme[models.HashAlgorithmV1] == 0 || byScheme[models.HashAlgorithmV2] == 0 ||
		byScheme[models.HashAlgorithmV3] == 0) {
		t.Fatalf("kept events by scheme: %v", byScheme)
	}
	if scheme == schemeV1 && byScheme[models.HashAlgorithmV2]+byScheme[models.HashAlgorithmV3] != 0 {
		t.Fatalf("kept events by scheme: %v", byScheme)
	}
	if found := f.traces(rdb, prefix, "user-3", "p-42", "user-3@example.com"); len(found) > 0 {
		t.Fatalf("identifiers left:\n%s", strings.Join(found, "\n"))
	}
	// The self-audit event says what was done without the identifiers (checked by traces)
	// and the other organization's user-3 is untouched.
	if n := f.count(`SELECT count(*) FROM audit_log WHERE organization_id = ? AND action = 'gdpr.data.delete'`, f.org); n != 1 {
		t.Fatalf("%d gdpr.data.delete events", n)
	}
	if n := f.count(`SELECT count(*) FROM audit_log WHERE organization_id = ? AND principal_id = 'user-3'`, f.other); n != 10 {
		t.Fatalf("the other organization has %d of its 10 events", n)
	}
	// Erasing again changes nothing and counts nothing twice.
	again, err := f.engine.Erase(ctx, f.org, "req-1", subject, dpo, nil)
	if err != nil || again.Matched != res.Matched || again.Pseudonym != res.Pseudonym {
		t.Fatalf("second erasure: %+v %v", again, err)
	}
	if n := f.count(`SELECT count(*) FROM audit_log WHERE organization_id = ? AND action = 'gdpr.data.delete'`, f.org); n != 1 {
		t.Fatalf("%d gdpr.data.delete events after a second call", n)
	}
}

func TestLegalHoldBlocksErasureAndNothingChanges(t *testing.T) {
	f := newFixture(t, 200, 30)
	ctx := context.Background()
	store := models.NewRetentionPolicyStore(f.db, models.NewAuditTrail(f.db, f.sealer, models.NewPartitionManager(f.db)))
	for _, tc := range []struct {
		name  string
		input models.LegalHoldInput
	}{
		{"resource", models.LegalHoldInput{Name: "Litigation 7", Reason: "court order", Scope: models.HoldScopeResource,
			ResourceType: "Patient", ResourceID: "p-42"}},
		{"archived time range", models.LegalHoldInput{Name: "Audit 2022", Reason: "regulator", Scope: models.HoldScopeTimeRange,
			From: ptr(time.Date(2022, time.March, 1, 0, 0, 0, 0, time.UTC)), To: ptr(time.Date(2022, time.March, 1, 2, 0, 0, 0, time.UTC))}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := store.PlaceHold(ctx, f.org, tc.input, dpo)
			if err != nil {
				t.Fatal(err)
			}
			defer store.ReleaseHold(ctx, f.org, h.ID, dpo)
			state := func() string {
				return fmt.Sprint(f.count(`SELECT count(*) FROM audit_log WHERE organization_id = ?`, f.org),
					f.count(`SELECT count(*) FROM removed_events WHERE organization_id = ?`, f.org),
					f.count(`SELECT count(*) FROM archive_rewrites WHERE organization_id = ?`, f.org),
					f.count(`SELECT count(*) FROM audit_log WHERE organization_id = ? AND principal_id = 'user-3'`, f.org))
			}
			was := state()
			holds, err := f.engine.Holds(ctx, f.org, subject)
			if err != nil || len(holds) != 1 || holds[0].ID != h.ID || holds[0].Name != tc.input.Name {
				t.Fatalf("holds: %+v %v", holds, err)
			}
			_, err = f.engine.Erase(ctx, f.org, "req-hold", subject, dpo, nil)
			if models.KindOf(err) != models.KindConflict || !strings.Contains(err.Error(), tc.input.Name) {
				t.Fatalf("erase under a hold: %v", err)
			}
			if now := state(); now != was {
				t.Fatalf("state changed: %s → %s", was, now)
			}
		})
	}
}

func TestCrashBetweenBatchesResumesWithoutLossOrDoubleCounting(t *testing.T) {
	f := newFixture(t, 2000, 300)
	ctx := context.Background()
	before, err := f.engine.Count(ctx, f.org, subject)
	if err != nil {
		t.Fatal(err)
	}
	f.engine.Batch = 40
	cctx, cancel := context.WithCancel(ctx)
	batches := 0
	f.engine.AfterBatch = func() {
		if batches++; batches == 3 {
			cancel()
		}
	}
	if _, err := f.engine.Erase(cctx, f.org, "req-crash", subject, dpo, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted erasure: %v", err)
	}
	removed := f.count(`SELECT count(*) FROM removed_events WHERE organization_id = ? AND request_id = 'req-crash'`, f.org)
	left, _ := f.engine.Count(ctx, f.org, subject)
	if removed == 0 || left == 0 || left == before {
		t.Fatalf("after the crash: %d removed, %d of %d left", removed, left, before)
	}
	if rep := f.verify(); !rep.OK() {
		t.Fatalf("verify half way: %+v", rep.Findings)
	}
	f.engine.AfterBatch = nil
	res, err := f.engine.Erase(ctx, f.org, "req-crash", subject, dpo, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Matched != before {
		t.Fatalf("resumed run counts %d events, the subject had %d: %+v", res.Matched, before, res)
	}
	if n := f.count(`SELECT count(*) FROM removed_events WHERE organization_id = ? AND request_id = 'req-crash'`, f.org); n != res.Deleted+res.ArchivedDeleted {
		t.Fatalf("%d removals recorded, %d counted", n, res.Deleted+res.ArchivedDeleted)
	}
	if n := f.count(`SELECT count(*) FROM audit_log WHERE organization_id = ? AND (principal_id = ? OR target_resource_id = ?)`,
		f.org, res.Pseudonym, res.Pseudonym); n != res.Pseudonymized {
		t.Fatalf("%d events show the pseudonym, %d counted", n, res.Pseudonymized)
	}
	if n, _ := f.engine.Count(ctx, f.org, subject); n != 0 {
		t.Fatalf("%d events left", n)
	}
	if rep := f.verify(); !rep.OK() {
		t.Fatalf("verify: %+v", rep.Findings)
	}
	// A different subject under the same request is refused.
	_, err = f.engine.Erase(ctx, f.org, "req-crash", erasure.Subject{PrincipalID: "user-4"}, dpo, nil)
	if models.KindOf(err) != models.KindConflict {
		t.Fatalf("another subject under the same request: %v", err)
	}
}

func TestPseudonymizeAndLookup(t *testing.T) {
	f := newFixture(t, 300, 40)
	ctx := context.Background()
	s := erasure.Subject{PrincipalID: "user-5"}
	for _, st := range []erasure.Strategy{erasure.StrategyHash, erasure.StrategyToken, erasure.StrategyEncryption} {
		t.Run(string(st), func(t *testing.T) {
			if st != erasure.StrategyHash {
				// The subject is already pseudonymized by the hash run; take another one.
				s = erasure.Subject{PrincipalID: map[erasure.Strategy]string{erasure.StrategyToken: "user-6", erasure.StrategyEncryption: "user-7"}[st]}
			}
			before, _ := f.engine.Count(ctx, f.org, s)
			res, err := f.engine.Pseudonymize(ctx, f.org, "req-"+string(st), s, st, dpo, nil)
			if err != nil {
				t.Fatal(err)
			}
			if res.Pseudonymized+res.ArchivedPseudonymized != before || res.Deleted+res.ArchivedDeleted != 0 {
				t.Fatalf("result %+v for %d events", res, before)
			}
			if n := f.count(`SELECT count(*) FROM audit_log WHERE organization_id = ? AND principal_id = ?`, f.org, res.Pseudonym); n != res.Pseudonymized {
				t.Fatalf("%d events show the pseudonym", n)
			}
			if found := f.traces(nil, "", s.PrincipalID+"\""); len(found) > 0 { // "user-5" but not "user-5@…"
				t.Fatalf("identifier left: %v", found)
			}
			if n := f.count(`SELECT count(*) FROM pseudonym_mapping WHERE organization_id = ? AND pseudonym_id = ?
				AND original_id IS NULL AND original_ciphertext IS NOT NULL AND strategy = ?`, f.org, res.Pseudonym, string(st)); n != 1 {
				t.Fatalf("%d sealed mappings", n)
			}
			if _, err := f.engine.Lookup(ctx, f.org, res.Pseudonym, " ", dpo); models.KindOf(err) != models.KindInvalid || models.FieldOf(err) != "reason" {
				t.Fatalf("lookup without a reason: %v", err)
			}
			got, err := f.engine.Lookup(ctx, f.org, res.Pseudonym, "police request 17", dpo)
			if err != nil || got != "principal "+s.PrincipalID {
				t.Fatalf("lookup: %q %v", got, err)
			}
			if _, err := f.engine.Lookup(ctx, f.other, res.Pseudonym, "curious", dpo); models.KindOf(err) != models.KindNotFound {
				t.Fatalf("another organization's pseudonym: %v", err)
			}
			if n := f.count(`SELECT count(*) FROM audit_log WHERE organization_id = ? AND action = 'gdpr.data.pseudonymize'
				AND details->>'reason' = 'police request 17' AND details->>'pseudonym' = ?`, f.org, res.Pseudonym); n != 1 {
				t.Fatalf("%d lookup audit events", n)
			}
			if rep := f.verify(); !rep.OK() {
				t.Fatalf("verify: %+v", rep.Findings)
			}
		})
	}
	// The keyed hash is deterministic; a token is not.
	h1, _ := f.engine.Pseudonymize(ctx, f.org, "req-h2", erasure.Subject{PrincipalID: "user-8"}, erasure.StrategyHash, dpo, nil)
	h2, _ := f.engine.Pseudonymize(ctx, f.org, "req-h3", erasure.Subject{PrincipalID: "user-8"}, erasure.StrategyHash, dpo, nil)
	if h1.Pseudonym == "" || h1.Pseudonym != h2.Pseudonym {
		t.Fatalf("hash pseudonyms %q, %q", h1.Pseudonym, h2.Pseudonym)
	}
	if _, err := f.engine.Lookup(ctx, f.org, "pst_unknown", "why", dpo); models.KindOf(err) != models.KindNotFound {
		t.Fatalf("unknown pseudonym: %v", err)
	}
	// An erasure's pseudonym maps back to nothing.
	res, err := f.engine.Erase(ctx, f.org, "req-e", erasure.Subject{PrincipalID: "user-9"}, dpo, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.engine.Lookup(ctx, f.org, res.Pseudonym, "why", dpo); models.KindOf(err) != models.KindNotFound {
		t.Fatalf("erased pseudonym: %v", err)
	}
	if _, err := f.engine.Pseudonymize(ctx, f.org, "req-x", s, "rot13", dpo, nil); models.FieldOf(err) != "strategy" {
		t.Fatalf("unknown strategy: %v", err)
	}
}

func TestSubjectValidation(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    erasure.Subject
		ok   bool
	}{
		{"principal", erasure.Subject{PrincipalID: "a"}, true},
		{"resource", erasure.Subject{ResourceType: "Patient", ResourceID: "1"}, true},
		{"empty", erasure.Subject{}, false},
		{"half a resource", erasure.Subject{ResourceID: "1"}, false},
		{"too long", erasure.Subject{PrincipalID: strings.Repeat("x", 256)}, false},
		{"spaces", erasure.Subject{PrincipalID: " a"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.s.Validate()
			if (err == nil) != tc.ok || (err != nil && models.FieldOf(err) != "subject") {
				t.Fatalf("Validate: %v", err)
			}
		})
	}
}

func TestLoadPseudonymKey(t *testing.T) {
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == erasure.KeyEnv {
				return v
			}
			return ""
		}
	}
	hexKey := strings.Repeat("ab", 32)
	if k, err := erasure.LoadPseudonymKey(env(hexKey), ""); err != nil || len(k) != 32 || k[0] != 0xab {
		t.Fatalf("hex: %x %v", k, err)
	}
	if k, err := erasure.LoadPseudonymKey(env("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="), ""); err != nil || string(k) != "0123456789abcdef0123456789abcdef" {
		t.Fatalf("base64: %q %v", k, err)
	}
	for _, bad := range []string{"short", strings.Repeat("ab", 31), strings.Repeat("zz", 32)} {
		_, err := erasure.LoadPseudonymKey(env(bad), t.TempDir())
		if err == nil || models.FieldOf(err) != erasure.KeyEnv || strings.Contains(err.Error(), bad) {
			t.Fatalf("malformed %q: %v", bad, err)
		}
	}
	dir := t.TempDir()
	k1, err := erasure.LoadPseudonymKey(env(""), dir)
	if err != nil || len(k1) != 32 {
		t.Fatalf("generated: %v", err)
	}
	st, err := os.Stat(dir + "/pseudonym.key")
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", st, err)
	}
	k2, err := erasure.LoadPseudonymKey(env(""), dir)
	if err != nil || string(k1) != string(k2) {
		t.Fatalf("second load: %v", err)
	}
	os.WriteFile(dir+"/pseudonym.key", []byte("nonsense\n"), 0o600)
	if _, err := erasure.LoadPseudonymKey(env(""), dir); err == nil || !strings.Contains(err.Error(), erasure.KeyEnv) {
		t.Fatalf("malformed file: %v", err)
	}
	e := erasure.NewEngine(pgtest.DB(t), nil, []byte("short"))
	if _, err := e.Count(context.Background(), "org", erasure.Subject{PrincipalID: "a"}); err == nil {
		t.Fatal("an engine with a short key works")
	}
}

func ptr[T any](v T) *T { return &v }

func TestEventsWaitingForTheLogAreErasedByTheNextRun(t *testing.T) {
	f := newFixture(t, 100, 0)
	ctx := context.Background()
	fresh := pgtest.WriteEvents(t, f.db, f.org, 5) // principal user-1, not yet in the log
	s := erasure.Subject{PrincipalID: *fresh[0].PrincipalID}
	res, err := f.engine.Erase(ctx, f.org, "req-wait", s, dpo, nil)
	if models.KindOf(err) != models.KindUnavailable || res.Pending != 5 || res.Deleted+res.Pseudonymized != 10 {
		t.Fatalf("first run: %+v %v", res, err)
	}
	if n := f.count(`SELECT count(*) FROM audit_log WHERE organization_id = ? AND action = 'gdpr.data.delete'`, f.org); n != 0 {
		t.Fatal("an unfinished erasure was audited as done")
	}
	f.sequence()
	res, err = f.engine.Erase(ctx, f.org, "req-wait", s, dpo, nil)
	if err != nil || res.Pending != 0 || res.Deleted+res.Pseudonymized != 15 || res.Matched != 15 {
		t.Fatalf("second run: %+v %v", res, err)
	}
	if rep := f.verify(); !rep.OK() {
		t.Fatalf("verify: %+v", rep.Findings)
	}
}
