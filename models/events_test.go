package models_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"auditdb/models"
	"auditdb/models/ingest"
	"auditdb/models/pgtest"
)

// seedEvents seals and copies events (filling defaults for the required fields) and returns
// their ids in the order given.
func seedEvents(t *testing.T, events []models.Event) []int64 {
	t.Helper()
	ctx := context.Background()
	db := pgtest.DB(t)
	s := testSealer(t)
	orgs := map[string]bool{}
	for i := range events {
		ev := &events[i]
		if ev.Status == "" {
			ev.Status = "success"
		}
		if ev.DataClassification == "" {
			ev.DataClassification = "INTERNAL"
		}
		if ev.RetentionPolicy == "" {
			ev.RetentionPolicy = "standard"
		}
		if ev.EventVersion == "" {
			ev.EventVersion = "1.0"
		}
		if err := s.Seal(ev); err != nil {
			t.Fatal(err)
		}
		orgs[ev.OrganizationID] = true
	}
	var before int64
	db.Raw(`SELECT coalesce(max(id), 0) FROM audit_log`).Scan(&before)
	if _, err := ingest.CopyEvents(ctx, db, models.NewPartitionManager(db), events); err != nil {
		t.Fatal(err)
	}
	var ids []int64
	err := db.Raw(`SELECT id FROM audit_log WHERE id > ? AND organization_id IN ? ORDER BY id`, before, keys(orgs)).Scan(&ids).Error
	if err != nil || len(ids) != len(events) {
		t.Fatalf("read back %d ids (%v), want %d", len(ids), err, len(events))
	}
	return ids
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// listAll pages through the whole list with the given page size and returns every row.
func listAll(t *testing.T, org string, f models.EventFilter, limit int) []models.Event {
	t.Helper()
	store := models.NewEventStore(pgtest.DB(t))
	var out []models.Event
	var after *models.Cursor
	for pages := 0; ; pages++ {
		if pages > 10_000 {
			t.Fatal("pagination does not end")
		}
		page, err := store.List(context.Background(), org, f, after, limit)
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		out = append(out, page.Events...)
		if page.Next == nil {
			return out
		}
		// Go through the URL form, as the console does.
		c, err := models.ParseCursor(page.Next.String())
		if err != nil {
			t.Fatalf("ParseCursor(%s): %v", page.Next.String(), err)
		}
		after = &c
	}
}

func ids(events []models.Event) []int64 {
	out := make([]int64, len(events))
	for i, e := range events {
		out[i] = e.ID
	}
	return out
}

var year2026 = models.EventFilter{
	From: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
	To:   time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC),
}

func TestListNewestFirstKeysetPagination(t *testing.T) {
	org := testOrg(t, "")
	// 7 distinct timestamps, 5 events on each: pages must split ties by id.
	base := time.Date(2026, 6, 15, 12, 0, 0, 0, time.UTC)
	var events []models.Event
	for i := 0; i < 35; i++ {
		ts := base.Add(time.Duration(i%7) * 17 * time.Hour) // shuffled order, crosses days
		events = append(events, models.Event{OrganizationID: org, Action: "a", Timestamp: ts})
	}
	seeded := seedEvents(t, events)

	full := listAll(t, org, year2026, 500)
	if len(full) != len(events) {
		t.Fatalf("one page holds %d rows, want %d", len(full), len(events))
	}
	for i := 1; i < len(full); i++ {
		a, b := full[i-1], full[i]
		if a.Timestamp.Before(b.Timestamp) || (a.Timestamp.Equal(b.Timestamp) && a.ID <= b.ID) {
			t.Fatalf("rows %d and %d out of order: (%v, %d) then (%v, %d)", i-1, i, a.Timestamp, a.ID, b.Timestamp, b.ID)
		}
	}
	for _, size := range []int{1, 2, 3, 4, 5, 6, 34, 35, 36} {
		t.Run(fmt.Sprintf("page size %d", size), func(t *testing.T) {
			got := listAll(t, org, year2026, size)
			if !slices.Equal(ids(got), ids(full)) {
				t.Fatalf("paged ids %v\nwant     %v", ids(got), ids(full))
			}
		})
	}
	sorted := slices.Clone(seeded)
	slices.Sort(sorted)
	got := ids(full)
	slices.Sort(got)
	if !slices.Equal(got, sorted) {
		t.Fatalf("list returned %v, seeded %v", got, sorted)
	}
	t.Run("range is half-open", func(t *testing.T) {
		f := year2026
		f.From, f.To = base, base.Add(17*time.Hour) // only the first timestamp
		if got := listAll(t, org, f, 500); len(got) != 5 {
			t.Fatalf("[base, base+17h) holds %d rows, want 5", len(got))
		}
	})
	t.Run("limit bounds", func(t *testing.T) {
		for _, limit := range []int{0, -1, 501} {
			_, err := models.NewEventStore(pgtest.DB(t)).List(context.Background(), org, year2026, nil, limit)
			if models.KindOf(err) != models.KindInvalid || models.FieldOf(err) != "limit" {
				t.Errorf("limit %d: %v, want KindInvalid on limit", limit, err)
			}
		}
	})
}

