package policy_test

import (
	"testing"

	"auditdb/policy"
)

// TestModelDecisions runs the embedded model over hand-written policy lines: one scenario
// per row, in the style of Casbin's own model tests.
func TestModelDecisions(t *testing.T) {
	e, err := policy.NewEnforcer(nil)
	if err != nil {
		t.Fatal(err)
	}
	lines := [][]string{
		// Defaults, shared by every organization.
		{"p", "org:member", "*", "audit.events", "read"},
		{"p", "org:admin", "*", "audit.events", "delete"},
		{"p", "org:owner", "*", "organization.members", "update"},
		{"g", "org:owner", "org:admin", "*"},
		{"g", "org:admin", "org:member", "*"},
		// acme's own roles.
		{"p", "reader", "acme", "audit.reports", "read"},
		{"p", "auditor", "acme", "audit.alerts", "acknowledge"},
		{"g", "auditor", "reader", "acme"},
		{"g", "lead", "auditor", "acme"},
		{"p", "everything", "acme", "*", "*"},
		{"p", "audit-reader", "acme", "audit.*", "read"},
		{"p", "event-keeper", "acme", "audit.events", "*"},
		// globex has a role with the same name as acme's, with other permissions.
		{"p", "reader", "globex", "audit.metrics", "read"},
		// Memberships.
		{"g", "user:1", "reader", "acme"},
		{"g", "user:2", "lead", "acme"},
		{"g", "user:3", "org:owner", "acme"},
		{"g", "user:3", "org:member", "globex"},
		{"g", "user:4", "everything", "acme"},
		{"g", "user:5", "audit-reader", "acme"},
		{"g", "user:6", "event-keeper", "acme"},
		{"g", "user:7", "reader", "globex"},
	}
	for _, l := range lines {
		var ok bool
		if l[0] == "p" {
			ok, err = e.AddPolicy(l[1], l[2], l[3], l[4])
		} else {
			ok, err = e.AddGroupingPolicy(l[1], l[2], l[3])
		}
		if !ok || err != nil {
			t.Fatalf("add %v: %v %v", l, ok, err)
		}
	}

	cases := []struct {
		name               string
		sub, dom, obj, act string
		want               bool
	}{
		{"direct permission", "user:1", "acme", "audit.reports", "read", true},
		{"direct permission, other action denied", "user:1", "acme", "audit.reports", "delete", false},
		{"direct permission, other resource denied", "user:1", "acme", "audit.events", "read", false},
		{"one level of inheritance", "user:2", "acme", "audit.alerts", "acknowledge", true},
		{"two levels of inheritance", "user:2", "acme", "audit.reports", "read", true},
		{"inheritance grants nothing extra", "user:2", "acme", "audit.alerts", "resolve", false},
		{"default role in any organization", "user:3", "acme", "organization.members", "update", true},
		{"default inheritance owner→admin", "user:3", "acme", "audit.events", "delete", true},
		{"default inheritance owner→admin→member", "user:3", "acme", "audit.events", "read", true},
		{"same user, other organization, weaker role", "user:3", "globex", "audit.events", "delete", false},
		{"same user, other organization, its role", "user:3", "globex", "audit.events", "read", true},
		{"domain separation: no membership there", "user:1", "globex", "audit.reports", "read", false},
		{"domain separation: same role name, other organization's permissions", "user:7", "globex", "audit.reports", "read", false},
		{"domain separation: the other organization's role is its own", "user:7", "globex", "audit.metrics", "read", true},
		{"wildcard resource and action", "user:4", "acme", "organization.settings", "update", true},
		{"wildcard does not cross organizations", "user:4", "globex", "audit.events", "read", false},
		{"namespace wildcard", "user:5", "acme", "audit.gdpr", "read", true},
		{"namespace wildcard stays in its namespace", "user:5", "acme", "organization.settings", "read", false},
		{"namespace wildcard, denied action", "user:5", "acme", "audit.events", "delete", false},
		{"action wildcard", "user:6", "acme", "audit.events", "pseudonymize", true},
		{"action wildcard, other resource", "user:6", "acme", "audit.alerts", "read", false},
		{"unknown user", "user:99", "acme", "audit.events", "read", false},
		{"the * domain is not an organization one can ask about", "user:3", "*", "audit.events", "read", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := e.Enforce(tc.sub, tc.dom, tc.obj, tc.act)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("Enforce(%s, %s, %s, %s) = %v, want %v", tc.sub, tc.dom, tc.obj, tc.act, got, tc.want)
			}
		})
	}
}
