package handlers_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"auditdb/models"
	"auditdb/web/webtest"
)

var (
	newSecretPattern  = regexp.MustCompile(`data-testid="new-secret-value"[^>]*>(whsec_[A-Za-z0-9_-]+)<`)
	testActionPattern = regexp.MustCompile(`action="/settings/notifications/(nch_[A-Za-z0-9_-]+)/test"`)
)

func TestNotificationSettingsPermissions(t *testing.T) {
	env := webtest.New(t)
	org := env.Org("ntf")
	clients := map[string]*webtest.Client{
		"member": env.Login(env.User(org, "org:member")),
		"admin":  env.Login(env.User(org, "org:admin")),
		"owner":  env.Login(env.User(org, models.OwnerRole)),
	}
	allowed := []string{"admin", "owner"}
	for _, who := range []string{"member", "admin", "owner"} {
		t.Run("page as "+who, func(t *testing.T) {
			want := http.StatusForbidden
			if slices.Contains(allowed, who) {
				want = http.StatusOK
			}
			if r := clients[who].Get("/settings/notifications"); r.StatusCode != want {
				t.Fatalf("status %d, want %d", r.StatusCode, want)
			}
		})
	}
	t.Run("a member cannot add a channel", func(t *testing.T) {
		r := clients["member"].PostForm("/settings/notifications", url.Values{"name": {"x"}, "kind": {"webhook"},
			"target": {"https://127.0.0.1/x"}, "min_severity": {"LOW"}})
		if r.StatusCode != http.StatusForbidden {
			t.Fatalf("status %d", r.StatusCode)
		}
	})
	t.Run("the owner's settings index links notifications", func(t *testing.T) {
		if r := clients["owner"].Get("/settings"); !strings.Contains(r.Body, `data-testid="settings-notifications"`) {
			t.Fatal("no link to notifications")
		}
	})
}