// text is a query of one free-text term.
func text(s string) models.EventQuery {
	return models.EventQuery{Terms: []models.QueryTerm{{Value: s}}}
}

type filterCase struct {
	name string
	f    func(f *models.EventFilter)
	want []int64
}

// hostile strings: each must match only itself, literally.
var hostile = []string{`'; DROP TABLE audit_log; --`, `%`, `_`, `\`, `%'--`, `a%b_c\d`}

func TestListFilters(t *testing.T) {
	org := testOrg(t, "")
	ts := time.Date(2026, 5, 5, 10, 0, 0, 0, time.UTC)
	ev := func(mut func(e *models.Event)) models.Event {
		e := models.Event{OrganizationID: org, Action: "patient.record.read", Timestamp: ts,
			PrincipalID: ptr("dr.jane.smith"), TargetResourceType: ptr("Patient"), TargetResourceID: ptr("pat-1"),
			CorrelationID: ptr("corr-1"), OutcomeDescription: ptr("Viewed chart"), DataClassification: "PHI"}
		ts = ts.Add(time.Minute)
		mut(&e)
		return e
	}
	events := []models.Event{
		ev(func(e *models.Event) {}),
		ev(func(e *models.Event) {
			e.Action = "auth.login.failure"
			e.Status = "failure"
			e.DataClassification = "INTERNAL"
		}),
		ev(func(e *models.Event) { e.PrincipalID = ptr("nurse.kim") }),
		ev(func(e *models.Event) { e.TargetResourceType = ptr("Observation"); e.TargetResourceID = ptr("obs-9") }),
		ev(func(e *models.Event) { e.TargetResourceID = ptr("pat-2") }),
		ev(func(e *models.Event) { e.DataClassification = "CONFIDENTIAL"; e.Action = "data.export" }),
		ev(func(e *models.Event) { e.CorrelationID = ptr("corr-2"); e.Status = "attempt" }),
		ev(func(e *models.Event) { e.OutcomeDescription = ptr("Exported 100% of the QUARTERLY report") }),
		ev(func(e *models.Event) { e.OutcomeDescription = nil; e.PrincipalID = nil; e.CorrelationID = nil }),
	}
	// One event per hostile string and field, carrying it literally.
	for _, h := range hostile {
		events = append(events, ev(func(e *models.Event) {
			e.Action, e.PrincipalID, e.TargetResourceType, e.TargetResourceID, e.CorrelationID = h, ptr(h), ptr(h), ptr(h), ptr(h)
			e.OutcomeDescription = ptr("outcome with " + h + " inside")
		}))
	}
	id := seedEvents(t, events)

	cases := []filterCase{
		{"no filter", func(f *models.EventFilter) {}, id},
		{"action", func(f *models.EventFilter) { f.Action = "auth.login.failure" }, []int64{id[1]}},
		{"status failure", func(f *models.EventFilter) { f.Status = "failure" }, []int64{id[1]}},
		{"status attempt", func(f *models.EventFilter) { f.Status = "attempt" }, []int64{id[6]}},
		{"principal", func(f *models.EventFilter) { f.PrincipalID = "nurse.kim" }, []int64{id[2]}},
		{"principal is exact, not prefix", func(f *models.EventFilter) { f.PrincipalID = "dr.jane" }, nil},
		{"resource type", func(f *models.EventFilter) { f.ResourceType = "Observation" }, []int64{id[3]}},
		{"resource id", func(f *models.EventFilter) { f.ResourceID = "pat-2" }, []int64{id[4]}},
		{"classification", func(f *models.EventFilter) { f.Classification = "CONFIDENTIAL" }, []int64{id[5]}},
		{"correlation id", func(f *models.EventFilter) { f.CorrelationID = "corr-2" }, []int64{id[6]}},
		{"text is case-insensitive substring", func(f *models.EventFilter) { f.Query = text("quarterly") }, []int64{id[7]}},
		{"text with percent", func(f *models.EventFilter) { f.Query = text("100%") }, []int64{id[7]}},
		{"combined", func(f *models.EventFilter) {
			f.Action, f.PrincipalID, f.Classification = "patient.record.read", "dr.jane.smith", "PHI"
			f.ResourceType, f.ResourceID, f.CorrelationID, f.Query = "Patient", "pat-1", "corr-1", text("chart")
		}, []int64{id[0]}},
		{"time range excludes", func(f *models.EventFilter) {
			f.From, f.To = ts.Add(time.Hour), ts.Add(2*time.Hour)
		}, nil},
	}
	for i, h := range hostile {
		want := []int64{id[9+i]}
		cases = append(cases,
			filterCase{"hostile action " + h, func(f *models.EventFilter) { f.Action = h }, want},
			filterCase{"hostile principal " + h, func(f *models.EventFilter) { f.PrincipalID = h }, want},
			filterCase{"hostile resource type " + h, func(f *models.EventFilter) { f.ResourceType = h }, want},
			filterCase{"hostile resource id " + h, func(f *models.EventFilter) { f.ResourceID = h }, want},
			filterCase{"hostile correlation id " + h, func(f *models.EventFilter) { f.CorrelationID = h }, want},
			filterCase{"hostile text " + h, func(f *models.EventFilter) { f.Query = text("with " + h + " in") }, want},
		)
	}
	// Wildcard characters inside the text match themselves only.
	cases = append(cases, filterCase{"text with underscore", func(f *models.EventFilter) { f.Query = text("b_c") }, []int64{id[9+5]}})
	cases = append(cases, filterCase{"text with backslash", func(f *models.EventFilter) { f.Query = text(`c\d`) }, []int64{id[9+5]}})
	cases = append(cases, filterCase{"text with percent and quote", func(f *models.EventFilter) { f.Query = text(`%'-`) }, []int64{id[9+4]}})
	// Qualifiers: case-insensitive, prefixes, negation (which keeps events without the
	// field), resource Type/ID.
	q := func(s string) func(f *models.EventFilter) {
		return func(f *models.EventFilter) {
			parsed, err := models.ParseEventQuery(s)
			if err != nil {
				t.Fatalf("parse %q: %v", s, err)
			}
			f.Query = parsed
		}
	}
	all := func(except ...int64) []int64 {
		var out []int64
		for _, x := range id {
			if !slices.Contains(except, x) {
				out = append(out, x)
			}
		}
		return out
	}
	cases = append(cases,
		filterCase{"q action exact any case", q("action:AUTH.Login.Failure"), []int64{id[1]}},
		filterCase{"q action prefix", q("action:auth.*"), []int64{id[1]}},
		filterCase{"q action negated", q("-action:patient.*"), all(id[0], id[2], id[3], id[4], id[6], id[7], id[8])},
		filterCase{"q actor any case", q("actor:Nurse.Kim"), []int64{id[2]}},
		filterCase{"q actor negated keeps events without a principal", q("-actor:dr.*"), all(id[0], id[1], id[3], id[4], id[5], id[6], id[7])},
		filterCase{"q resource type", q("resource:observation"), []int64{id[3]}},
		filterCase{"q resource type and id", q("resource:Patient/pat-2"), []int64{id[4]}},
		filterCase{"q resource id prefix", q("resource:Patient/pat-*"), []int64{id[0], id[1], id[2], id[4], id[5], id[6], id[7], id[8]}},
		filterCase{"q status", q("status:FAILURE"), []int64{id[1]}},
		filterCase{"q class", q("class:confidential"), []int64{id[5]}},
		filterCase{"q correlation", q("correlation:corr-2"), []int64{id[6]}},
		filterCase{"q correlation negated", q("-correlation:corr-1"), all(id[0], id[1], id[2], id[3], id[4], id[5], id[7])},
		filterCase{"q created narrows", q("created:<2026-05-05T10:02"), []int64{id[0], id[1]}},
		filterCase{"q free text over action", q("login"), []int64{id[1]}},
		filterCase{"q free text over principal", q("nurse"), []int64{id[2]}},
		filterCase{"q free text over resource", q(`"Observation/obs-9"`), []int64{id[3]}},
		filterCase{"q free text negated", q("-chart"), all(id[0], id[1], id[2], id[3], id[4], id[5], id[6])},
		filterCase{"q terms are ANDed", q("action:patient.record.read actor:dr.jane.smith resource:Patient/pat-2"), []int64{id[4]}},
	)

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := year2026
			c.f(&f)
			got := ids(listAll(t, org, f, 500))
			slices.Sort(got)
			want := slices.Clone(c.want)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Fatalf("got ids %v, want %v", got, want)
			}
		})
	}
	var exists bool
	pgtest.DB(t).Raw(`SELECT to_regclass('public.audit_log') IS NOT NULL`).Scan(&exists)
	if !exists {
		t.Fatal("audit_log is gone")
	}
	t.Run("hostile enum values are rejected", func(t *testing.T) {
		for _, h := range hostile {
			for field, set := range map[string]func(f *models.EventFilter){
				"status":         func(f *models.EventFilter) { f.Status = h },
				"classification": func(f *models.EventFilter) { f.Classification = h },
			} {
				f := year2026
				set(&f)
				_, err := models.NewEventStore(pgtest.DB(t)).List(context.Background(), org, f, nil, 10)
				if models.KindOf(err) != models.KindInvalid || models.FieldOf(err) != field {
					t.Errorf("%s=%q: %v, want KindInvalid on %s", field, h, err, field)
				}
			}
		}
	})
}

