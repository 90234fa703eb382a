package models_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"

	"auditdb/models"
	"auditdb/models/pgtest"
)

func TestSavedViews(t *testing.T) {
	db := pgtest.DB(t)
	ctx := context.Background()
	s := models.NewSavedViewStore(db, testTrail(t))
	org, other := pgtest.NewOrg(t, ""), pgtest.NewOrg(t, "")
	users := models.NewUserStore(db)
	mk := func(name, o string) models.Actor {
		u, err := users.Create(ctx, models.NewUser{Email: name + "-" + o + "@example.test", Password: "correct horse battery", OrgID: o, Role: "org:member"})
		if err != nil {
			t.Fatal(err)
		}
		return models.Actor{UserID: u.ID, Email: u.Email}
	}
	alice, bob, carol := mk("alice", org), mk("bob", org), mk("carol", other)

	mine, err := s.Create(ctx, org, models.SavedViewInput{Name: "  Failures  ", Query: "q=status%3Afailure"}, alice)
	if err != nil || mine.Name != "Failures" || mine.Shared {
		t.Fatalf("create: %+v %v", mine, err)
	}
	shared, err := s.Create(ctx, org, models.SavedViewInput{Name: "PHI reads", Query: "q=class%3APHI", Shared: true}, alice)
	if err != nil {
		t.Fatal(err)
	}
	// Bad input is refused by field, and nothing is written.
	for _, tc := range []struct {
		in          models.SavedViewInput
		field, says string
		kind        models.Kind
	}{
		{models.SavedViewInput{Name: "   "}, "name", "is required", models.KindInvalid},
		{models.SavedViewInput{Name: strings.Repeat("é", 81)}, "name", "at most 80 characters", models.KindInvalid},
		{models.SavedViewInput{Name: "a\nb"}, "name", "one line", models.KindInvalid},
		{models.SavedViewInput{Name: "\ufeff"}, "name", "invisible", models.KindInvalid},
		{models.SavedViewInput{Name: "\u200b\u200c"}, "name", "invisible", models.KindInvalid},
		{models.SavedViewInput{Name: "\u202eslortnoc"}, "name", "U+202E", models.KindInvalid},
		{models.SavedViewInput{Name: "logins \u2066x\u2069"}, "name", "U+2066", models.KindInvalid},
		{models.SavedViewInput{Name: "soft\u00adhyphen"}, "name", "invisible", models.KindInvalid},
		{models.SavedViewInput{Name: "FAILURES"}, "name", "already have a view named FAILURES", models.KindConflict},
		{models.SavedViewInput{Name: "long", Query: strings.Repeat("q", models.MaxSavedViewQuery+1)}, "query", "at most", models.KindInvalid},
	} {
		_, err := s.Create(ctx, org, tc.in, alice)
		var e *models.Error
		if !errors.As(err, &e) || e.Kind != tc.kind || e.Field != tc.field || !strings.Contains(e.Message, tc.says) {
			t.Errorf("%q: error %v, want kind %d on %s saying %q", tc.in.Name, err, tc.kind, tc.field, tc.says)
		}
	}
	if n := countWhere(t, `SELECT count(*) FROM saved_views WHERE organization_id = ?`, org); n != 2 {
		t.Fatalf("%d views written, want 2", n)
	}
	// Bob sees the shared view only and may not change it; Carol (another organization)
	// sees neither.
	list, _ := s.List(ctx, org, bob.UserID)
	if len(list) != 1 || list[0].ID != shared.ID || list[0].OwnerEmail != alice.Email {
		t.Fatalf("bob's list = %+v", list)
	}
	if _, err := s.Get(ctx, org, bob.UserID, mine.ID); models.KindOf(err) != models.KindNotFound {
		t.Fatalf("bob reads alice's private view: %v", err)
	}
	if _, err := s.Update(ctx, org, shared.ID, "mine now", false, bob); models.KindOf(err) != models.KindForbidden {
		t.Fatalf("bob renames alice's shared view: %v", err)
	}
	if _, err := s.Delete(ctx, org, shared.ID, bob); models.KindOf(err) != models.KindForbidden {
		t.Fatalf("bob deletes alice's shared view: %v", err)
	}
	for _, id := range []int64{mine.ID, shared.ID} {
		if _, err := s.Get(ctx, other, carol.UserID, id); models.KindOf(err) != models.KindNotFound {
			t.Fatalf("carol reads view %d of another organization: %v", id, err)
		}
		if _, err := s.Delete(ctx, other, id, carol); models.KindOf(err) != models.KindNotFound {
			t.Fatalf("carol deletes view %d of another organization: %v", id, err)
		}
		// Alice herself, acting in the other organization, does not reach them either.
		if _, err := s.Get(ctx, other, alice.UserID, id); models.KindOf(err) != models.KindNotFound {
			t.Fatalf("view %d read through another organization: %v", id, err)
		}
	}
	// The owner renames (a clash is refused), unshares and deletes; each change is audited.
	if _, err := s.Update(ctx, org, shared.ID, "failures", true, alice); models.KindOf(err) != models.KindConflict {
		t.Fatalf("rename onto a taken name: %v", err)
	}
	if v, err := s.Update(ctx, org, shared.ID, "PHI reads, private", false, alice); err != nil || v.Shared || v.Name != "PHI reads, private" {
		t.Fatalf("rename: %+v %v", v, err)
	}
	if list, _ := s.List(ctx, org, bob.UserID); len(list) != 0 {
		t.Fatalf("an unshared view is still listed for bob: %+v", list)
	}
	if _, err := s.Delete(ctx, org, mine.ID, alice); err != nil {
		t.Fatal(err)
	}
	if n := countWhere(t, `SELECT count(*) FROM audit_log WHERE organization_id = ? AND action LIKE 'events.view.%'`, org); n != 4 {
		t.Fatalf("%d audited view changes, want 4 (two creates, a rename, a delete)", n)
	}
}

// Parallel saves cannot pass the per-user limit together.
func TestSavedViewsLimitUnderParallelSaves(t *testing.T) {
	db := pgtest.DB(t)
	ctx := context.Background()
	s := models.NewSavedViewStore(db, testTrail(t))
	org := pgtest.NewOrg(t, "")
	u, err := models.NewUserStore(db).Create(ctx, models.NewUser{Email: "many-" + org + "@example.test", Password: "correct horse battery", OrgID: org, Role: "org:member"})
	if err != nil {
		t.Fatal(err)
	}
	by := models.Actor{UserID: u.ID, Email: u.Email}
	var wg sync.WaitGroup
	var mu sync.Mutex
	refused := 0
	for i := 0; i < models.MaxSavedViewsPerUser+10; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if _, err := s.Create(ctx, org, models.SavedViewInput{Name: "view " + strconv.Itoa(i)}, by); err != nil {
				if models.KindOf(err) != models.KindInvalid {
					t.Errorf("view %d: %v", i, err)
				}
				mu.Lock()
				refused++
				mu.Unlock()
			}
		}(i)
	}
	wg.Wait()
	if n := countWhere(t, `SELECT count(*) FROM saved_views WHERE organization_id = ?`, org); n != models.MaxSavedViewsPerUser || refused != 10 {
		t.Fatalf("%d views kept and %d refused, want %d and 10", n, refused, models.MaxSavedViewsPerUser)
	}
}
