package models_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"auditdb/models"
	"auditdb/models/pgtest"
)

func TestPartitionNameAndMonthStartAreUTC(t *testing.T) {
	est := time.FixedZone("UTC-5", -5*3600)
	cest := time.FixedZone("UTC+2", 2*3600)
	cases := []struct {
		name  string
		t     time.Time
		month time.Time
		part  string
	}{
		{"23:30 on the last day of January in UTC-5 is February", time.Date(2025, 1, 31, 23, 30, 0, 0, est),
			time.Date(2025, 2, 1, 0, 0, 0, 0, time.UTC), "audit_log_2025_02"},
		{"new year's eve 19:00 in UTC-5 is January", time.Date(2025, 12, 31, 19, 0, 0, 0, est),
			time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), "audit_log_2026_01"},
		{"00:30 on 1 March in UTC+2 is still February", time.Date(2024, 3, 1, 0, 30, 0, 0, cest),
			time.Date(2024, 2, 1, 0, 0, 0, 0, time.UTC), "audit_log_2024_02"},
		{"leap day", time.Date(2024, 2, 29, 12, 0, 0, 0, time.UTC),
			time.Date(2024, 2, 1, 0, 0, 0, 0, time.UTC), "audit_log_2024_02"},
		{"last nanosecond of a month", time.Date(2024, 12, 31, 23, 59, 59, 999_999_999, time.UTC),
			time.Date(2024, 12, 1, 0, 0, 0, 0, time.UTC), "audit_log_2024_12"},
		{"first instant of a month", time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC),
			time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), "audit_log_2025_01"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := models.MonthStart(c.t)
			if !m.Equal(c.month) || m.Location() != time.UTC {
				t.Errorf("MonthStart = %v, want %v", m, c.month)
			}
			if got := models.PartitionName("audit_log", c.t); got != c.part {
				t.Errorf("PartitionName = %s, want %s", got, c.part)
			}
		})
	}
}

func partitionExists(t *testing.T, name string) bool {
	t.Helper()
	var ok bool
	if err := pgtest.DB(t).Raw(`SELECT to_regclass(?) IS NOT NULL`, "public."+name).Scan(&ok).Error; err != nil {
		t.Fatal(err)
	}
	return ok
}

func dropTables(t *testing.T, names ...string) {
	t.Helper()
	t.Cleanup(func() {
		for _, n := range names {
			pgtest.DB(t).Exec("DROP TABLE IF EXISTS " + n)
		}
	})
}

// partitionBound returns the partition bound of name as PostgreSQL prints it in UTC.
func partitionBound(t *testing.T, name string) string {
	t.Helper()
	var bound string
	err := pgtest.DB(t).Transaction(func(tx *gorm.DB) error {
		if err := tx.Exec("SET LOCAL TimeZone = 'UTC'").Error; err != nil {
			return err
		}
		return tx.Raw(`SELECT pg_get_expr(relpartbound, oid) FROM pg_class WHERE relname = ?`, name).Scan(&bound).Error
	})
	if err != nil {
		t.Fatal(err)
	}
	return bound
}

