package models_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"auditdb/models"
	"auditdb/models/pgtest"
)

func TestAlertRuleSettingsValidation(t *testing.T) {
	ctx := context.Background()
	rules := models.NewAlertRuleStore(pgtest.DB(t), testTrail(t))
	org := pgtest.NewOrg(t, "")
	good := models.AlertRuleInput{Rule: models.RuleFailedLogins, Enabled: true, Threshold: 5, Window: 5 * time.Minute, Severity: "HIGH"}
	with := func(f func(*models.AlertRuleInput)) models.AlertRuleInput { in := good; f(&in); return in }
	for _, tc := range []struct {
		name  string
		in    models.AlertRuleInput
		field string
	}{
		{"zero threshold", with(func(in *models.AlertRuleInput) { in.Threshold = 0 }), "threshold"},
		{"negative threshold", with(func(in *models.AlertRuleInput) { in.Threshold = -3 }), "threshold"},
		{"absurd threshold", with(func(in *models.AlertRuleInput) { in.Threshold = 100_001 }), "threshold"},
		{"zero window", with(func(in *models.AlertRuleInput) { in.Window = 0 }), "window"},
		{"negative window", with(func(in *models.AlertRuleInput) { in.Window = -time.Minute }), "window"},
		{"window over a day", with(func(in *models.AlertRuleInput) { in.Window = 24*time.Hour + time.Second }), "window"},
		{"unknown severity", with(func(in *models.AlertRuleInput) { in.Severity = "URGENT" }), "severity"},
		{"lower-case severity", with(func(in *models.AlertRuleInput) { in.Severity = "high" }), "severity"},
		{"unknown rule", with(func(in *models.AlertRuleInput) { in.Rule = "coffee_breaks" }), "rule"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := rules.Update(ctx, org, tc.in, actor("admin"))
			var e *models.Error
			if !errors.As(err, &e) || e.Kind != models.KindInvalid || e.Field != tc.field {
				t.Fatalf("Update(%+v) = %v, want invalid %s", tc.in, err, tc.field)
			}
		})
	}
	for _, zone := range []string{"", "Mars/Olympus_Mons", "Local", " UTC", "../../etc/passwd", "posixrules", "Factory", "posix/UTC"} {
		t.Run("time zone "+zone, func(t *testing.T) {
			err := rules.SetTimeZone(ctx, org, zone, actor("admin"))
			var e *models.Error
			if !errors.As(err, &e) || e.Kind != models.KindInvalid || e.Field != "time_zone" {
				t.Fatalf("SetTimeZone(%q) = %v, want invalid time_zone", zone, err)
			}
		})
	}
	if n := countWhere(t, `SELECT count(*) FROM config_change_event WHERE organization_id = ?`, org); n != 0 {
		t.Fatalf("refused changes wrote %d config changes", n)
	}
	if n := countWhere(t, `SELECT count(*) FROM alert_rule WHERE organization_id = ?`, org); n != 0 {
		t.Fatalf("refused changes wrote %d rules", n)
	}

	// A valid change is saved, self-audited and in the change log.
	got, err := rules.Update(ctx, org, with(func(in *models.AlertRuleInput) { in.Threshold, in.Window = 8, time.Hour }), actor("admin"))
	if err != nil || got.Threshold != 8 || got.Window != time.Hour || !got.Customized {
		t.Fatalf("Update = %+v, %v", got, err)
	}
	if err := rules.SetTimeZone(ctx, org, "Europe/Berlin", actor("admin")); err != nil {
		t.Fatal(err)
	}
	list, err := rules.List(ctx, org)
	if err != nil || len(list) != len(models.DefaultAlertRules) || list[0].Threshold != 8 || list[1].Customized {
		t.Fatalf("List = %+v, %v", list, err)
	}
	if tz, err := rules.TimeZone(ctx, org); err != nil || tz != "Europe/Berlin" {
		t.Fatalf("TimeZone = %q, %v", tz, err)
	}
	if n := countWhere(t, `SELECT count(*) FROM config_change_event WHERE organization_id = ? AND field IN ('alert_rule.failed_logins', 'time_zone')
		AND changed_by = 'admin@example.test'`, org); n != 2 {
		t.Fatalf("%d config changes, want 2", n)
	}
	if n := countWhere(t, `SELECT count(*) FROM audit_log WHERE organization_id = ? AND action = 'settings.update'`, org); n != 2 {
		t.Fatalf("%d self-audit events, want 2", n)
	}
}
