package models_test

import (
	"context"
	"strings"
	"testing"

	"gorm.io/gorm"

	"auditdb/models"
)

// TestAuditRecorderForOtherAreas checks the entries other console areas record (API keys,
// presets, settings) land sealed in the right organization, with config_change_event rows
// for the settings-like ones, and that RecordTx commits and rolls back with its caller.
func TestAuditRecorderForOtherAreas(t *testing.T) {
	f := newAccessFixture(t)
	ctx := context.Background()
	err := f.trail.Record(ctx,
		models.APIKeyCreated(f.owner, f.org, "17", "ingest-prod"),
		models.APIKeyRevoked(f.owner, f.org, "17", "ingest-prod"),
		models.PresetChanged(f.owner, f.org, "phi-access", nil, map[string]any{"action": "patient.record.read"}),
		models.PresetChanged(f.owner, f.org, "phi-access", map[string]any{"action": "patient.record.read"}, map[string]any{"action": "chart.read"}),
		models.SettingChanged(f.owner, f.org, "organization.retention_days", 90, 365),
	)
	if err != nil {
		t.Fatal(err)
	}
	// A caller's transaction that fails takes its audit entry with it.
	failed := f.db.Transaction(func(tx *gorm.DB) error {
		if err := f.trail.RecordTx(ctx, tx, models.APIKeyCreated(f.owner, f.org, "18", "rolled-back")); err != nil {
			return err
		}
		return tx.Exec("SELECT 1/0").Error
	})
	if failed == nil {
		t.Fatal("the division by zero did not fail")
	}
	var actions []string
	for _, ev := range auditEvents(t, f.db, f.org) {
		actions = append(actions, ev.Action)
		if v, err := f.sealer.Verify(&ev); err != nil || !v.HashOK || !v.SignatureOK {
			t.Errorf("%s does not verify", ev.Action)
		}
	}
	if got := strings.Join(actions, ","); got != "apikey.create,apikey.revoke,preset.create,preset.update,settings.update" {
		t.Fatalf("audited %s", got)
	}
	var rows []struct {
		Field         string
		PreviousValue *string
		NewValue      *string
	}
	f.db.Raw(`SELECT field, previous_value, new_value FROM config_change_event WHERE organization_id = ? ORDER BY id`, f.org).Scan(&rows)
	if len(rows) != 3 || rows[2].Field != "organization.retention_days" || *rows[2].PreviousValue != "90" || *rows[2].NewValue != "365" ||
		rows[0].PreviousValue != nil {
		t.Fatalf("config changes %+v", rows)
	}
	// An entry naming no organization, or the defaults' "*", is refused.
	if err := f.trail.Record(ctx, models.AuditEntry{Org: models.GlobalOrg, Action: "x"}); err == nil {
		t.Fatal("an entry for '*' was accepted")
	}
}
