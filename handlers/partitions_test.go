package handlers_test

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"auditdb/models"
	"auditdb/web/webtest"
)

func TestPartitionsPage(t *testing.T) {
	env := webtest.New(t)
	org := env.Org("parts")
	owner := env.Login(env.User(org, models.OwnerRole))
	root := env.Login(env.User("", ""))
	root.SwitchOrg(org)
	ctx := context.Background()
	now := time.Now().UTC()
	// An error_log month nine years back (past every retention) and one six months ahead
	// dropped by hand (so ensure has something to create).
	old := now.AddDate(-9, 0, 0)
	oldName := models.PartitionName("error_log", old)
	if err := env.Parts.EnsureFor(ctx, "error_log", old); err != nil {
		t.Fatal(err)
	}
	ahead := models.PartitionName("error_log", models.MonthStart(now).AddDate(0, models.MonthsAhead, 0))
	if err := env.DB.Exec("DROP TABLE IF EXISTS " + ahead).Error; err != nil {
		t.Fatal(err)
	}
	current := models.PartitionName("audit_log", now)

	for _, tc := range []struct {
		name   string
		who    *webtest.Client
		path   string
		status int
		want   []string
	}{
		{"owner may not", owner, "/retention/partitions", 403, nil},
		{"superadmin list", root, "/retention/partitions", 200,
			[]string{`data-testid="partition-` + current + `"`, `data-testid="partition-` + oldName + `"`, ">current<", ">empty<"}},
		{"ensure dry run", root, "/retention/partitions?preview=ensure", 200,
			[]string{`data-testid="partitions-confirm-form"`, ahead, "Would create "}},
		{"drop dry run", root, "/retention/partitions?preview=drop-expired", 200,
			[]string{`data-testid="partitions-confirm-form"`, oldName, "cannot be undone"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.who.Get(tc.path)
			if r.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", r.StatusCode, tc.status)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.Body, w) {
					t.Errorf("page lacks %q", w)
				}
			}
		})
	}

	exists := func(name string) bool {
		var ok bool
		env.DB.Raw("SELECT to_regclass(?) IS NOT NULL", "public."+name).Scan(&ok)
		return ok
	}
	t.Run("ensure needs the typed count", func(t *testing.T) {
		if r := owner.PostForm("/retention/partitions/ensure", url.Values{"confirm": {"1"}}); r.StatusCode != http.StatusForbidden {
			t.Fatalf("owner: status %d, want 403", r.StatusCode)
		}
		missing, err := env.Services.PartitionConsole.EnsurePreview(ctx, now)
		if err != nil {
			t.Fatal(err)
		}
		n := strconv.Itoa(len(missing))
		r := root.PostForm("/retention/partitions/ensure", url.Values{"confirm": {n + "0"}})
		if r.StatusCode != http.StatusBadRequest || !strings.Contains(r.Body, `data-testid="form-error-field">confirm<`) || exists(ahead) {
			t.Fatalf("wrong count: status %d, want 400 naming confirm and nothing created", r.StatusCode)
		}
		if r := root.PostForm("/retention/partitions/ensure", url.Values{"confirm": {n}}); r.StatusCode/100 != 3 || !exists(ahead) {
			t.Fatalf("confirmed: status %d, created %v", r.StatusCode, exists(ahead))
		}
		if r := root.PostForm("/retention/partitions/ensure", url.Values{"confirm": {"1"}}); r.StatusCode != http.StatusConflict {
			t.Fatalf("nothing to create: status %d, want 409", r.StatusCode)
		}
		if body := root.Get("/retention/partitions").Body; !strings.Contains(body, ">future<") {
			t.Fatal("no future partition listed after ensure")
		}
	})
	t.Run("drop expired needs the typed count", func(t *testing.T) {
		r := root.PostForm("/retention/partitions/drop-expired", url.Values{"confirm": {""}})
		if r.StatusCode != http.StatusBadRequest || !strings.Contains(r.Body, `data-testid="form-error-field">confirm<`) || !exists(oldName) {
			t.Fatalf("no count: status %d, want 400 and nothing dropped", r.StatusCode)
		}
		preview, err := env.Services.PartitionConsole.DropPreview(ctx, now)
		if err != nil {
			t.Fatal(err)
		}
		n := len(preview)
		r = root.PostForm("/retention/partitions/drop-expired", url.Values{"confirm": {strconv.Itoa(n)}})
		if r.StatusCode/100 != 3 || exists(oldName) {
			t.Fatalf("confirmed: status %d, old partition still there %v", r.StatusCode, exists(oldName))
		}
	})
	var audited int64
	env.DB.Raw(`SELECT count(*) FROM audit_log WHERE organization_id = ? AND action IN (?, ?)`, org,
		models.ActionPartitionsEnsure, models.ActionPartitionsDrop).Scan(&audited)
	if audited != 2 {
		t.Fatalf("%d partition actions in the audit log, want 2", audited)
	}
}
