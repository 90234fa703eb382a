package models_test

import (
	"strings"
	"testing"

	"gorm.io/gorm"

	"auditdb/models"
	"auditdb/models/pgtest"
)

// writeEvents seals and copies events for org and returns them with their ids.
func writeEvents(t *testing.T, db *gorm.DB, org string, n int) []models.Event {
	t.Helper()
	return pgtest.WriteEvents(t, db, org, n)
}

func TestAuditLogIsImmutable(t *testing.T) {
	db := pgtest.DB(t)
	org := testOrg(t, "imm")
	ev := writeEvents(t, db, org, 3)
	// A record placing event 2 in an archive, for the archive records' cases.
	if err := db.Exec(`INSERT INTO archived_events (organization_id, audit_log_id, event_timestamp, archive_id, event_hash)
		VALUES (?, ?, ?, 'arc-immutability', repeat('0', 64))`, org, ev[2].ID, ev[2].Timestamp).Error; err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		purpose string // SET LOCAL auditdb.purpose first, when not ""
		sql     string
		allowed bool
	}{
		{"update refused", "", `UPDATE audit_log SET action = 'forged' WHERE id = $1`, false},
		{"delete refused", "", `DELETE FROM audit_log WHERE id = $1`, false},
		{"update of a partition directly refused", "", `UPDATE ` + models.PartitionName("audit_log", ev[0].Timestamp) + ` SET status = 'failure' WHERE id = $1`, false},
		{"truncate refused", "", `TRUNCATE audit_log`, false},
		{"unknown purpose refused", "curiosity", `UPDATE audit_log SET action = 'forged' WHERE id = $1`, false},
		{"gdpr update allowed", "gdpr", `UPDATE audit_log SET principal_id = 'pseudonym-1' WHERE id = $1`, true},
		{"retention delete allowed", "retention", `DELETE FROM audit_log WHERE id = $1`, true},
		{"leaves refuse truncation", "", `TRUNCATE audit_leaf`, false},
		{"checkpoints refuse truncation", "", `TRUNCATE audit_checkpoint`, false},
		{"archive records refuse deletion", "", `DELETE FROM archived_events WHERE audit_log_id = $1`, false},
		{"archive records refuse truncation", "", `TRUNCATE archived_events`, false},
		{"archive records: retention delete allowed", "retention", `DELETE FROM archived_events WHERE audit_log_id = $1`, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := db.Transaction(func(tx *gorm.DB) error {
				if tc.purpose != "" {
					if err := tx.Exec("SELECT set_config('auditdb.purpose', ?, true)", tc.purpose).Error; err != nil {
						return err
					}
				}
				sql := tc.sql
				args := []any{}
				if strings.Contains(sql, "$1") {
					sql = strings.ReplaceAll(sql, "$1", "?")
					args = append(args, ev[2].ID)
				}
				return tx.Exec(sql, args...).Error
			})
			if tc.allowed && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !tc.allowed && (err == nil || !strings.Contains(err.Error(), "immutable")) {
				t.Fatalf("err = %v, want the immutability refusal", err)
			}
		})
	}
	t.Run("archives are never truncated, whatever the purpose", func(t *testing.T) {
		err := db.Transaction(func(tx *gorm.DB) error {
			if err := tx.Exec("SELECT set_config('auditdb.purpose', 'retention', true)").Error; err != nil {
				return err
			}
			return tx.Exec(`TRUNCATE archive_storage CASCADE`).Error
		})
		if err == nil || !strings.Contains(err.Error(), "never removed") {
			t.Fatalf("err = %v, want the refusal", err)
		}
	})
	t.Run("the purpose does not outlive its transaction", func(t *testing.T) {
		err := db.Transaction(func(tx *gorm.DB) error {
			return tx.Exec("SELECT set_config('auditdb.purpose', 'gdpr', true)").Error
		})
		if err != nil {
			t.Fatal(err)
		}
		err = db.Connection(func(conn *gorm.DB) error {
			return conn.Exec(`UPDATE audit_log SET action = 'forged' WHERE id = ?`, ev[0].ID).Error
		})
		if err == nil || !strings.Contains(err.Error(), "immutable") {
			t.Fatalf("err = %v, want refusal after the purpose's transaction ended", err)
		}
	})
	var action string
	if err := db.Raw(`SELECT action FROM audit_log WHERE id = ?`, ev[0].ID).Scan(&action).Error; err != nil || action != "test.event" {
		t.Fatalf("event 0 changed: action %q, err %v", action, err)
	}
}