func TestEnsureCreatesCurrentAndSixAhead(t *testing.T) {
	ctx := context.Background()
	db := pgtest.DB(t)
	// 23:30 on 29 February 2040 in UTC-5 is already March in UTC.
	now := time.Date(2040, 2, 29, 23, 30, 0, 0, time.FixedZone("UTC-5", -5*3600))
	var want []string
	for _, table := range models.PartitionedTables {
		for i := 0; i <= models.MonthsAhead; i++ {
			want = append(want, models.PartitionName(table, time.Date(2040, time.March+time.Month(i), 1, 0, 0, 0, 0, time.UTC)))
		}
	}
	dropTables(t, want...)

	created, err := models.NewPartitionManager(db).Ensure(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(created, want) {
		t.Fatalf("created %v\nwant    %v", created, want)
	}
	for _, name := range want {
		if !partitionExists(t, name) {
			t.Errorf("%s missing", name)
		}
	}
	if got := partitionBound(t, "audit_log_2040_03"); got != "FOR VALUES FROM ('2040-03-01 00:00:00+00') TO ('2040-04-01 00:00:00+00')" {
		t.Errorf("bound of audit_log_2040_03 is %s", got)
	}
	if models.PartitionName("audit_log", now) != "audit_log_2040_03" {
		t.Error("the test's premise is wrong")
	}
	t.Run("idempotent", func(t *testing.T) {
		for _, pm := range []*models.PartitionManager{models.NewPartitionManager(db), models.NewPartitionManager(db)} {
			created, err := pm.Ensure(ctx, now)
			if err != nil || len(created) != 0 {
				t.Fatalf("second Ensure created %v, %v", created, err)
			}
		}
	})
	t.Run("listed with their ranges", func(t *testing.T) {
		parts, err := models.NewPartitionManager(db).List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		found := 0
		for _, p := range parts {
			if !slices.Contains(want, p.Name) {
				continue
			}
			found++
			if p.Name != models.PartitionName(p.Table, p.From) || !p.To.Equal(p.From.AddDate(0, 1, 0)) ||
				p.From.Location() != time.UTC || p.From.Day() != 1 || p.Bytes <= 0 {
				t.Errorf("bad listing %+v", p)
			}
		}
		if found != len(want) {
			t.Errorf("List shows %d of the %d partitions", found, len(want))
		}
		for i := 1; i < len(parts); i++ {
			a, b := parts[i-1], parts[i]
			if a.Table > b.Table || (a.Table == b.Table && !a.From.Before(b.From)) {
				t.Errorf("List out of order at %s, %s", a.Name, b.Name)
			}
		}
	})
	t.Run("an event lands in its UTC month", func(t *testing.T) {
		ev := models.Event{OrganizationID: testOrg(t, ""), Action: "x", Timestamp: now}
		seedEvents(t, []models.Event{ev})
		var part string
		db.Raw(`SELECT tableoid::regclass::text FROM audit_log WHERE organization_id = ?`, ev.OrganizationID).Scan(&part)
		if part != "audit_log_2040_03" {
			t.Fatalf("event of %v stored in %s", now, part)
		}
	})
}

func TestEnsureForBackfillsOldMonth(t *testing.T) {
	ctx := context.Background()
	db := pgtest.DB(t)
	old := time.Date(2021, 4, 30, 22, 0, 0, 0, time.FixedZone("UTC-3", -3*3600)) // 1 May in UTC
	dropTables(t, "audit_log_2021_05")
	if partitionExists(t, "audit_log_2021_05") {
		t.Fatal("partition exists before the test")
	}
	pm := models.NewPartitionManager(db)
	if err := pm.EnsureFor(ctx, "audit_log", old, old.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if !partitionExists(t, "audit_log_2021_05") || partitionExists(t, "audit_log_2021_04") {
		t.Fatal("EnsureFor did not create exactly the partition of the UTC month")
	}
	if err := pm.EnsureFor(ctx, "audit_log", old); err != nil {
		t.Fatalf("second EnsureFor: %v", err)
	}
	parts, err := pm.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(parts, func(p models.Partition) bool { return p.Name == "audit_log_2021_05" })
	if i < 0 {
		t.Fatal("List does not show the backfilled partition")
	}
	if p := parts[i]; !p.From.Equal(time.Date(2021, 5, 1, 0, 0, 0, 0, time.UTC)) || !p.To.Equal(time.Date(2021, 6, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("range %v – %v", p.From, p.To)
	}
}

// TestPartitionNamesNeverComeFromInput: the table name is checked against a fixed list
// before it is spliced into DDL, and tables that are not ours are never listed or dropped.
func TestPartitionNamesNeverComeFromInput(t *testing.T) {
	ctx := context.Background()
	db := pgtest.DB(t)
	pm := models.NewPartitionManager(db)
	for _, table := range []string{"users", "audit_log; DROP TABLE users; --", `audit_log" PARTITION OF users`, "audit_log_2025_01", ""} {
		t.Run(table, func(t *testing.T) {
			if err := pm.EnsureFor(ctx, table, time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)); err == nil {
				t.Fatalf("EnsureFor accepted table %q", table)
			}
		})
	}
	if !partitionExists(t, "users") {
		t.Fatal("users is gone")
	}
	// A partition someone attached by hand, under a name of their own, over an ancient range.
	dropTables(t, "audit_log_legacy")
	if err := db.Exec(`CREATE TABLE audit_log_legacy PARTITION OF audit_log FOR VALUES FROM ('2001-01-01') TO ('2002-01-01')`).Error; err != nil {
		t.Fatal(err)
	}
	parts, err := pm.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range parts {
		if p.Name == "audit_log_legacy" {
			t.Fatal("List shows a partition that is not ours")
		}
	}
	dropped, err := pm.DropExpired(ctx, time.Now(), false)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range dropped {
		if p.Name == "audit_log_legacy" {
			t.Fatal("DropExpired dropped a partition that is not ours")
		}
	}
	if !partitionExists(t, "audit_log_legacy") {
		t.Fatal("audit_log_legacy was dropped")
	}
}

func names(parts []models.Partition) []string {
	out := make([]string, len(parts))
	for i, p := range parts {
		out[i] = p.Name
	}
	return out
}

func TestDropExpired(t *testing.T) {
	ctx := context.Background()
	db := pgtest.DB(t)
	now := time.Now().UTC()
	pm := models.NewPartitionManager(db)
	cutoff, err := pm.RetentionCutoff(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	if want := now.AddDate(0, 0, -2555); !cutoff.Equal(want) {
		t.Fatalf("cutoff %v, want now - 2555 days (standard and phi_extended) = %v", cutoff, want)
	}
	eightYears := now.AddDate(-8, 0, 0)
	sixYears := now.AddDate(-6, 0, 0)
	old8 := models.PartitionName("audit_log", eightYears)
	old8err := models.PartitionName("error_log", eightYears)
	old6 := models.PartitionName("audit_log", sixYears)
	straddling := models.PartitionName("audit_log", cutoff) // holds data on both sides of the cutoff
	dropTables(t, old8, old8err, old6, straddling)
	if err := pm.EnsureFor(ctx, "audit_log", eightYears, sixYears, cutoff); err != nil {
		t.Fatal(err)
	}
	if err := pm.EnsureFor(ctx, "error_log", eightYears); err != nil {
		t.Fatal(err)
	}
	evOrg := testOrg(t, "")
	seedEvents(t, []models.Event{{OrganizationID: evOrg, Action: "old", Timestamp: eightYears}})

	check := func(t *testing.T, got []models.Partition) {
		t.Helper()
		n := names(got)
		for _, must := range []string{old8, old8err} {
			if !slices.Contains(n, must) {
				t.Errorf("%s (8 years old) not in %v", must, n)
			}
		}
		for _, mustNot := range []string{old6, straddling} {
			if slices.Contains(n, mustNot) {
				t.Errorf("%s is still within retention but in %v", mustNot, n)
			}
		}
		for _, p := range got {
			if p.To.After(cutoff) {
				t.Errorf("%s ends %v, after the cutoff %v", p.Name, p.To, cutoff)
			}
		}
	}
	t.Run("dry run lists but keeps", func(t *testing.T) {
		got, err := pm.DropExpired(ctx, now, true)
		if err != nil {
			t.Fatal(err)
		}
		check(t, got)
		for _, name := range []string{old8, old8err, old6, straddling} {
			if !partitionExists(t, name) {
				t.Errorf("dry run dropped %s", name)
			}
		}
	})
	t.Run("no active policy refuses", func(t *testing.T) {
		errRollback := errors.New("roll back")
		err := db.Transaction(func(tx *gorm.DB) error {
			if err := tx.Exec(`UPDATE audit_retention_policy SET is_active = false`).Error; err != nil {
				return err
			}
			pm := models.NewPartitionManager(tx)
			if _, err := pm.RetentionCutoff(ctx, now); models.KindOf(err) != models.KindConflict {
				t.Errorf("RetentionCutoff = %v, want KindConflict", err)
			}
			got, err := pm.DropExpired(ctx, now, false)
			if models.KindOf(err) != models.KindConflict || len(got) != 0 {
				t.Errorf("DropExpired = %v, %v; want KindConflict and nothing", names(got), err)
			}
			return errRollback
		})
		if !errors.Is(err, errRollback) {
			t.Fatal(err)
		}
		var active int64
		db.Raw(`SELECT count(*) FROM audit_retention_policy WHERE is_active`).Scan(&active)
		if active != int64(len(models.DefaultRetentionPolicies)) {
			t.Fatalf("%d active policies after the rollback", active)
		}
		if !partitionExists(t, old8) {
			t.Fatal("partition dropped without an active policy")
		}
	})
	t.Run("the longest active policy decides", func(t *testing.T) {
		errRollback := errors.New("roll back")
		db.Transaction(func(tx *gorm.DB) error {
			// Without the two 7-year policies, the 5-year "confidential" one is the longest.
			tx.Exec(`UPDATE audit_retention_policy SET is_active = false WHERE retention_days = 2555`)
			got, err := models.NewPartitionManager(tx).DropExpired(ctx, now, true)
			if err != nil {
				t.Error(err)
			} else if !slices.Contains(names(got), old6) {
				t.Errorf("with 1825 days of retention the 6-year-old %s should go; got %v", old6, names(got))
			}
			return errRollback
		})
	})
	t.Run("delete_after_days of an organization's policy extends the cutoff", func(t *testing.T) {
		errRollback := errors.New("roll back")
		db.Transaction(func(tx *gorm.DB) error {
			tx.Exec(`INSERT INTO audit_retention_policy (organization_id, policy_name, retention_days, delete_after_days, data_classification)
				VALUES ('some-org', 'long_tail', 30, 3650, 'PUBLIC')`)
			got, err := models.NewPartitionManager(tx).DropExpired(ctx, now, true)
			if err != nil {
				t.Error(err)
			} else if slices.Contains(names(got), old8) {
				t.Errorf("a policy deleting after 3650 days keeps the 8-year-old %s; got %v", old8, names(got))
			}
			return errRollback
		})
	})
	t.Run("a legal hold keeps its events' partition", func(t *testing.T) {
		errRollback := errors.New("roll back")
		db.Transaction(func(tx *gorm.DB) error {
			if err := tx.Exec(`INSERT INTO organizations (id, name) VALUES (?, 'held') ON CONFLICT DO NOTHING`, evOrg).Error; err != nil {
				t.Error(err)
				return errRollback
			}
			if err := tx.Exec(`INSERT INTO legal_holds (organization_id, name, reason, scope, placed_by)
				VALUES (?, 'matter', 'litigation', 'organization', 'test')`, evOrg).Error; err != nil {
				t.Error(err)
				return errRollback
			}
			got, err := models.NewPartitionManager(tx).DropExpired(ctx, now, true)
			if err != nil {
				t.Error(err)
			} else if slices.Contains(names(got), old8) || !slices.Contains(names(got), old8err) {
				t.Errorf("the held %s must stay and %s go; got %v", old8, old8err, names(got))
			}
			return errRollback
		})
	})
	t.Run("drops only what is wholly past retention", func(t *testing.T) {
		version := func() int64 {
			var v int64
			db.Raw(`SELECT coalesce(max(version), 0) FROM query_cache_versions WHERE organization_id = ?`, evOrg).Scan(&v)
			return v
		}
		if err := db.Exec(`INSERT INTO organizations (id, name) VALUES (?, 'partition drop') ON CONFLICT DO NOTHING`, evOrg).Error; err != nil {
			t.Fatal(err)
		}
		before := version()
		got, err := pm.DropExpired(ctx, now, false)
		if err != nil {
			t.Fatal(err)
		}
		check(t, got)
		// The dropped events leave the organizations' cached answers.
		if after := version(); after <= before {
			t.Errorf("cache version %d after dropping a partition, was %d: cached answers would still show its events", after, before)
		}
		for _, name := range []string{old8, old8err} {
			if partitionExists(t, name) {
				t.Errorf("%s still exists", name)
			}
		}
		for _, name := range []string{old6, straddling} {
			if !partitionExists(t, name) {
				t.Errorf("%s was dropped", name)
			}
		}
		// The manager forgot the dropped month: a late event for it recreates the partition.
		if err := pm.EnsureFor(ctx, "audit_log", eightYears); err != nil || !partitionExists(t, old8) {
			t.Errorf("EnsureFor after the drop: %v", err)
		}
	})
}

// A partition of audit_log refuses TRUNCATE unless the transaction declared the purpose
// 'retention' (audit_log's own guard does not reach its partitions): both one the
// migrations found and one EnsureFor creates.
func TestAuditLogPartitionRefusesTruncate(t *testing.T) {
	ctx := context.Background()
	db := pgtest.DB(t)
	m := time.Date(2016, 3, 1, 0, 0, 0, 0, time.UTC)
	dropTables(t, "audit_log_2016_03")
	if err := models.NewPartitionManager(db).EnsureFor(ctx, "audit_log", m); err != nil {
		t.Fatal(err)
	}
	var found []string
	if err := db.Raw(`SELECT c.relname FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid JOIN pg_inherits i ON i.inhrelid = c.oid
		WHERE i.inhparent = 'audit_log'::regclass AND g.tgname = 'audit_log_partition_no_truncate'`).Scan(&found).Error; err != nil {
		t.Fatal(err)
	}
	var all int
	db.Raw(`SELECT count(*) FROM pg_inherits WHERE inhparent = 'audit_log'::regclass`).Scan(&all)
	if len(found) != all || !slices.Contains(found, "audit_log_2016_03") {
		t.Fatalf("%d of %d partitions have the guard: %v", len(found), all, found)
	}
	for _, tc := range []struct {
		purpose string
		refused bool
	}{{"", true}, {"gdpr", true}, {"retention", false}} {
		t.Run("purpose "+tc.purpose, func(t *testing.T) {
			err := db.Transaction(func(tx *gorm.DB) error {
				if tc.purpose != "" {
					if err := tx.Exec(`SELECT set_config('auditdb.purpose', ?, true)`, tc.purpose).Error; err != nil {
						return err
					}
				}
				return tx.Exec(`TRUNCATE audit_log_2016_03`).Error
			})
			if refused := err != nil && strings.Contains(err.Error(), "TRUNCATE on audit_log_2016_03 refused"); refused != tc.refused {
				t.Fatalf("TRUNCATE under purpose %q: %v", tc.purpose, err)
			}
		})
	}
}
