package ingest_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"auditdb/models"
	"auditdb/models/eventjson"
	"auditdb/models/ingest"
	"auditdb/models/pgtest"
)

func TestEventBuilder(t *testing.T) {
	db := pgtest.DB(t)
	ctx := context.Background()
	presets := models.NewPresetStore(db, testTrail(t))
	b := ingest.NewBuilder(presets, ingest.NewRetentionCatalog(db), pgtest.Sealer(t))
	org := pgtest.NewOrg(t, "")
	received := time.Date(2026, 11, 26, 12, 0, 0, 123456789, time.UTC)
	if _, err := presets.Create(ctx, org, models.PresetInput{Name: "strict", Action: "patient.read", DataClassification: "PHI",
		RequiredFields: []string{"principalId", "targetResourceId"}, DefaultValues: `{"targetResourceType":"Patient","details":{"source":"ehr"}}`,
		MaxStringLength: 20, MaxCustomFieldDepth: 2, AllowedEventVersions: []string{"3.0"}}, actor("admin")); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name  string
		body  string
		field string      // "" when the event is accepted
		kind  models.Kind // expected error kind when field is set
		check func(t *testing.T, ev models.Event)
	}{
		{name: "defaults", body: `{"action":"a","status":"success"}`, check: func(t *testing.T, ev models.Event) {
			if !ev.Timestamp.Equal(received.Truncate(time.Microsecond)) || ev.DataClassification != "INTERNAL" ||
				ev.RetentionPolicy != "standard" || ev.EventVersion != "1.0" || ev.OrganizationID != org || ev.Hash == "" || ev.Signature == "" {
				t.Fatalf("defaults not applied: %+v", ev)
			}
		}},
		{name: "retention policy by classification", body: `{"action":"a","status":"attempt","dataClassification":"PHI"}`,
			check: func(t *testing.T, ev models.Event) {
				if ev.RetentionPolicy != "phi_extended" {
					t.Fatalf("policy %q", ev.RetentionPolicy)
				}
			}},
		{name: "explicit timestamp kept", body: `{"action":"a","status":"failure","timestamp":"2026-11-26T11:59:00.5+01:00"}`,
			check: func(t *testing.T, ev models.Event) {
				if ev.Timestamp.Format(time.RFC3339Nano) != "2026-11-26T10:59:00.5Z" {
					t.Fatalf("timestamp %v", ev.Timestamp)
				}
			}},
		{name: "stored exactly as sent", body: `{"action":"<script>x</script>","status":"success","outcomeDescription":"  padded  "}`,
			check: func(t *testing.T, ev models.Event) {
				if ev.Action != "<script>x</script>" || *ev.OutcomeDescription != "  padded  " {
					t.Fatalf("event altered: %q %q", ev.Action, *ev.OutcomeDescription)
				}
			}},
		{name: "own organization named", body: `{"action":"a","status":"success","organizationId":"` + org + `"}`},
		{name: "preset defaults and rules", body: `{"status":"success","preset":"strict","principalId":"p","targetResourceId":"r","eventVersion":"3.0"}`,
			check: func(t *testing.T, ev models.Event) {
				if ev.Action != "patient.read" || ev.DataClassification != "PHI" || *ev.TargetResourceType != "Patient" ||
					string(ev.Details) != `{"source":"ehr"}` || ev.RetentionPolicy != "phi_extended" {
					t.Fatalf("preset not applied: %+v", ev)
				}
			}},
		{name: "global preset", body: `{"status":"success","preset":"system","timestamp":"2026-11-26T11:00:00Z"}`,
			check: func(t *testing.T, ev models.Event) {
				if ev.Action != "system.config.change" {
					t.Fatalf("action %q", ev.Action)
				}
			}},
		{name: "missing action", body: `{"status":"success"}`, field: "action", kind: models.KindInvalid},
		{name: "missing status", body: `{"action":"a"}`, field: "status", kind: models.KindInvalid},
		{name: "empty action", body: `{"action":"","status":"success"}`, field: "action", kind: models.KindInvalid},
		{name: "bad status", body: `{"action":"a","status":"done"}`, field: "status", kind: models.KindInvalid},
		{name: "bad classification", body: `{"action":"a","status":"success","dataClassification":"SECRET"}`, field: "dataClassification", kind: models.KindInvalid},
		{name: "lower-case classification", body: `{"action":"a","status":"success","dataClassification":"phi"}`, field: "dataClassification", kind: models.KindInvalid},
		{name: "unknown retention policy", body: `{"action":"a","status":"success","retentionPolicy":"forever"}`, field: "retentionPolicy", kind: models.KindInvalid},
		{name: "bad event version", body: `{"action":"a","status":"success","eventVersion":"9"}`, field: "eventVersion", kind: models.KindInvalid},
		{name: "timestamp not RFC 3339", body: `{"action":"a","status":"success","timestamp":"26/11/2026"}`, field: "timestamp", kind: models.KindInvalid},
		{name: "timestamp without zone", body: `{"action":"a","status":"success","timestamp":"2026-11-26T12:00:00"}`, field: "timestamp", kind: models.KindInvalid},
		{name: "timestamp far in the future", body: `{"action":"a","status":"success","timestamp":"2026-11-26T12:05:01Z"}`, field: "timestamp", kind: models.KindInvalid},
		{name: "timestamp just inside the skew", body: `{"action":"a","status":"success","timestamp":"2026-11-26T12:04:59Z"}`},
		{name: "timestamp before retention", body: `{"action":"a","status":"success","dataClassification":"PUBLIC","timestamp":"2026-01-01T00:00:00Z"}`, field: "timestamp", kind: models.KindInvalid},
		{name: "details too deep", body: `{"action":"a","status":"success","details":{"a":{"b":{"c":{"d":1}}}}}`, field: "details", kind: models.KindInvalid},
		{name: "details at the depth limit", body: `{"action":"a","status":"success","details":{"a":{"b":{"c":1}}}}`},
		{name: "field over the column limit", body: `{"action":"` + strings.Repeat("a", 256) + `","status":"success"}`, field: "action", kind: models.KindInvalid},
		{name: "foreign organization", body: `{"action":"a","status":"success","organizationId":"someone-else"}`, field: "organizationId", kind: models.KindForbidden},
		{name: "unknown preset", body: `{"action":"a","status":"success","preset":"nope"}`, field: "preset", kind: models.KindInvalid},
		{name: "preset requires a field", body: `{"status":"success","preset":"strict","principalId":"p","eventVersion":"3.0"}`, field: "targetResourceId", kind: models.KindInvalid},
		{name: "preset string limit", body: `{"status":"success","preset":"strict","principalId":"` + strings.Repeat("p", 21) + `","targetResourceId":"r","eventVersion":"3.0"}`, field: "principalId", kind: models.KindInvalid},
		{name: "preset depth limit", body: `{"status":"success","preset":"strict","principalId":"p","targetResourceId":"r","eventVersion":"3.0","details":{"a":{"b":{}}}}`, field: "details", kind: models.KindInvalid},
		{name: "preset versions", body: `{"status":"success","preset":"strict","principalId":"p","targetResourceId":"r"}`, field: "eventVersion", kind: models.KindInvalid},
		{name: "seeded presets require a timestamp", body: `{"status":"success","preset":"system"}`, field: "timestamp", kind: models.KindInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in, err := eventjson.DecodeOne([]byte(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			ev, err := b.BuildOne(ctx, org, in, received)
			if tc.field == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if v, err := pgtest.Sealer(t).Verify(&ev); err != nil || !v.HashOK || !v.SignatureOK {
					t.Fatalf("built event does not verify: %+v %v", v, err)
				}
				if tc.check != nil {
					tc.check(t, ev)
				}
				return
			}
			if models.FieldOf(err) != tc.field || models.KindOf(err) != tc.kind {
				t.Fatalf("err = %v (kind %d field %q); want kind %d on %q", err, models.KindOf(err), models.FieldOf(err), tc.kind, tc.field)
			}
		})
	}

	t.Run("a batch names its bad event", func(t *testing.T) {
		ins, err := eventjson.DecodeArray([]byte(`[{"action":"a","status":"success"},{"action":"b","status":"nope"}]`), 10)
		if err != nil {
			t.Fatal(err)
		}
		_, err = b.BuildBatch(ctx, org, ins, received)
		if i, ok := models.IndexOf(err); !ok || i != 1 || models.FieldOf(err) != "status" {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestPresetStore(t *testing.T) {
	db := pgtest.DB(t)
	ctx := context.Background()
	s := models.NewPresetStore(db, testTrail(t))
	org, other := pgtest.NewOrg(t, ""), pgtest.NewOrg(t, "")
	valid := models.PresetInput{Name: "login", MaxStringLength: 100, MaxCustomFieldDepth: 2, AllowedEventVersions: []string{"1.0"}}

	bad := []struct {
		name  string
		edit  func(in *models.PresetInput)
		field string
	}{
		{"empty name", func(in *models.PresetInput) { in.Name = " " }, "name"},
		{"name with spaces", func(in *models.PresetInput) { in.Name = "a b" }, "name"},
		{"unknown classification", func(in *models.PresetInput) { in.DataClassification = "TOP" }, "data_classification"},
		{"unknown required field", func(in *models.PresetInput) { in.RequiredFields = []string{"colour"} }, "required_fields"},
		{"defaults not JSON", func(in *models.PresetInput) { in.DefaultValues = "{" }, "default_values"},
		{"defaults for an unknown field", func(in *models.PresetInput) { in.DefaultValues = `{"colour":"red"}` }, "default_values"},
		{"defaults of the wrong type", func(in *models.PresetInput) { in.DefaultValues = `{"ttl":5}` }, "default_values"},
		{"default details not an object", func(in *models.PresetInput) { in.DefaultValues = `{"details":[1]}` }, "default_values"},
		{"string limit zero", func(in *models.PresetInput) { in.MaxStringLength = 0 }, "max_string_length"},
		{"depth too large", func(in *models.PresetInput) { in.MaxCustomFieldDepth = 99 }, "max_custom_field_depth"},
		{"no versions", func(in *models.PresetInput) { in.AllowedEventVersions = nil }, "allowed_event_versions"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			in := valid
			tc.edit(&in)
			if _, err := s.Create(ctx, org, in, actor("admin")); models.FieldOf(err) != tc.field {
				t.Fatalf("err = %v, want field %s", err, tc.field)
			}
		})
	}

	p, err := s.Create(ctx, org, valid, actor("admin"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(ctx, org, valid, actor("admin")); models.KindOf(err) != models.KindConflict {
		t.Fatalf("duplicate name: err = %v", err)
	}
	if _, err := s.Get(ctx, other, p.ID); models.KindOf(err) != models.KindNotFound {
		t.Fatalf("another organization's preset: err = %v", err)
	}
	if _, err := s.Update(ctx, other, p.ID, valid, actor("intruder")); models.KindOf(err) != models.KindNotFound {
		t.Fatalf("another organization's update: err = %v", err)
	}
	got, err := s.Resolve(ctx, org, "login")
	if err != nil || got.ID != p.ID {
		t.Fatalf("resolve: %+v %v", got, err)
	}
	edited := valid
	edited.Action = "auth.login"
	if _, err := s.Update(ctx, org, p.ID, edited, actor("admin")); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Resolve(ctx, org, "login"); got.Action == nil || *got.Action != "auth.login" {
		t.Fatal("an update must reach Resolve at once on this instance")
	}
	if _, err := s.Resolve(ctx, other, "login"); models.FieldOf(err) != "preset" {
		t.Fatalf("another organization resolves it: %v", err)
	}
	shadow := valid
	shadow.Name = "authentication"
	own, err := s.Create(ctx, org, shadow, actor("admin"))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Resolve(ctx, org, "authentication"); got.ID != own.ID {
		t.Fatal("an organization's preset must win over the global one of the same name")
	}
	if got, _ := s.Resolve(ctx, other, "authentication"); !got.Global() {
		t.Fatal("other organizations still get the global preset")
	}
	list, _ := s.List(ctx, org)
	if len(list) < 6 || list[0].Global() || !list[len(list)-1].Global() {
		t.Fatalf("list: own presets first, then the global ones: %d", len(list))
	}
	var changes, events int64
	db.Raw(`SELECT count(*) FROM config_change_event WHERE organization_id = ? AND field LIKE 'audit_preset.%'`, org).Scan(&changes)
	db.Raw(`SELECT count(*) FROM audit_log WHERE organization_id = ? AND action LIKE 'preset.%' AND principal_id = 'admin@example.test'`, org).Scan(&events)
	if changes != 3 || events != 3 {
		t.Fatalf("%d config changes and %d self-audit events recorded, want 3 and 3", changes, events)
	}
}

// TestSealNumberRange covers the number check (range and exactness) at the edges its fast
// path skips on.
func TestSealNumberRange(t *testing.T) {
	cases := []struct {
		name    string
		details string
		ok      bool
	}{
		{"exponent beyond float64", `{"a":1e400}`, false},
		{"capital exponent beyond float64", `{"a":-2E309}`, false},
		{"exponent inside range", `{"a":1.5e300}`, true},
		{"309 digits", `{"a":1` + strings.Repeat("0", 309) + `}`, false},
		{"308 digits", `{"a":1` + strings.Repeat("0", 308) + `}`, true},
		{"exponent-looking text in a string", `{"a":"1e400","b":true,"c":false}`, true},
		{"escaped quote before a number", `{"a":"x\"","b":2e999}`, false},
		{"tiny number that rounds to zero", `{"a":1e-400}`, false},
		{"integer beyond a float64's precision", `{"a":123456789012345678901234567890}`, false},
		{"decimal a float64 rounds", `{"a":0.1000000000000000000001}`, false},
		{"decimal a float64 holds", `{"a":0.1,"b":[12.5,-7e-3]}`, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ev := models.Event{OrganizationID: "o", Timestamp: time.Now(), Action: "a", Status: "success",
				DataClassification: "INTERNAL", RetentionPolicy: "standard", EventVersion: "1.0", Details: []byte(tc.details)}
			err := pgtest.Sealer(t).Seal(&ev)
			if (err == nil) != tc.ok {
				t.Fatalf("Seal(%.60s…) = %v, want ok=%v", tc.details, err, tc.ok)
			}
		})
	}
}

// An organization's own policy of a classification wins over the global one, for that
// organization only; its name is not visible to other organizations.
func TestRetentionCatalogPerOrganization(t *testing.T) {
	db := pgtest.DB(t)
	ctx := context.Background()
	b := ingest.NewBuilder(models.NewPresetStore(db, testTrail(t)), ingest.NewRetentionCatalog(db), pgtest.Sealer(t))
	own, other := pgtest.NewOrg(t, ""), pgtest.NewOrg(t, "")
	if err := db.Exec(`INSERT INTO audit_retention_policy (organization_id, policy_name, retention_days, data_classification, is_active, created_by)
		VALUES (?, 'phi_ten_years', 3650, 'PHI', true, 'test')`, own).Error; err != nil {
		t.Fatal(err)
	}
	received := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	build := func(org, body string) (models.Event, error) {
		in, err := eventjson.DecodeOne([]byte(body))
		if err != nil {
			t.Fatal(err)
		}
		return b.BuildOne(ctx, org, in, received)
	}
	phi := `{"action":"a","status":"success","dataClassification":"PHI"}`
	if ev, err := build(own, phi); err != nil || ev.RetentionPolicy != "phi_ten_years" {
		t.Fatalf("own organization: policy %q, err %v; want phi_ten_years", ev.RetentionPolicy, err)
	}
	if ev, err := build(other, phi); err != nil || ev.RetentionPolicy != "phi_extended" {
		t.Fatalf("other organization: policy %q, err %v; want the global phi_extended", ev.RetentionPolicy, err)
	}
	if ev, err := build(own, `{"action":"a","status":"success"}`); err != nil || ev.RetentionPolicy != "standard" {
		t.Fatalf("own organization, INTERNAL: policy %q, err %v; want the global standard", ev.RetentionPolicy, err)
	}
	named := `{"action":"a","status":"success","retentionPolicy":"phi_ten_years"}`
	if ev, err := build(own, named); err != nil || ev.RetentionPolicy != "phi_ten_years" {
		t.Fatalf("own organization by name: policy %q, err %v", ev.RetentionPolicy, err)
	}
	if _, err := build(other, named); models.KindOf(err) != models.KindInvalid {
		t.Fatalf("another organization's policy by name: err %v, want invalid", err)
	}
}
