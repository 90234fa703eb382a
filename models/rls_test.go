package models_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"gorm.io/gorm"

	"auditdb/models"
	"auditdb/models/ingest"
	"auditdb/models/pgtest"
)

// TestRowLevelSecurity checks the database itself keeps tenants apart, whatever a query
// forgets: the tenant role sees and writes only the organization of its transaction.
func TestRowLevelSecurity(t *testing.T) {
	db := pgtest.DB(t)
	ctx := context.Background()
	sealer := testSealer(t)
	parts := models.NewPartitionManager(db)
	a, b := testOrg(t, "a"), testOrg(t, "b")
	now := time.Now().UTC()
	var evs []models.Event
	for _, org := range []string{a, b, a} {
		ev := models.Event{OrganizationID: org, Timestamp: now, Action: "rls.probe", Status: "success",
			DataClassification: "INTERNAL", RetentionPolicy: "standard", EventVersion: "1.0"}
		if err := sealer.Seal(&ev); err != nil {
			t.Fatal(err)
		}
		evs = append(evs, ev)
	}
	// The system path (a batch mixing organizations, as the ingest writer's) is not confined.
	if _, err := ingest.CopyEvents(ctx, db, parts, evs); err != nil {
		t.Fatal(err)
	}
	for _, org := range []string{a, b} {
		if err := db.Exec(`INSERT INTO alerts (id, organization_id, severity, type, title) VALUES (?, ?, 'HIGH', 'SECURITY', 'probe')`,
			"alert-"+org, org).Error; err != nil {
			t.Fatal(err)
		}
	}
	probe := `organization_id IN (?, ?)`

	count := func(tx *gorm.DB, table string) int64 {
		var n int64
		if err := tx.Raw("SELECT count(*) FROM "+table+" WHERE "+probe, a, b).Scan(&n).Error; err != nil {
			t.Fatal(err)
		}
		return n
	}
	cases := []struct {
		name string
		run  func(tx *gorm.DB) error
	}{
		{"tenant sees only its own rows, even without a filter", func(tx *gorm.DB) error {
			if n := count(tx, "audit_log"); n != 2 {
				t.Errorf("audit_log rows visible: %d, want 2", n)
			}
			if n := count(tx, "alerts"); n != 1 {
				t.Errorf("alerts visible: %d, want 1", n)
			}
			return nil
		}},
		{"tenant cannot write another organization's event", func(tx *gorm.DB) error {
			err := tx.Exec(`INSERT INTO audit_log ("timestamp", organization_id, action, status) VALUES (now(), ?, 'x', 'success')`, b).Error
			if err == nil || !strings.Contains(err.Error(), "row-level security") {
				t.Errorf("insert into b: %v", err)
			}
			return nil
		}},
		{"tenant cannot touch another organization's alert", func(tx *gorm.DB) error {
			res := tx.Exec(`UPDATE alerts SET resolved = true WHERE id = ?`, "alert-"+b)
			if res.Error != nil || res.RowsAffected != 0 {
				t.Errorf("update b's alert: %v, %d rows", res.Error, res.RowsAffected)
			}
			return nil
		}},
		{"audit_log is append-only for tenants", func(tx *gorm.DB) error {
			if err := tx.Exec(`DELETE FROM audit_log WHERE organization_id = ?`, a).Error; err == nil {
				t.Error("tenant deleted its own events")
			}
			return nil
		}},
		{"partitions are not reachable directly", func(tx *gorm.DB) error {
			part := models.PartitionName("audit_log", now)
			if err := tx.Exec(`SELECT count(*) FROM ` + part).Error; err == nil {
				t.Error("tenant read a partition directly")
			}
			return nil
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := models.InTenant(ctx, db, a, tc.run)
			_ = err // the refused statements abort the transaction; what matters is checked inside
		})
	}

	t.Run("the pipelined tenant read is confined too", func(t *testing.T) {
		var orgs []string
		err := models.QueryInTenant(ctx, db, a, `SELECT DISTINCT organization_id FROM audit_log WHERE action = 'rls.probe'`, nil,
			func(r pgx.Rows) error {
				var err error
				orgs, err = pgx.CollectRows(r, pgx.RowTo[string])
				return err
			})
		if err != nil {
			t.Fatal(err)
		}
		if len(orgs) != 1 || orgs[0] != a {
			t.Fatalf("organizations visible without a filter: %v, want only %s", orgs, a)
		}
		// A failing statement must not leave the pooled connection inside a transaction.
		bad := models.QueryInTenant(ctx, db, a, `SELECT 1/0`, nil, func(pgx.Rows) error { return nil })
		if bad == nil {
			t.Fatal("division by zero did not fail")
		}
		for i := 0; i < 25; i++ { // more than the pool's connections
			var one int
			if err := db.Raw("SELECT 1").Scan(&one).Error; err != nil || one != 1 {
				t.Fatalf("pool unusable after a failed tenant read: %v", err)
			}
		}
	})

	t.Run("tenant role without the setting sees nothing", func(t *testing.T) {
		err := db.Transaction(func(tx *gorm.DB) error {
			if err := tx.Exec("SET LOCAL ROLE " + models.TenantRole).Error; err != nil {
				return err
			}
			if n := count(tx, "audit_log"); n != 0 {
				t.Errorf("rows visible without %s: %d", models.TenantSetting, n)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
	t.Run("the connecting role still sees everything", func(t *testing.T) {
		if n := count(db, "audit_log"); n != 3 {
			t.Fatalf("system path sees %d rows, want 3", n)
		}
	})
	t.Run("the store answers within the organization", func(t *testing.T) {
		store := models.NewEventStore(db)
		page, err := store.List(ctx, b, models.EventFilter{From: now.Add(-time.Hour), To: now.Add(time.Hour)}, nil, 10)
		if err != nil || len(page.Events) != 1 {
			t.Fatalf("list b: %v, %d events", err, len(page.Events))
		}
		var idOfA int64
		db.Raw(`SELECT id FROM audit_log WHERE organization_id = ? LIMIT 1`, a).Scan(&idOfA)
		if _, err := store.Get(ctx, b, idOfA); models.KindOf(err) != models.KindNotFound {
			t.Fatalf("b reads a's event: %v", err)
		}
	})
}
