package ingest_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"auditdb/models"
	"auditdb/models/ingest"
	"auditdb/models/pgtest"
)

// sealedWithIDs returns n sealed events of org with ids taken from audit_log's sequence.
func sealedWithIDs(t *testing.T, conn *pgx.Conn, org string, n int) []*models.Event {
	t.Helper()
	evs := sealed(t, org, "copy", n)
	out := make([]*models.Event, n)
	for i := range evs {
		if err := conn.QueryRow(context.Background(), `SELECT nextval('audit_log_id_seq')`).Scan(&evs[i].ID); err != nil {
			t.Fatal(err)
		}
		out[i] = &evs[i]
	}
	return out
}

func pgxConn(t *testing.T) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), pgtest.DSN(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func TestCopyEventsWritesRowsAndQueue(t *testing.T) {
	db := pgtest.DB(t)
	conn := pgxConn(t)
	ctx := context.Background()
	org, other := pgtest.OrgID(t, ""), pgtest.OrgID(t, "b")
	evs := append(sealedWithIDs(t, conn, org, 3), sealedWithIDs(t, conn, other, 2)...)
	evs[1].Details = []byte(`{"ip":"10.0.0.1","note":"ünïcödé \u2028 'quoted'"}`)
	if err := pgtest.Sealer(t).Seal(evs[1]); err != nil {
		t.Fatal(err)
	}
	if err := models.NewPartitionManager(db).EnsureFor(ctx, "audit_log", time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := ingest.CopyEventsOn(ctx, conn, evs, true); err != nil {
		t.Fatal(err)
	}
	for _, ev := range evs {
		var got models.Event
		if err := db.Where("id = ? AND timestamp = ?", ev.ID, ev.Timestamp).Take(&got).Error; err != nil {
			t.Fatalf("event %d: %v", ev.ID, err)
		}
		if v, err := pgtest.Sealer(t).Verify(&got); err != nil || !v.HashOK || !v.SignatureOK {
			t.Fatalf("event %d does not verify as stored: %+v %v", ev.ID, v, err)
		}
		if !got.Timestamp.Equal(ev.Timestamp) || got.OrganizationID != ev.OrganizationID {
			t.Fatalf("event %d stored as %+v", ev.ID, got)
		}
	}
	var rows []struct {
		OrganizationID string
		N              int
	}
	db.Raw(`SELECT organization_id, cardinality(audit_log_ids) AS n FROM audit_leaf_queue
		WHERE organization_id IN (?, ?) ORDER BY organization_id`, org, other).Scan(&rows)
	if len(rows) != 2 || rows[0].N+rows[1].N != 5 {
		t.Fatalf("queue rows %+v; want one per organization holding 5 events", rows)
	}
	// And detection's feed: one row per organization, over its events' ids.
	var feed []struct {
		OrganizationID  string
		FirstID, LastID int64
	}
	db.Raw(`SELECT organization_id, first_id, last_id FROM detection_feed WHERE organization_id IN (?, ?)
		ORDER BY first_id`, org, other).Scan(&feed)
	if len(feed) != 2 || feed[0].OrganizationID != org || feed[0].FirstID != evs[0].ID || feed[0].LastID != evs[2].ID ||
		feed[1].OrganizationID != other || feed[1].FirstID != evs[3].ID || feed[1].LastID != evs[4].ID {
		t.Fatalf("feed rows %+v; want one per organization over its ids", feed)
	}
}

// The COPY and the queue and feed INSERTs travel in one simple query: when an INSERT
// fails, the COPY's rows are gone too.
func TestCopyEventsIsAtomic(t *testing.T) {
	for _, table := range []string{"audit_leaf_queue", "detection_feed"} {
		t.Run(table, func(t *testing.T) { testCopyEventsIsAtomic(t, table) })
	}
}

func testCopyEventsIsAtomic(t *testing.T, table string) {
	db := pgtest.DB(t)
	conn := pgxConn(t)
	ctx := context.Background()
	org := pgtest.OrgID(t, "")
	evs := sealedWithIDs(t, conn, org, 4)
	if err := models.NewPartitionManager(db).EnsureFor(ctx, "audit_log", time.Now()); err != nil {
		t.Fatal(err)
	}
	blocker := db.Begin()
	defer blocker.Rollback()
	if err := blocker.Exec(`LOCK TABLE ` + table + ` IN ACCESS EXCLUSIVE MODE`).Error; err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `SET lock_timeout = '200ms'`); err != nil {
		t.Fatal(err)
	}
	err := ingest.CopyEventsOn(ctx, conn, evs, true)
	if err == nil || !strings.Contains(err.Error(), "lock") {
		t.Fatalf("with the queue locked: err = %v, want a lock timeout", err)
	}
	blocker.Rollback()
	var n int64
	db.Raw(`SELECT count(*) FROM audit_log WHERE organization_id = ?`, org).Scan(&n)
	if n != 0 {
		t.Fatalf("%d events written although their %s rows were not", n, table)
	}
	// The connection is usable afterwards, outside any transaction.
	if _, err := conn.Exec(ctx, `SET lock_timeout = 0`); err != nil {
		t.Fatal(err)
	}
	if err := ingest.CopyEventsOn(ctx, conn, evs, true); err != nil {
		t.Fatal(err)
	}
	db.Raw(`SELECT count(*) FROM audit_log WHERE organization_id = ?`, org).Scan(&n)
	if n != 4 {
		t.Fatalf("%d events after the retry, want 4", n)
	}
}

// The queue rows' values are written into the SQL text, so only values of a shape that
// needs no quoting get there.
func TestQueueInsertRefusesValuesThatWouldNeedQuoting(t *testing.T) {
	ev := func(org, hash string) *models.Event {
		return &models.Event{ID: 7, OrganizationID: org, Hash: hash, Timestamp: time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)}
	}
	good := strings.Repeat("ab", 32)
	sql, err := models.LeafQueueSQL([]*models.Event{ev("acme-health", good)})
	if err != nil {
		t.Fatal(err)
	}
	want := `VALUES ('acme-health', '{7}', '{"2026-01-02 03:04:05.000006+00"}', '{` + good + `}')`
	if !strings.HasSuffix(sql, want) {
		t.Fatalf("SQL %s\nshould end %s", sql, want)
	}
	for _, bad := range []*models.Event{
		ev("acme'); DROP TABLE audit_log; --", good),
		ev("Acme", good),
		ev("acme", strings.Repeat("AB", 32)),
		ev("acme", good[:63]+"'"),
		ev("acme", good+"00"),
	} {
		if _, err := models.LeafQueueSQL([]*models.Event{bad}); models.KindOf(err) != models.KindInvalid {
			t.Errorf("org %q hash %q: err = %v, want KindInvalid", bad.OrganizationID, bad.Hash, err)
		}
	}
}
