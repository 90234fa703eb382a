package demo_test

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"auditdb/models"
	"auditdb/models/demo"
	"auditdb/models/pgtest"
)

func TestSeedDemo(t *testing.T) {
	ctx := context.Background()
	db := pgtest.DB(t)
	s := pgtest.Sealer(t)
	now := time.Date(2026, 11, 20, 15, 0, 0, 0, time.UTC)
	opts := demo.Options{Events: 5000, Now: now, Seed: 42}

	res, err := demo.Seed(ctx, db, s, models.NewPartitionManager(db), opts)
	if err != nil {
		t.Fatal(err)
	}
	if res.EventsWritten != 5000 || res.Skipped != "" {
		t.Fatalf("first run: %d events written, skipped %q", res.EventsWritten, res.Skipped)
	}
	if !reflect.DeepEqual(res.Orgs, []string{"acme-health", "northwind-clinic"}) {
		t.Fatalf("orgs %v", res.Orgs)
	}

	t.Run("credentials work", func(t *testing.T) {
		// An owner, an admin and a member per organization, a privacy officer (a second
		// owner) in the first, a superadmin.
		if len(res.Credentials) != 8 {
			t.Fatalf("%d credentials, want 8: %+v", len(res.Credentials), res.Credentials)
		}
		users := models.NewUserStore(db)
		super := res.Credentials[7]
		if super.Email != demo.SuperadminEmail || super.Role != demo.SuperadminRole || super.OrgID != "" || len(super.Password) != 20 {
			t.Fatalf("superadmin credential %+v", super)
		}
		if u, err := users.Authenticate(ctx, super.Email, super.Password); err != nil || !u.Superadmin {
			t.Fatalf("the demo superadmin signs in as %+v, %v", u, err)
		}
		dpo := res.Credentials[3]
		if dpo.Email != "dpo@"+demo.Orgs[0].ID+".example" || dpo.Role != models.OwnerRole {
			t.Errorf("privacy officer credential %+v", dpo)
		}
		for _, c := range res.Credentials[:7] {
			want := strings.TrimPrefix(c.Role, "org:")
			if c != dpo && c.Email != want+"@"+c.OrgID+".example" || len(c.Password) != 20 {
				t.Errorf("credential %+v", c)
			}
			u, err := users.Authenticate(ctx, c.Email, c.Password)
			if err != nil {
				t.Fatalf("%s cannot sign in: %v", c.Email, err)
			}
			orgs, err := users.Organizations(ctx, u)
			if err != nil || len(orgs) != 1 || orgs[0].ID != c.OrgID || orgs[0].Role != c.Role {
				t.Errorf("%s works in %+v, want %s as %s", c.Email, orgs, c.OrgID, c.Role)
			}
		}
		if res.Credentials[0].Password == res.Credentials[1].Password {
			t.Error("two users got the same password")
		}
	})

	t.Run("events", func(t *testing.T) {
		var perOrg []struct {
			OrganizationID string
			N              int64
		}
		db.Raw(`SELECT organization_id, count(*) AS n FROM audit_log WHERE organization_id IN ? GROUP BY 1 ORDER BY 1`, res.Orgs).Scan(&perOrg)
		if len(perOrg) != 2 || perOrg[0].N+perOrg[1].N != 5000 {
			t.Fatalf("per organization: %+v", perOrg)
		}
		if share := float64(perOrg[0].N) / 5000; share < 0.6 || share > 0.8 {
			t.Errorf("acme-health holds %.0f%% of the events, want about 70%%", share*100)
		}
		var stats struct {
			Oldest, Newest                               time.Time
			Actions, Principals, Correlations, Mismapped int64
			Shared, Failures, Attempts, BadVersion       int64
		}
		db.Raw(`SELECT min("timestamp") AS oldest, max("timestamp") AS newest,
				count(DISTINCT action) AS actions, count(DISTINCT principal_id) AS principals,
				count(DISTINCT correlation_id) AS correlations,
				count(*) FILTER (WHERE retention_policy <> CASE data_classification WHEN 'PHI' THEN 'phi_extended'
					WHEN 'INTERNAL' THEN 'standard' WHEN 'CONFIDENTIAL' THEN 'confidential' ELSE 'minimal' END) AS mismapped,
				count(*) FILTER (WHERE status = 'failure') AS failures,
				count(*) FILTER (WHERE status = 'attempt') AS attempts,
				count(*) FILTER (WHERE event_version <> '1.0') AS bad_version
			FROM audit_log WHERE organization_id IN ?`, res.Orgs).Scan(&stats)
		if stats.Oldest.Before(now.AddDate(-1, 0, 0)) || !stats.Newest.Before(now) {
			t.Errorf("events span %v – %v, want the year before %v", stats.Oldest, stats.Newest, now)
		}
		if stats.Newest.Sub(stats.Oldest) < 300*24*time.Hour {
			t.Errorf("events span only %v", stats.Newest.Sub(stats.Oldest))
		}
		if stats.Actions < 12 || stats.Principals < 20 || stats.Mismapped != 0 || stats.BadVersion != 0 {
			t.Errorf("stats %+v", stats)
		}
		if stats.Failures == 0 || stats.Attempts == 0 || stats.Failures > 1000 {
			t.Errorf("%d failures and %d attempts in 5000 events", stats.Failures, stats.Attempts)
		}
		if stats.Correlations > 2500 {
			t.Errorf("%d correlation ids for 5000 events: they should group events", stats.Correlations)
		}
		for _, action := range []string{"auth.login.success", "auth.login.failure", "auth.logout", "patient.record.read",
			"patient.record.update", "observation.create", "medication.order.create", "order.create", "data.export",
			"report.generate", "user.permission.change", "data.access.unauthorized"} {
			var n int64
			db.Raw(`SELECT count(*) FROM audit_log WHERE organization_id IN ? AND action = ?`, res.Orgs, action).Scan(&n)
			if n == 0 {
				t.Errorf("no %s event", action)
			}
		}
	})

	t.Run("a sample verifies after the round trip", func(t *testing.T) {
		store := models.NewEventStore(db)
		f := models.EventFilter{From: now.AddDate(-1, 0, -1), To: now}
		checked := 0
		for _, org := range res.Orgs {
			page, err := store.List(ctx, org, f, nil, 100)
			if err != nil {
				t.Fatal(err)
			}
			for _, row := range page.Events {
				ev, err := store.Get(ctx, org, row.ID)
				if err != nil {
					t.Fatal(err)
				}
				v, err := s.Verify(ev)
				if err != nil || !v.HashOK || !v.SignatureOK {
					t.Fatalf("event %d (%s) does not verify: %+v, %v", ev.ID, ev.Action, v, err)
				}
				checked++
			}
		}
		if checked != 200 {
			t.Fatalf("checked %d events", checked)
		}
	})

	t.Run("second run adds nothing", func(t *testing.T) {
		again, err := demo.Seed(ctx, db, s, models.NewPartitionManager(db), opts)
		if err != nil {
			t.Fatal(err)
		}
		if again.EventsWritten != 0 || again.Skipped == "" || len(again.Credentials) != 0 {
			t.Fatalf("second run: %+v", again)
		}
		var n int64
		db.Raw(`SELECT count(*) FROM audit_log WHERE organization_id IN ?`, res.Orgs).Scan(&n)
		if n != 5000 {
			t.Fatalf("%d events after the second run", n)
		}
		users := models.NewUserStore(db)
		for _, c := range res.Credentials {
			if _, err := users.Authenticate(ctx, c.Email, c.Password); err != nil {
				t.Errorf("%s lost its password: %v", c.Email, err)
			}
		}
	})
}