func TestTenantIsolation(t *testing.T) {
	ctx := context.Background()
	a, b := testOrg(t, "a"), testOrg(t, "b")
	ts := time.Date(2026, 7, 1, 9, 0, 0, 0, time.UTC)
	id := seedEvents(t, []models.Event{
		{OrganizationID: a, Action: "shared.action", Timestamp: ts, PrincipalID: ptr("same.person"), CorrelationID: ptr("same")},
		{OrganizationID: b, Action: "shared.action", Timestamp: ts, PrincipalID: ptr("same.person"), CorrelationID: ptr("same")},
		{OrganizationID: b, Action: "only.b", Timestamp: ts.Add(time.Second)},
	})
	store := models.NewEventStore(pgtest.DB(t))
	for _, c := range []filterCase{
		{"none", func(f *models.EventFilter) {}, id[:1]},
		{"action", func(f *models.EventFilter) { f.Action = "shared.action" }, id[:1]},
		{"principal", func(f *models.EventFilter) { f.PrincipalID = "same.person" }, id[:1]},
		{"correlation", func(f *models.EventFilter) { f.CorrelationID = "same" }, id[:1]},
		{"action only the other has", func(f *models.EventFilter) { f.Action = "only.b" }, nil},
	} {
		t.Run("list "+c.name, func(t *testing.T) {
			f := year2026
			c.f(&f)
			got := listAll(t, a, f, 500)
			for _, ev := range got {
				if ev.OrganizationID != a {
					t.Fatalf("org %s sees event %d of %s", a, ev.ID, ev.OrganizationID)
				}
			}
			if !slices.Equal(ids(got), c.want) {
				t.Fatalf("got %v, want %v", ids(got), c.want)
			}
		})
	}
	t.Run("get", func(t *testing.T) {
		for _, other := range id[1:] {
			if ev, err := store.Get(ctx, a, other); models.KindOf(err) != models.KindNotFound {
				t.Errorf("Get(%s, %d) = %v, %v; want KindNotFound", a, other, ev, err)
			}
		}
		if ev, err := store.Get(ctx, b, id[1]); err != nil || ev.OrganizationID != b {
			t.Errorf("Get(%s, own event) = %v, %v", b, ev, err)
		}
		if _, err := store.Get(ctx, a, 1<<62); models.KindOf(err) != models.KindNotFound {
			t.Errorf("Get of a missing id: %v, want KindNotFound", err)
		}
	})
}

