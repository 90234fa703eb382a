package jobs_test

import (
	"context"
	"testing"
	"time"

	"auditdb/jobs"
	"auditdb/models"
	"auditdb/models/pgtest"
)

func TestPurgeResolvedAlertsDeletesOnlyPastRetention(t *testing.T) {
	ctx := context.Background()
	db := pgtest.DB(t)
	store := models.NewAlertStore(db)
	org := pgtest.NewOrg(t, "jal")
	if err := db.Exec(`UPDATE organizations SET retention_days = 7 WHERE id = ?`, org).Error; err != nil {
		t.Fatal(err)
	}
	raise := func(resolvedAgo time.Duration) string {
		id, err := store.Raise(ctx, models.NewAlert{Org: org, Severity: "HIGH", Type: "SECURITY", Title: "old"})
		if err != nil {
			t.Fatal(err)
		}
		db.Exec(`UPDATE alerts SET resolved = true, acknowledged = true, resolved_at = ? WHERE id = ?`, time.Now().Add(-resolvedAgo), id)
		return id
	}
	old, recent := raise(8*24*time.Hour), raise(6*24*time.Hour)
	if err := jobs.PurgeResolvedAlerts(store, quiet())(ctx); err != nil {
		t.Fatal(err)
	}
	var left []string
	db.Raw(`SELECT id FROM alerts WHERE organization_id = ? ORDER BY id`, org).Scan(&left)
	if len(left) != 1 || left[0] != recent {
		t.Errorf("left %v, want only %s (and not %s)", left, recent, old)
	}
}
