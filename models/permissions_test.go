package models_test

import (
	"testing"

	"auditdb/models"
)

func TestResourceMatches(t *testing.T) {
	cases := []struct {
		requested, held string
		want            bool
	}{
		{"audit.events", "audit.events", true},
		{"audit.events", "audit.alerts", false},
		{"audit.events", "*", true},
		{"organization.members", "*", true},
		{"audit.events", "audit.*", true},
		{"organization.members", "audit.*", false},
		{"organization.members", "organization.*", true},
		{"audit.*", "audit.*", true},
		{"audit.*", "*", true},
		{"*", "*", true},
		{"audit.*", "audit.events", false},
		{"*", "audit.*", false},
		{"auditevents", "audit.*", false},
		{"audit.eventsX", "audit.events", false},
	}
	for _, tc := range cases {
		t.Run(tc.requested+" held "+tc.held, func(t *testing.T) {
			if got := models.ResourceMatches(tc.requested, tc.held); got != tc.want {
				t.Fatalf("ResourceMatches(%q, %q) = %v, want %v", tc.requested, tc.held, got, tc.want)
			}
		})
	}
}

func TestValidatePermission(t *testing.T) {
	cases := []struct {
		p    models.Permission
		okay bool
	}{
		{models.Permission{"audit.events", "read"}, true},
		{models.Permission{"audit.events", "pseudonymize"}, true},
		{models.Permission{"audit.events", "*"}, true},
		{models.Permission{"audit.*", "read"}, true},
		{models.Permission{"*", "*"}, true},
		{models.Permission{"organization.*", "update"}, true},
		{models.Permission{"audit.metrics", "delete"}, false},      // not a meaningful pair
		{models.Permission{"organization.*", "verify"}, false},     // no organization resource verifies
		{models.Permission{"audit.billing", "read"}, false},        // unknown resource
		{models.Permission{"organization.billing", "read"}, false}, // the seed's, not ours
		{models.Permission{"audit.events", "invite"}, false},       // unknown action
		{models.Permission{"audit.ev*", "read"}, false},            // only namespace wildcards
		{models.Permission{"", "read"}, false},
		{models.Permission{"audit.events", ""}, false},
	}
	for _, tc := range cases {
		t.Run(tc.p.String(), func(t *testing.T) {
			err := models.ValidatePermission(tc.p)
			if (err == nil) != tc.okay {
				t.Fatalf("ValidatePermission(%v) = %v, want ok=%v", tc.p, err, tc.okay)
			}
			if err != nil && models.KindOf(err) != models.KindInvalid {
				t.Fatalf("kind %v, want invalid", models.KindOf(err))
			}
		})
	}
}

func TestDefaultRolesUseTheVocabulary(t *testing.T) {
	for _, r := range models.DefaultRoles {
		for _, p := range r.Permissions {
			if err := models.ValidatePermission(p); err != nil {
				t.Errorf("%s: %v", r.Name, err)
			}
		}
	}
}

func TestCoversWildcards(t *testing.T) {
	held := []models.Permission{{"audit.*", "read"}, {"organization.members", "*"}}
	cases := []struct {
		p    models.Permission
		want bool
	}{
		{models.Permission{"audit.events", "read"}, true},
		{models.Permission{"audit.*", "read"}, true},
		{models.Permission{"audit.events", "delete"}, false},
		{models.Permission{"*", "read"}, false},
		{models.Permission{"organization.members", "delete"}, true},
		{models.Permission{"organization.members", "*"}, true},
		{models.Permission{"organization.settings", "read"}, false},
	}
	for _, tc := range cases {
		if got := models.Covers(held, tc.p); got != tc.want {
			t.Errorf("Covers(%v) = %v, want %v", tc.p, got, tc.want)
		}
	}
}

func TestSortPermissionsDedups(t *testing.T) {
	ps := []models.Permission{{"audit.events", "read"}, {"*", "*"}, {"audit.events", "read"}, {"audit.events", "*"}}
	got := models.SortPermissions(ps)
	want := []models.Permission{{"*", "*"}, {"audit.events", "*"}, {"audit.events", "read"}}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
}