func TestFilterValidate(t *testing.T) {
	ok := year2026
	cases := []struct {
		name  string
		f     func(f *models.EventFilter)
		field string // "" means valid
	}{
		{"valid", func(f *models.EventFilter) {}, ""},
		{"every field set", func(f *models.EventFilter) {
			f.Action, f.Status, f.PrincipalID, f.ResourceType = "a", "success", "p", "Patient"
			f.ResourceID, f.Classification, f.CorrelationID, f.Query = "1", "PHI", "c", text("text")
		}, ""},
		{"missing from", func(f *models.EventFilter) { f.From = time.Time{} }, "from"},
		{"missing to", func(f *models.EventFilter) { f.To = time.Time{} }, "from"},
		{"to before from", func(f *models.EventFilter) { f.From, f.To = f.To, f.From }, "to"},
		{"empty range", func(f *models.EventFilter) { f.To = f.From }, "to"},
		{"bad status", func(f *models.EventFilter) { f.Status = "ok" }, "status"},
		{"status wrong case", func(f *models.EventFilter) { f.Status = "SUCCESS" }, "status"},
		{"bad classification", func(f *models.EventFilter) { f.Classification = "SECRET" }, "classification"},
		{"classification wrong case", func(f *models.EventFilter) { f.Classification = "phi" }, "classification"},
		{"q value of 200 characters", func(f *models.EventFilter) { f.Query = text(strings.Repeat("é", 200)) }, ""},
		{"free text too short", func(f *models.EventFilter) { f.Query = text("ab") }, "q"},
		{"q value of 256 characters", func(f *models.EventFilter) { f.Query = text(strings.Repeat("x", 256)) }, "q"},
		{"action of 256 characters", func(f *models.EventFilter) { f.Action = strings.Repeat("a", 256) }, "action"},
		{"principal with NUL", func(f *models.EventFilter) { f.PrincipalID = "a\x00b" }, "principal"},
		{"resource id invalid utf-8", func(f *models.EventFilter) { f.ResourceID = "\xff" }, "resource_id"},
		{"first bad field in form order", func(f *models.EventFilter) {
			f.Action, f.CorrelationID, f.Query = strings.Repeat("a", 256), "\xff", text(strings.Repeat("q", 256))
		}, "action"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := ok
			c.f(&f)
			err := f.Validate()
			if c.field == "" {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			if models.KindOf(err) != models.KindInvalid || models.FieldOf(err) != c.field {
				t.Fatalf("Validate = %v, want KindInvalid on %q", err, c.field)
			}
		})
	}
}

