package policy_test

import (
	"context"
	"testing"

	"auditdb/models"
	"auditdb/policy"
)

// everything allows every question it is asked, so a test sees which ones reach it.
type everything struct{ asked int }

func (e *everything) Allowed(context.Context, policy.Subject, string, string, string) (bool, error) {
	e.asked++
	return true, nil
}

// TestKeyScoped: an API key's permissions are its scope's and nothing else (a key holds no
// role), and a user subject is decided by the policy behind.
func TestKeyScoped(t *testing.T) {
	next := &everything{}
	authz := policy.KeyScoped(next)
	ingest := policy.APIKeyOf(&models.APIKey{ID: 7, Scope: models.ScopeIngest})
	read := policy.APIKeyOf(&models.APIKey{ID: 8, Scope: models.ScopeRead})
	cases := []struct {
		name             string
		sub              policy.Subject
		resource, action string
		want             bool
	}{
		{"ingest key creates events", ingest, "audit.events", "create", true},
		{"ingest key cannot read events", ingest, "audit.events", "read", false},
		{"ingest key cannot read alerts", ingest, "audit.alerts", "read", false},
		{"read key reads events", read, "audit.events", "read", true},
		{"read key verifies events", read, "audit.events", "verify", true},
		{"read key reads alerts", read, "audit.alerts", "read", true},
		{"read key cannot create events", read, "audit.events", "create", false},
		{"read key cannot acknowledge alerts", read, "audit.alerts", "acknowledge", false},
		{"unknown scope holds nothing", policy.Subject{Name: "apikey:admin:9"}, "audit.events", "read", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := authz.Allowed(context.Background(), tc.sub, "org", tc.resource, tc.action)
			if err != nil || got != tc.want {
				t.Fatalf("Allowed = %v, %v; want %v", got, err, tc.want)
			}
		})
	}
	if next.asked != 0 {
		t.Fatalf("a key's question reached the role policy %d times", next.asked)
	}
	if ok, _ := authz.Allowed(context.Background(), policy.Subject{Name: policy.UserSubject(1)}, "org", "audit.roles", "update"); !ok || next.asked != 1 {
		t.Fatal("a user's question did not reach the role policy")
	}
}
