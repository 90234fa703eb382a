package models_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"auditdb/models"
	"auditdb/models/pgtest"
)

func TestAPIKeysCreateAuthenticateRevoke(t *testing.T) {
	db := pgtest.DB(t)
	ctx := context.Background()
	keys := models.NewAPIKeyStore(db, testTrail(t))
	org := logOrg(t, db)

	raw, k, err := keys.Create(ctx, org, "billing service", models.ScopeIngest, actor("admin@example.test"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(raw, "adb_") || k.Prefix != raw[:12] || len(raw) != 47 {
		t.Fatalf("key %q prefix %q", raw, k.Prefix)
	}
	var stored int64
	db.Raw(`SELECT count(*) FROM api_keys k WHERE strpos(k::text, ?) > 0`, raw[12:]).Scan(&stored)
	if stored != 0 {
		t.Fatal("beyond its shown prefix, the key must not be stored")
	}
	got, err := keys.Authenticate(ctx, raw)
	if err != nil || got.OrganizationID != org || got.Scope != models.ScopeIngest || got.LastUsedAt == nil {
		t.Fatalf("authenticate: %+v %v", got, err)
	}
	if list, _ := keys.List(ctx, org); len(list) != 1 || list[0].LastUsedAt == nil {
		t.Fatalf("list %+v: last-used time not recorded", list)
	}
	var changes, events int64
	db.Raw(`SELECT count(*) FROM config_change_event WHERE organization_id = ? AND field = ?`, org, "api_key."+itoa(int(k.ID))).Scan(&changes)
	db.Raw(`SELECT count(*) FROM audit_log WHERE organization_id = ? AND action = 'apikey.create' AND target_resource_id = ?`, org, itoa(int(k.ID))).Scan(&events)
	if changes != 1 || events != 1 {
		t.Fatalf("%d config changes and %d self-audit events recorded for the creation, want 1 and 1", changes, events)
	}
	var leaked int64
	db.Raw(`SELECT count(*) FROM audit_log a WHERE organization_id = ? AND strpos(a::text, ?) > 0`, org, raw[12:]).Scan(&leaked)
	if leaked != 0 {
		t.Fatal("the self-audit event must not contain the key")
	}

	bad := []struct{ name, raw string }{
		{"empty", ""},
		{"wrong prefix", "xyz_" + raw[4:]},
		{"truncated", raw[:40]},
		{"bad characters", raw[:46] + "!"},
		{"unknown", "adb_" + strings.Repeat("A", 43)},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := keys.Authenticate(ctx, tc.raw); models.KindOf(err) != models.KindUnauthorized {
				t.Fatalf("err = %v, want KindUnauthorized", err)
			}
		})
	}
	t.Run("bad input to create", func(t *testing.T) {
		for _, c := range []struct{ name, scope, field string }{{"", models.ScopeRead, "name"}, {"x", "admin", "scope"},
			{strings.Repeat("n", 101), models.ScopeRead, "name"}} {
			if _, _, err := keys.Create(ctx, org, c.name, c.scope, actor("a")); models.FieldOf(err) != c.field {
				t.Fatalf("create(%q, %q): err = %v, want field %s", c.name, c.scope, err, c.field)
			}
		}
		if _, _, err := keys.Create(ctx, "no-such-org", "x", models.ScopeRead, actor("a")); models.KindOf(err) != models.KindNotFound {
			t.Fatalf("unknown organization: err = %v", err)
		}
	})
	t.Run("another organization cannot revoke it", func(t *testing.T) {
		if err := keys.Revoke(ctx, logOrg(t, db), k.ID, actor("intruder")); models.KindOf(err) != models.KindNotFound {
			t.Fatalf("err = %v", err)
		}
	})
	if err := keys.Revoke(ctx, org, k.ID, actor("admin@example.test")); err != nil {
		t.Fatal(err)
	}
	if _, err := keys.Authenticate(ctx, raw); err != models.ErrBadAPIKey {
		t.Fatalf("revoked key: err = %v", err)
	}
	if err := keys.Revoke(ctx, org, k.ID, actor("again")); err != nil {
		t.Fatalf("revoking twice: %v", err)
	}
}

// TestAPIKeyRevocationReachesEveryInstance runs two stores as two instances sharing the
// database, each following the database's signals on its own connection and neither
// using Redis: a revocation by either, or by plain SQL (as the CLI or an operator would),
// stops the key on the other within a second although the other had it cached.
func TestAPIKeyRevocationReachesEveryInstance(t *testing.T) {
	db := pgtest.DB(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	a, b := models.NewAPIKeyStore(db, testTrail(t)), models.NewAPIKeyStore(db, testTrail(t))
	for _, keys := range []*models.APIKeyStore{a, b} {
		sig := models.NewSignals(pgtest.DSN(t), nil)
		keys.Follow(sig)
		go sig.Run(ctx)
	}
	waitFor(t, "both instances to follow revocations", func() bool { return a.Live() && b.Live() })
	org := logOrg(t, db)

	refusedWithinASecond := func(t *testing.T, keys *models.APIKeyStore, raw string) {
		t.Helper()
		deadline := time.Now().Add(time.Second)
		for {
			_, err := keys.Authenticate(ctx, raw)
			if err == models.ErrBadAPIKey {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("the other instance still accepts the revoked key: %v", err)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	t.Run("a revocation through the store is seen at once", func(t *testing.T) {
		raw, k, _ := a.Create(ctx, org, "revoked", models.ScopeIngest, actor("admin"))
		if _, err := b.Authenticate(ctx, raw); err != nil {
			t.Fatal(err)
		}
		if err := a.Revoke(ctx, org, k.ID, actor("admin")); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Authenticate(ctx, raw); err != models.ErrBadAPIKey {
			t.Fatalf("the revoking instance accepts the key on its next request: %v", err)
		}
		refusedWithinASecond(t, b, raw)
	})
	t.Run("a revocation behind the stores' backs is seen too", func(t *testing.T) {
		raw, k, _ := a.Create(ctx, org, "cached", models.ScopeRead, actor("admin"))
		if _, err := b.Authenticate(ctx, raw); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Authenticate(ctx, raw); err != nil {
			t.Fatal(err) // now from b's cache
		}
		if err := db.Exec(`UPDATE api_keys SET revoked_at = now() WHERE id = ?`, k.ID).Error; err != nil {
			t.Fatal(err)
		}
		refusedWithinASecond(t, b, raw)
	})
	t.Run("a deleted key is seen too", func(t *testing.T) {
		raw, k, _ := a.Create(ctx, org, "deleted", models.ScopeRead, actor("admin"))
		if _, err := b.Authenticate(ctx, raw); err != nil {
			t.Fatal(err)
		}
		if err := db.Exec(`DELETE FROM api_keys WHERE id = ?`, k.ID).Error; err != nil {
			t.Fatal(err)
		}
		refusedWithinASecond(t, b, raw)
	})
	t.Run("without signals nothing is cached", func(t *testing.T) {
		c := models.NewAPIKeyStore(db, testTrail(t))
		raw, k, _ := c.Create(ctx, org, "uncached", models.ScopeRead, actor("admin"))
		if _, err := c.Authenticate(ctx, raw); err != nil {
			t.Fatal(err)
		}
		// Bypass the trigger's signal: c listens to nothing, so only an uncached read
		// can see this.
		db.Exec(`UPDATE api_keys SET revoked_at = now() WHERE id = ?`, k.ID)
		if _, err := c.Authenticate(ctx, raw); err != models.ErrBadAPIKey {
			t.Fatalf("err = %v", err)
		}
	})
}