func TestParseCursor(t *testing.T) {
	c := models.Cursor{Timestamp: time.Date(2026, 2, 3, 4, 5, 6, 789012000, time.UTC), ID: 4242}
	got, err := models.ParseCursor(c.String())
	if err != nil || !got.Timestamp.Equal(c.Timestamp) || got.ID != c.ID {
		t.Fatalf("round trip %v → %v, %v", c, got, err)
	}
	enc := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	for name, s := range map[string]string{
		"empty":           "",
		"not base64":      "!!!",
		"padded base64":   base64.URLEncoding.EncodeToString([]byte("1.23")),
		"no separator":    enc("12345"),
		"text":            enc("abc.def"),
		"zero id":         enc("1700000000000000.0"),
		"negative id":     enc("1700000000000000.-5"),
		"id overflow":     enc("1.99999999999999999999"),
		"float timestamp": enc("1.5.7"),
		"sql":             enc("1.1; DROP TABLE audit_log"),
	} {
		t.Run(name, func(t *testing.T) {
			if c, err := models.ParseCursor(s); models.KindOf(err) != models.KindInvalid || models.FieldOf(err) != "after" {
				t.Fatalf("ParseCursor(%q) = %v, %v; want KindInvalid on after", s, c, err)
			}
		})
	}
}