func TestDemoGenerator(t *testing.T) {
	now := time.Date(2026, 11, 20, 15, 0, 0, 0, time.UTC)
	a := demo.Batch(now, 7, 3, 2000)
	if len(a) != 2000 {
		t.Fatalf("batch of %d events, want 2000", len(a))
	}
	t.Run("deterministic", func(t *testing.T) {
		if b := demo.Batch(now, 7, 3, 2000); !reflect.DeepEqual(a, b) {
			t.Fatal("the same seed and batch gave different events")
		}
		if c := demo.Batch(now, 8, 3, 2000); reflect.DeepEqual(a, c) {
			t.Fatal("another seed gave the same events")
		}
		if c := demo.Batch(now, 7, 4, 2000); reflect.DeepEqual(a, c) {
			t.Fatal("another batch gave the same events")
		}
	})
	t.Run("weekdays and daytime", func(t *testing.T) {
		clinic := time.FixedZone("clinic", -5*3600)
		weekday, daytime := 0, 0
		for _, ev := range a {
			local := ev.Timestamp.In(clinic)
			if wd := local.Weekday(); wd != time.Saturday && wd != time.Sunday {
				weekday++
			}
			if h := local.Hour(); h >= 7 && h < 20 {
				daytime++
			}
		}
		if share := float64(weekday) / float64(len(a)); share < 0.8 {
			t.Errorf("%.0f%% of events on weekdays, want a weekday bias (> 80%%)", share*100)
		}
		if share := float64(daytime) / float64(len(a)); share < 0.75 {
			t.Errorf("%.0f%% of events in the day, want a daytime bias (> 75%%)", share*100)
		}
	})
	t.Run("well formed", func(t *testing.T) {
		s := pgtest.Sealer(t)
		for i := range a {
			ev := a[i]
			if ev.Timestamp.After(now) || ev.Timestamp.Before(now.AddDate(-1, 0, 0)) {
				t.Fatalf("event %d at %v", i, ev.Timestamp)
			}
			if ev.PrincipalID == nil || ev.CorrelationID == nil || ev.OutcomeDescription == nil || *ev.OutcomeDescription == "" {
				t.Fatalf("event %d lacks principal, correlation or outcome: %+v", i, ev)
			}
			if err := s.Seal(&ev); err != nil {
				t.Fatalf("event %d does not seal: %v (%s)", i, err, ev.Details)
			}
		}
	})
}

// TestSeedDemoMillion times the full-size demo seed in a database of its own. It writes a
// million events, so it runs only with AUDITDB_DEMO_MILLION=1.
func TestSeedDemoMillion(t *testing.T) {
	if os.Getenv("AUDITDB_DEMO_MILLION") != "1" {
		t.Skip("set AUDITDB_DEMO_MILLION=1 to time seeding 1,000,000 demo events")
	}
	ctx := context.Background()
	name := fmt.Sprintf("auditdb_demo_million_%d", os.Getpid())
	if err := pgtest.Clone(ctx, name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pgtest.Drop(context.Background(), name) })
	u, _ := url.Parse(pgtest.DSN(t))
	u.Path = "/" + name
	db, err := models.Open(ctx, u.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeDB(db) })

	start := time.Now()
	res, err := demo.Seed(ctx, db, pgtest.Sealer(t), models.NewPartitionManager(db), demo.Options{Events: 1_000_000, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	if res.EventsWritten != 1_000_000 {
		t.Fatalf("wrote %d events, want 1000000", res.EventsWritten)
	}
	t.Logf("seeded %d events in %v (%.0f rows/s)", res.EventsWritten, elapsed.Round(time.Millisecond),
		float64(res.EventsWritten)/elapsed.Seconds())
}

func closeDB(db *gorm.DB) {
	if sqlDB, err := db.DB(); err == nil {
		sqlDB.Close()
	}
}