func TestNotificationChannels(t *testing.T) {
	env := webtest.New(t)
	org := env.Org("ntf")
	admin := env.Login(env.User(org, "org:admin"))

	var received atomic.Int32
	var secret atomic.Value
	secret.Store("")
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		sig := r.Header.Get("X-Auditdb-Signature")
		ts, v1, _ := strings.Cut(strings.TrimPrefix(sig, "t="), ",v1=")
		mac := hmac.New(sha256.New, []byte(secret.Load().(string)))
		mac.Write([]byte(ts + "." + string(body)))
		if got, _ := hex.DecodeString(v1); !hmac.Equal(got, mac.Sum(nil)) || r.Header.Get("X-Auditdb-Event") != "test" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		received.Add(1)
		w.WriteHeader(http.StatusOK)
	}))
	defer rcv.Close()

	t.Run("empty state and the email note", func(t *testing.T) {
		r := admin.Get("/settings/notifications")
		for _, id := range []string{"channels-empty", "email-disabled", "channel-form"} {
			if !strings.Contains(r.Body, `data-testid="`+id+`"`) {
				t.Fatalf("no %s", id)
			}
		}
	})

	refusals := []struct {
		name, kind, target, severity, field, why string
	}{
		{"a URL that is not http(s)", "webhook", "ftp://127.0.0.1/hook", "HIGH", "url", "https://"},
		{"a private address", "webhook", "https://10.0.0.1/hook", "HIGH", "url", "private"},
		{"cloud metadata", "webhook", "http://169.254.169.254/latest/meta-data", "HIGH", "url", "private"},
		{"credentials in the URL", "webhook", "https://u:p@127.0.0.1/hook", "HIGH", "url", "password"},
		{"email while SMTP is not configured", "email", "oncall@example.com", "HIGH", "kind", "AUDITDB_SMTP_URL"},
		{"an unknown severity", "webhook", rcv.URL, "SEVERE", "min_severity", "LOW"},
	}
	for _, tc := range refusals {
		t.Run("refused: "+tc.name, func(t *testing.T) {
			r := admin.PostForm("/settings/notifications", url.Values{"name": {"n"}, "kind": {tc.kind}, "target": {tc.target}, "min_severity": {tc.severity}})
			if r.StatusCode != http.StatusBadRequest || !strings.Contains(r.Body, `data-testid="form-error-field">`+tc.field+`<`) ||
				!strings.Contains(r.Body, tc.why) {
				t.Fatalf("status %d, want 400 naming %s with %q", r.StatusCode, tc.field, tc.why)
			}
			if !strings.Contains(r.Body, `value="`+tc.target+`"`) && !strings.Contains(r.Body, `value="`+strings.ReplaceAll(tc.target, "&", "&amp;")+`"`) {
				t.Fatal("the typed URL is not kept in the form")
			}
		})
	}
	t.Run("nothing was written by the refusals", func(t *testing.T) {
		list, err := env.Services.Channels.List(context.Background(), org)
		if err != nil || len(list) != 0 {
			t.Fatalf("channels %v, err %v", list, err)
		}
	})

	var channelID string
	t.Run("a loopback webhook is added and its secret shown once", func(t *testing.T) {
		r := admin.PostForm("/settings/notifications", url.Values{"name": {"ops hook"}, "kind": {"webhook"}, "target": {rcv.URL + "/hook"}, "min_severity": {"HIGH"}})
		m := newSecretPattern.FindStringSubmatch(r.Body)
		if r.StatusCode != http.StatusCreated || m == nil || r.Header.Get("Cache-Control") != "no-store" {
			t.Fatalf("status %d, secret shown: %v", r.StatusCode, m != nil)
		}
		secret.Store(m[1])
		page := admin.Get("/settings/notifications")
		if strings.Contains(page.Body, m[1]) || !strings.Contains(page.Body, `data-testid="channel-row-name">ops hook<`) ||
			!strings.Contains(page.Body, `data-testid="deliveries-empty"`) {
			t.Fatal("the page shows the secret again or not the channel")
		}
		id := testActionPattern.FindStringSubmatch(page.Body)
		if id == nil {
			t.Fatal("no send-test form")
		}
		channelID = id[1]
		var audited int64
		env.DB.Raw(`SELECT count(*) FROM audit_log WHERE organization_id = ? AND action = ?`, org, models.ActionNotificationChannelCreate).Scan(&audited)
		if audited != 1 {
			t.Fatalf("%d self-audit entries", audited)
		}
	})
	t.Run("send test queues a delivery the sender delivers, signed", func(t *testing.T) {
		r := admin.PostForm("/settings/notifications/"+channelID+"/test", url.Values{})
		if r.StatusCode != http.StatusAccepted || !strings.Contains(r.Body, `data-testid="test-queued"`) {
			t.Fatalf("status %d", r.StatusCode)
		}
		if _, err := env.Services.Deliveries.SendDue(context.Background(), 10); err != nil {
			t.Fatal(err)
		}
		if received.Load() != 1 {
			t.Fatalf("receiver accepted %d", received.Load())
		}
		page := admin.Get("/settings/notifications")
		if !strings.Contains(page.Body, `data-testid="delivery-status">delivered<`) || !strings.Contains(page.Body, "HTTP 200") {
			t.Fatal("the delivery log does not show the delivered test")
		}
	})
	t.Run("another organization's channel is not found", func(t *testing.T) {
		other := env.Login(env.User(env.Org("other"), "org:admin"))
		if r := other.PostForm("/settings/notifications/"+channelID+"/test", url.Values{}); r.StatusCode != http.StatusNotFound {
			t.Fatalf("test: status %d", r.StatusCode)
		}
		if r := other.PostForm("/settings/notifications/"+channelID+"/enabled", url.Values{"enabled": {"false"}}); r.StatusCode != http.StatusNotFound {
			t.Fatalf("disable: status %d", r.StatusCode)
		}
	})
	t.Run("disable", func(t *testing.T) {
		r := admin.PostForm("/settings/notifications/"+channelID+"/enabled", url.Values{"enabled": {"false"}})
		if r.StatusCode != http.StatusSeeOther && r.StatusCode != http.StatusFound {
			t.Fatalf("status %d", r.StatusCode)
		}
		if page := admin.Get("/settings/notifications"); !strings.Contains(page.Body, `data-testid="channel-row-state">disabled<`) {
			t.Fatal("not shown disabled")
		}
		if r := admin.PostForm("/settings/notifications/"+channelID+"/enabled", url.Values{"enabled": {"maybe"}}); r.StatusCode != http.StatusUnprocessableEntity && r.StatusCode != http.StatusBadRequest {
			t.Fatalf("bad value: status %d", r.StatusCode)
		}
	})
}