// TestListPlanPrunesPartitions checks on a realistic table that the list query of a 30-day
// range reads only the partitions of that range, through the (organization_id, timestamp)
// index, never a sequential scan.
func TestListPlanPrunesPartitions(t *testing.T) {
	ctx := context.Background()
	db := pgtest.DB(t)
	org := testOrg(t, "")
	other := testOrg(t, "other")
	jan := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	var events []models.Event
	for i := 0; i < 20_000; i++ {
		ts := jan.Add(time.Duration(i) * (90 * 24 * time.Hour / 20_000)) // January through March
		o := org
		if i%4 == 0 {
			o = other
		}
		events = append(events, models.Event{OrganizationID: o, Action: "patient.record.read", Timestamp: ts,
			PrincipalID: ptr(fmt.Sprintf("user%d", i%50)), Details: json.RawMessage(`{"n":1}`)})
	}
	seedEvents(t, events)
	if err := db.Exec("ANALYZE audit_log").Error; err != nil {
		t.Fatal(err)
	}
	partitionsOf := func(index string) []string {
		var names []string
		err := db.Raw(`SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
			WHERE i.inhparent = ?::regclass`, index).Scan(&names).Error
		if err != nil || len(names) == 0 {
			t.Fatalf("no partitions of %s (%v)", index, err)
		}
		return names
	}
	orgTS := partitionsOf("audit_log_org_ts_idx")
	// With a principal filter the (organization, principal, timestamp) index is as good a path.
	orgPrincipal := append(partitionsOf("audit_log_org_principal_ts_idx"), orgTS...)

	cases := []struct {
		name     string
		f        models.EventFilter
		after    *models.Cursor
		want     []string // partitions the plan must read
		excluded []string
		indexes  []string // index partitions the scans may use
	}{
		{"30 days in February", models.EventFilter{From: time.Date(2025, 2, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2025, 3, 3, 0, 0, 0, 0, time.UTC)},
			nil, []string{"audit_log_2025_02", "audit_log_2025_03"}, []string{"audit_log_2025_01"}, orgTS},
		{"30 days in January, with a filter", models.EventFilter{From: jan, To: jan.AddDate(0, 0, 30), PrincipalID: "user7"},
			nil, []string{"audit_log_2025_01"}, []string{"audit_log_2025_02", "audit_log_2025_03"}, orgPrincipal},
		{"second page", models.EventFilter{From: time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2025, 3, 31, 0, 0, 0, 0, time.UTC)},
			&models.Cursor{Timestamp: time.Date(2025, 3, 20, 0, 0, 0, 0, time.UTC), ID: 1 << 40},
			[]string{"audit_log_2025_03"}, []string{"audit_log_2025_01", "audit_log_2025_02"}, orgTS},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			query, args := models.ListSQL(org, c.f, c.after, 51)
			var plan []byte
			err := models.WithPgx(ctx, db, func(conn *pgx.Conn) error {
				return conn.QueryRow(ctx, "EXPLAIN (FORMAT JSON) "+query, args...).Scan(&plan)
			})
			if err != nil {
				t.Fatal(err)
			}
			var text string
			models.WithPgx(ctx, db, func(conn *pgx.Conn) error {
				rows, err := conn.Query(ctx, "EXPLAIN "+query, args...)
				if err != nil {
					return err
				}
				lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
				text = strings.Join(lines, "\n")
				return err
			})
			t.Logf("plan of\n%s\n%s", query, text)

			var nodes []map[string]any
			var doc []map[string]any
			if err := json.Unmarshal(plan, &doc); err != nil {
				t.Fatal(err)
			}
			walkPlan(doc[0]["Plan"].(map[string]any), func(n map[string]any) { nodes = append(nodes, n) })
			read := map[string]bool{}
			for _, n := range nodes {
				typ, _ := n["Node Type"].(string)
				rel, _ := n["Relation Name"].(string)
				if strings.Contains(typ, "Seq Scan") {
					t.Errorf("sequential scan on %s", rel)
				}
				if rel == "" {
					continue
				}
				read[rel] = true
				idx, _ := n["Index Name"].(string)
				if typ != "Index Scan" || !slices.Contains(c.indexes, idx) {
					t.Errorf("%s read by %s %s, want an Index Scan on an organization index", rel, typ, idx)
				}
			}
			for _, p := range c.want {
				if !read[p] {
					t.Errorf("plan does not read %s", p)
				}
			}
			for p := range read {
				if !slices.Contains(c.want, p) {
					t.Errorf("plan reads %s, outside the range", p)
				}
			}
			for _, p := range c.excluded {
				if strings.Contains(string(plan), p) {
					t.Errorf("plan mentions %s", p)
				}
			}
		})
	}
}

func walkPlan(n map[string]any, visit func(map[string]any)) {
	visit(n)
	children, _ := n["Plans"].([]any)
	for _, c := range children {
		if m, ok := c.(map[string]any); ok {
			walkPlan(m, visit)
		}
	}
}

// TestGetReadsEveryColumn: the event scanner maps each audit_log column to its field, so an
// event read back equals the one written, optional fields and details included, and still
// verifies against its hash.
func TestGetReadsEveryColumn(t *testing.T) {
	ctx := context.Background()
	db := pgtest.DB(t)
	str := func(s string) *string { return &s }
	latency := int32(7)
	ev := models.Event{OrganizationID: "scan-org", Action: "patient.record.read", Status: "failure",
		Timestamp: time.Date(2026, 3, 4, 5, 6, 7, 891011000, time.UTC), TTL: str("P30D"),
		PrincipalID: str("dr-who"), TargetResourceType: str("Patient"), TargetResourceID: str("p-1"),
		OutcomeDescription: str("denied <b>"), CorrelationID: str("corr-9"), DataClassification: "PHI",
		RetentionPolicy: "phi_extended", EventVersion: "2.1", ProcessingLatency: &latency,
		Details: json.RawMessage(`{"reason":"no consent","n":[1,2]}`)}
	written := []models.Event{ev}
	id := seedEvents(t, written)[0]
	ev = written[0] // sealed: hash, signature, salt and digest filled in
	got, err := models.NewEventStore(db).Get(ctx, "scan-org", id)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"id", got.ID, id}, {"timestamp", got.Timestamp.UTC(), ev.Timestamp}, {"ttl", *got.TTL, *ev.TTL},
		{"principal", *got.PrincipalID, *ev.PrincipalID}, {"org", got.OrganizationID, ev.OrganizationID},
		{"action", got.Action, ev.Action}, {"type", *got.TargetResourceType, *ev.TargetResourceType},
		{"target", *got.TargetResourceID, *ev.TargetResourceID}, {"status", got.Status, ev.Status},
		{"outcome", *got.OutcomeDescription, *ev.OutcomeDescription}, {"correlation", *got.CorrelationID, *ev.CorrelationID},
		{"classification", got.DataClassification, ev.DataClassification}, {"policy", got.RetentionPolicy, ev.RetentionPolicy},
		{"version", got.EventVersion, ev.EventVersion}, {"latency", *got.ProcessingLatency, latency},
		{"hash", got.Hash, ev.Hash}, {"algorithm", got.HashAlgorithm, ev.HashAlgorithm},
		{"signature", got.Signature, ev.Signature}, {"digest", got.SubjectDigest, ev.SubjectDigest},
		{"salt", string(got.SubjectSalt), string(ev.SubjectSalt)}, {"archived", got.ArchivedAt == nil, true},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	var gotDetails, wantDetails any
	json.Unmarshal(got.Details, &gotDetails)
	json.Unmarshal(ev.Details, &wantDetails)
	if fmt.Sprint(gotDetails) != fmt.Sprint(wantDetails) {
		t.Errorf("details = %s, want %s", got.Details, ev.Details)
	}
	if v, err := testSealer(t).Verify(got); err != nil || !v.HashOK || !v.SignatureOK {
		t.Errorf("the event read back does not verify: %+v, %v", v, err)
	}
}
