package models_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"auditdb/models"
	"auditdb/models/pgtest"
)

// fakeResolver answers from a map; an unknown host is an error. No real DNS is asked.
type fakeResolver struct {
	mu    sync.Mutex
	hosts map[string][]string
}

func (r *fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	list, ok := r.hosts[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	var out []netip.Addr
	for _, s := range list {
		out = append(out, netip.MustParseAddr(s))
	}
	return out, nil
}

func (r *fakeResolver) set(host string, addrs ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.hosts[host] = addrs
}

func newResolver() *fakeResolver {
	return &fakeResolver{hosts: map[string][]string{
		"hooks.example.com":    {"93.184.216.34"},
		"internal.example.com": {"10.1.2.3"},
		"mixed.example.com":    {"93.184.216.34", "192.168.1.9"},
		"metadata.example.com": {"169.254.169.254"},
		"localhost":            {"127.0.0.1", "::1"},
	}}
}

func TestCheckWebhookURL(t *testing.T) {
	r := newResolver()
	cases := []struct {
		name, url string
		ok        bool
		why       string
	}{
		{"https to a public host", "https://hooks.example.com/auditdb", true, ""},
		{"http to IPv4 loopback", "http://127.0.0.1:8080/hook", true, ""},
		{"http to IPv6 loopback", "http://[::1]:8080/hook", true, ""},
		{"http to localhost", "http://localhost:9000/hook", true, ""},
		{"ftp", "ftp://hooks.example.com/x", false, "https://"},
		{"no scheme", "hooks.example.com/x", false, "https://"},
		{"javascript", "javascript:alert(1)", false, "https://"},
		{"credentials", "https://user:pw@hooks.example.com/x", false, "user name or password"},
		{"private 10.0.0.1", "https://10.0.0.1/hook", false, "private"},
		{"cloud metadata", "http://169.254.169.254/latest/meta-data", false, "private"},
		{"link-local IPv6", "https://[fe80::1]/hook", false, "private"},
		{"unspecified", "https://0.0.0.0/hook", false, "private"},
		{"multicast", "https://224.0.0.1/hook", false, "private"},
		{"carrier-grade NAT", "https://100.64.0.1/hook", false, "private"},
		{"NAT64 of a private address", "https://[64:ff9b::a00:1]/hook", false, "private"},
		{"NAT64 of the metadata address", "https://[64:ff9b::a9fe:a9fe]/hook", false, "private"},
		{"local NAT64 of a private address", "https://[64:ff9b:1::a00:1]/hook", false, "private"},
		{"6to4 of a private address", "https://[2002:a00:1::1]/hook", false, "private"},
		{"IPv4-compatible private address", "https://[::a00:1]/hook", false, "private"},
		{"NAT64 of loopback is not loopback", "http://[64:ff9b::7f00:1]/hook", false, "private"},
		{"IPv4-translated private address", "https://[::ffff:0:a00:1]/hook", false, "private"},
		{"IPv4-translated loopback is not loopback", "http://[::ffff:0:7f00:1]/hook", false, "private"},
		{"IPv6 site-local", "https://[fec0::1]/hook", false, "private"},
		{"benchmarking range", "https://198.18.0.1/hook", false, "private"},
		{"reserved 240/4", "https://240.0.0.1/hook", false, "private"},
		{"documentation range", "https://192.0.2.1/hook", false, "private"},
		{"NAT64 of a public address", "https://[64:ff9b::808:808]/hook", true, ""},
		{"public IPv6", "https://[2606:4700:4700::1111]/hook", true, ""},
		{"host resolving to a private address", "https://internal.example.com/hook", false, "private"},
		{"host resolving to metadata", "https://metadata.example.com/hook", false, "private"},
		{"host with one private address among public ones", "https://mixed.example.com/hook", false, "private"},
		{"plain http to a public host", "http://hooks.example.com/hook", false, "loopback"},
		{"unknown host", "https://nowhere.example.com/hook", false, "cannot be resolved"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := models.CheckWebhookURL(context.Background(), r, tc.url)
			if tc.ok {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			if models.KindOf(err) != models.KindInvalid || models.FieldOf(err) != "url" || !strings.Contains(err.Error(), tc.why) {
				t.Fatalf("error %v (kind %v, field %q), want invalid url mentioning %q", err, models.KindOf(err), models.FieldOf(err), tc.why)
			}
		})
	}
}

func TestValidEmail(t *testing.T) {
	cases := map[string]bool{
		"oncall@example.com":                 true,
		"first.last+alerts@mail.example.org": true,
		"":                                   false,
		"oncall":                             false,
		"oncall@localhost":                   false,
		"Ops <ops@example.com>":              false,
		"ops@example.com, evil@example.com":  false,
		"ops@example.com\r\nBcc: x@y.z":      false,
		"@example.com":                       false,
		"ops@@example.com":                   false,
	}
	for in, want := range cases {
		t.Run(strconv.Quote(in), func(t *testing.T) {
			if got := models.ValidEmail(in); got != want {
				t.Fatalf("ValidEmail(%q) = %v, want %v", in, got, want)
			}
		})
	}
}

func TestParseSMTPURL(t *testing.T) {
	c, err := models.ParseSMTPURL("smtp://user:p%40ss@mail.example.com", "alerts@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if c.Host != "mail.example.com" || c.Port != "587" || c.Username != "user" || c.Password != "p@ss" || c.ImplicitTLS {
		t.Fatalf("parsed %+v", c)
	}
	for _, tc := range []struct{ url, from, field string }{
		{"http://mail.example.com", "alerts@example.com", "AUDITDB_SMTP_URL"},
		{"smtp://", "alerts@example.com", "AUDITDB_SMTP_URL"},
		{"smtp://mail.example.com:25", "not an email", "AUDITDB_SMTP_FROM"},
	} {
		t.Run(tc.url+" "+tc.from, func(t *testing.T) {
			if _, err := models.ParseSMTPURL(tc.url, tc.from); models.FieldOf(err) != tc.field {
				t.Fatalf("error %v, want one about %s", err, tc.field)
			}
		})
	}
}

// notifyEnv is one organization with channel and delivery stores over a fake resolver and
// a clock the test moves.
type notifyEnv struct {
	org        string
	channels   *models.ChannelStore
	deliveries *models.DeliveryStore
	alerts     *models.AlertStore
	resolver   *fakeResolver
	mu         sync.Mutex
	now        time.Time
}

func (e *notifyEnv) clock() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.now
}

func (e *notifyEnv) advance(d time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.now = e.now.Add(d)
}

func newNotifyEnv(t *testing.T, smtp *models.SMTPConfig) *notifyEnv {
	t.Helper()
	db := pgtest.DB(t)
	trail := models.NewAuditTrail(db, testSealer(t), models.NewPartitionManager(db))
	e := &notifyEnv{org: pgtest.NewOrg(t, "n"), resolver: newResolver(), alerts: models.NewAlertStore(db), now: time.Now().UTC()}
	e.channels = models.NewChannelStore(db, trail, e.resolver, smtp)
	e.deliveries = models.NewDeliveryStore(db, trail, nil, "https://console.example.com", smtp, e.resolver)
	e.deliveries.Now = e.clock
	// Alerts of earlier tests are handled now, so this test's enqueue sees only its own.
	drain(t, e.deliveries)
	return e
}

// drain enqueues every new alert and sends everything due until nothing is left.
func drain(t *testing.T, s *models.DeliveryStore) {
	t.Helper()
	ctx := context.Background()
	for {
		n, err := s.EnqueueNew(ctx, 100)
		if err != nil {
			t.Fatal(err)
		}
		m, err := s.SendDue(ctx, 100)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 && m == 0 {
			return
		}
	}
}

func (e *notifyEnv) channel(t *testing.T, name, kind, target, minSeverity string) (*models.NotificationChannel, string) {
	t.Helper()
	c, secret, err := e.channels.Create(context.Background(), e.org,
		models.ChannelInput{Name: name, Kind: kind, Target: target, MinSeverity: minSeverity}, models.SystemActor("test"))
	if err != nil {
		t.Fatalf("create channel %s: %v", name, err)
	}
	return c, secret
}

func (e *notifyEnv) raise(t *testing.T, severity, title string) string {
	t.Helper()
	id, err := e.alerts.Raise(context.Background(), models.NewAlert{Org: e.org, Severity: severity, Type: "SECURITY",
		Title: title, Description: "details of " + title, Source: "test"})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// receiver is an httptest webhook receiver that checks signatures as a real one would.
type receiver struct {
	srv    *httptest.Server
	secret string
	status int
	mu     sync.Mutex
	got    []models.DeliveryPayload
	ids    map[string]int
	bad    []string
}

func newReceiver(t *testing.T, status int) *receiver {
	r := &receiver{status: status, ids: map[string]int{}}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		if problem := verify(r.secret, req, body); problem != "" {
			r.bad = append(r.bad, problem)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var p models.DeliveryPayload
		if err := json.Unmarshal(body, &p); err != nil {
			r.bad = append(r.bad, "body: "+err.Error())
		}
		r.got = append(r.got, p)
		r.ids[req.Header.Get("X-Auditdb-Delivery")]++
		w.WriteHeader(r.status)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// verify checks the X-Auditdb-Signature header the way a receiver does: recompute the
// HMAC over "<t>.<body>" and compare in constant time.
func verify(secret string, req *http.Request, body []byte) string {
	if req.Header.Get("Content-Type") != "application/json" || req.Header.Get("X-Auditdb-Event") == "" ||
		req.Header.Get("X-Auditdb-Delivery") == "" {
		return "missing headers"
	}
	var ts, v1 string
	for _, part := range strings.Split(req.Header.Get("X-Auditdb-Signature"), ",") {
		k, v, _ := strings.Cut(part, "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			v1 = v
		}
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts + "." + string(body)))
	got, err := hex.DecodeString(v1)
	if ts == "" || err != nil || !hmac.Equal(got, mac.Sum(nil)) {
		return "bad signature " + req.Header.Get("X-Auditdb-Signature")
	}
	return ""
}

func (r *receiver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.got)
}

func TestChannelCreateRefusals(t *testing.T) {
	e := newNotifyEnv(t, nil)
	ctx := context.Background()
	cases := []struct {
		name  string
		in    models.ChannelInput
		field string
		why   string
	}{
		{"email while SMTP is not configured", models.ChannelInput{Name: "mail", Kind: "email", Target: "oncall@example.com", MinSeverity: "HIGH"}, "kind", "AUDITDB_SMTP_URL"},
		{"webhook to a private address", models.ChannelInput{Name: "w", Kind: "webhook", Target: "https://10.0.0.1/x", MinSeverity: "HIGH"}, "url", "private"},
		{"webhook that is not http", models.ChannelInput{Name: "w", Kind: "webhook", Target: "gopher://hooks.example.com", MinSeverity: "HIGH"}, "url", "https://"},
		{"unknown severity", models.ChannelInput{Name: "w", Kind: "webhook", Target: "https://hooks.example.com", MinSeverity: "URGENT"}, "min_severity", "LOW"},
		{"unknown kind", models.ChannelInput{Name: "w", Kind: "sms", Target: "+15550100", MinSeverity: "LOW"}, "kind", "webhook or email"},
		{"empty name", models.ChannelInput{Name: " ", Kind: "webhook", Target: "https://hooks.example.com", MinSeverity: "LOW"}, "name", "1-100"},
		{"NUL in the name", models.ChannelInput{Name: "on\x00call", Kind: "webhook", Target: "https://hooks.example.com", MinSeverity: "LOW"}, "name", "NUL"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := e.channels.Create(ctx, e.org, tc.in, models.SystemActor("test"))
			if models.KindOf(err) != models.KindInvalid || models.FieldOf(err) != tc.field || !strings.Contains(err.Error(), tc.why) {
				t.Fatalf("error %v, want invalid %s mentioning %q", err, tc.field, tc.why)
			}
		})
	}
	t.Run("nothing was written", func(t *testing.T) {
		list, err := e.channels.List(ctx, e.org)
		if err != nil || len(list) != 0 {
			t.Fatalf("channels %v, err %v", list, err)
		}
	})
	t.Run("an email that is not an email", func(t *testing.T) {
		with := models.NewChannelStore(pgtest.DB(t), models.NewAuditTrail(pgtest.DB(t), testSealer(t), models.NewPartitionManager(pgtest.DB(t))),
			e.resolver, &models.SMTPConfig{Host: "127.0.0.1", Port: "25", From: "alerts@example.com"})
		_, _, err := with.Create(ctx, e.org, models.ChannelInput{Name: "m", Kind: "email", Target: "Ops <ops@example.com>", MinSeverity: "LOW"}, models.SystemActor("test"))
		if models.FieldOf(err) != "target" {
			t.Fatalf("error %v, want one about target", err)
		}
	})
	t.Run("a second channel of the same name", func(t *testing.T) {
		e.channel(t, "dup", "webhook", "https://hooks.example.com/a", "LOW")
		_, _, err := e.channels.Create(ctx, e.org, models.ChannelInput{Name: "dup", Kind: "webhook", Target: "https://hooks.example.com/b", MinSeverity: "LOW"}, models.SystemActor("test"))
		if models.KindOf(err) != models.KindConflict {
			t.Fatalf("error %v, want a conflict", err)
		}
	})
}

func TestWebhookDelivery(t *testing.T) {
	e := newNotifyEnv(t, nil)
	rcv := newReceiver(t, http.StatusNoContent)
	_, rcv.secret = e.channel(t, "ops hook", "webhook", rcv.srv.URL+"/hook", "HIGH")
	if !strings.HasPrefix(rcv.secret, "whsec_") {
		t.Fatalf("secret %q", rcv.secret)
	}
	high := e.raise(t, "HIGH", "Bulk export")
	low := e.raise(t, "LOW", "Odd hour")
	drain(t, e.deliveries)

	t.Run("the receiver got the HIGH alert, signed", func(t *testing.T) {
		rcv.mu.Lock()
		defer rcv.mu.Unlock()
		if len(rcv.bad) > 0 || len(rcv.got) != 1 {
			t.Fatalf("got %+v, problems %v", rcv.got, rcv.bad)
		}
		p := rcv.got[0]
		if p.Alert != high || p.Organization != e.org || p.Severity != "HIGH" || p.Type != "SECURITY" ||
			p.Title != "Bulk export" || p.Description != "details of Bulk export" ||
			p.URL != "https://console.example.com/alerts/"+high || p.CreatedAt.IsZero() {
			t.Fatalf("payload %+v", p)
		}
	})
	t.Run("the alert page lists the delivery", func(t *testing.T) {
		got, err := e.deliveries.ForAlert(context.Background(), e.org, high)
		if err != nil || len(got) != 1 {
			t.Fatalf("deliveries %+v, err %v", got, err)
		}
		d := got[0]
		if d.Channel != "ops hook" || d.Kind != "webhook" || d.Status != "delivered" || d.Attempts != 1 || d.DeliveredAt == nil || d.LastAttemptAt == nil {
			t.Fatalf("delivery %+v", d)
		}
	})
	t.Run("below the minimum severity nothing is sent", func(t *testing.T) {
		got, err := e.deliveries.ForAlert(context.Background(), e.org, low)
		if err != nil || len(got) != 0 {
			t.Fatalf("deliveries %+v, err %v", got, err)
		}
	})
	t.Run("another organization sees no deliveries", func(t *testing.T) {
		got, err := e.deliveries.ForAlert(context.Background(), "someone-else", high)
		if err != nil || len(got) != 0 {
			t.Fatalf("deliveries %+v, err %v", got, err)
		}
	})
	t.Run("a disabled channel gets nothing", func(t *testing.T) {
		list, _ := e.channels.List(context.Background(), e.org)
		if err := e.channels.SetEnabled(context.Background(), e.org, list[0].ID, false, models.SystemActor("test")); err != nil {
			t.Fatal(err)
		}
		e.raise(t, "CRITICAL", "While off")
		drain(t, e.deliveries)
		if n := rcv.count(); n != 1 {
			t.Fatalf("receiver got %d, want still 1", n)
		}
	})
	t.Run("a test delivery is sent and logged", func(t *testing.T) {
		list, _ := e.channels.List(context.Background(), e.org)
		if err := e.deliveries.EnqueueTest(context.Background(), e.org, list[0].ID, models.SystemActor("test")); err != nil {
			t.Fatal(err)
		}
		drain(t, e.deliveries)
		if n := rcv.count(); n != 2 {
			t.Fatalf("receiver got %d, want 2", n)
		}
		log, err := e.deliveries.RecentByChannel(context.Background(), e.org, 50)
		if err != nil {
			t.Fatal(err)
		}
		entries := log[list[0].ID]
		if len(entries) != 2 || entries[0].AlertID != "" || entries[0].Status != "delivered" || entries[0].ResponseStatus != 204 ||
			entries[1].AlertID != high {
			t.Fatalf("log %+v", entries)
		}
	})
	t.Run("another organization's channel cannot be tested", func(t *testing.T) {
		list, _ := e.channels.List(context.Background(), e.org)
		err := e.deliveries.EnqueueTest(context.Background(), "someone-else", list[0].ID, models.SystemActor("test"))
		if models.KindOf(err) != models.KindNotFound {
			t.Fatalf("error %v", err)
		}
	})
}

// TestFailingReceiversRetryThenFail: a receiver answering 500 and one that is down are
// retried with backoff for 24 hours and then marked failed, while a healthy receiver gets
// its delivery on the first pass.
func TestFailingReceiversRetryThenFail(t *testing.T) {
	e := newNotifyEnv(t, nil)
	broken := newReceiver(t, http.StatusInternalServerError)
	healthy := newReceiver(t, http.StatusOK)
	down := newReceiver(t, http.StatusOK)
	downURL := down.srv.URL
	down.srv.Close()
	brokenCh, brokenSecret := e.channel(t, "broken", "webhook", broken.srv.URL, "LOW")
	broken.secret = brokenSecret
	downCh, _ := e.channel(t, "down", "webhook", downURL, "LOW")
	_, healthy.secret = e.channel(t, "healthy", "webhook", healthy.srv.URL, "LOW")
	alert := e.raise(t, "MEDIUM", "Failing")
	drain(t, e.deliveries)
	if healthy.count() != 1 || broken.count() != 1 {
		t.Fatalf("first pass: healthy %d, broken %d", healthy.count(), broken.count())
	}
	var waits []time.Duration
	for i := 0; i < 100; i++ {
		list, _ := e.deliveries.ForAlert(context.Background(), e.org, alert)
		pending := 0
		for _, d := range list {
			if d.Status == "pending" {
				pending++
			}
		}
		if pending == 0 {
			break
		}
		wait := models.RetryBackoff(i + 1)
		waits = append(waits, wait)
		e.advance(wait)
		drain(t, e.deliveries)
	}
	if waits[0] != 30*time.Second || waits[1] != time.Minute || waits[2] != 2*time.Minute {
		t.Fatalf("backoff %v, want 30s, 1m, 2m …", waits[:3])
	}
	list, err := e.deliveries.ForAlert(context.Background(), e.org, alert)
	if err != nil {
		t.Fatal(err)
	}
	byChannel := map[string]models.AlertDelivery{}
	for _, d := range list {
		byChannel[d.Channel] = d
	}
	for _, name := range []string{"broken", "down"} {
		t.Run(name+" ends failed after a day of retries", func(t *testing.T) {
			d := byChannel[name]
			if d.Status != "failed" || d.Attempts < 10 || d.LastError == "" || d.DeliveredAt != nil {
				t.Fatalf("delivery %+v", d)
			}
			if elapsed := e.clock().Sub(*d.LastAttemptAt); elapsed > time.Hour {
				t.Fatalf("last attempt %v before the end", elapsed)
			}
		})
	}
	t.Run("the error says why", func(t *testing.T) {
		if !strings.Contains(byChannel["broken"].LastError, "500") {
			t.Fatalf("broken: %q", byChannel["broken"].LastError)
		}
		if !strings.Contains(byChannel["down"].LastError, "could not be reached") {
			t.Fatalf("down: %q", byChannel["down"].LastError)
		}
	})
	t.Run("the healthy channel was delivered once", func(t *testing.T) {
		if d := byChannel["healthy"]; d.Status != "delivered" || d.Attempts != 1 || healthy.count() != 1 {
			t.Fatalf("delivery %+v, received %d", d, healthy.count())
		}
	})
	t.Run("the channel logs show the failures", func(t *testing.T) {
		log, err := e.deliveries.RecentByChannel(context.Background(), e.org, 50)
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{brokenCh.ID, downCh.ID} {
			if l := log[id]; len(l) != 1 || l[0].Status != "failed" {
				t.Fatalf("log of %s: %+v", id, l)
			}
		}
		if l := log[brokenCh.ID]; l[0].ResponseStatus != 500 {
			t.Fatalf("broken log %+v", l[0])
		}
	})
}

// TestRebindingRefusedAtSend: a host that resolved to loopback when saved but resolves to a
// private address when sending is not contacted.
func TestRebindingRefusedAtSend(t *testing.T) {
	e := newNotifyEnv(t, nil)
	rcv := newReceiver(t, http.StatusOK)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(rcv.srv.URL, "http://"))
	e.resolver.set("rebind.example.com", "127.0.0.1")
	_, rcv.secret = e.channel(t, "rebind", "webhook", "http://rebind.example.com:"+port+"/hook", "LOW")
	e.resolver.set("rebind.example.com", "10.0.0.7")
	alert := e.raise(t, "HIGH", "Rebinding")
	drain(t, e.deliveries)
	list, err := e.deliveries.ForAlert(context.Background(), e.org, alert)
	if err != nil || len(list) != 1 {
		t.Fatalf("deliveries %+v, err %v", list, err)
	}
	if list[0].Status != "pending" || !strings.Contains(list[0].LastError, "private") || rcv.count() != 0 {
		t.Fatalf("delivery %+v, receiver got %d", list[0], rcv.count())
	}
}

// TestTwoSendersDeliverOnce runs two senders on one database at once: every delivery
// arrives exactly once.
func TestTwoSendersDeliverOnce(t *testing.T) {
	e := newNotifyEnv(t, nil)
	rcv := newReceiver(t, http.StatusOK)
	_, rcv.secret = e.channel(t, "hook", "webhook", rcv.srv.URL, "LOW")
	const alerts = 40
	for i := range alerts {
		e.raise(t, "HIGH", fmt.Sprintf("alert %d", i))
	}
	db := pgtest.DB(t)
	trail := models.NewAuditTrail(db, testSealer(t), models.NewPartitionManager(db))
	var senders []*models.DeliveryStore
	for range 2 {
		s := models.NewDeliveryStore(db, trail, nil, "https://console.example.com", nil, e.resolver)
		s.Now = e.clock
		senders = append(senders, s)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for _, s := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				n, err := s.EnqueueNew(context.Background(), 5)
				if err != nil {
					errs <- err
					return
				}
				m, err := s.SendDue(context.Background(), 3)
				if err != nil {
					errs <- err
					return
				}
				if n == 0 && m == 0 {
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	drain(t, e.deliveries)
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	if len(rcv.bad) > 0 || len(rcv.got) != alerts || len(rcv.ids) != alerts {
		t.Fatalf("received %d deliveries with %d ids (problems %v), want %d", len(rcv.got), len(rcv.ids), rcv.bad, alerts)
	}
	for id, n := range rcv.ids {
		if n != 1 {
			t.Fatalf("delivery %s received %d times", id, n)
		}
	}
}

// smtpBackend is an in-process SMTP server's backend: it keeps the messages it accepts,
// or refuses every recipient.
type smtpBackend struct {
	refuse bool
	mu     sync.Mutex
	mails  []string
}

func (b *smtpBackend) NewSession(*gosmtp.Conn) (gosmtp.Session, error) {
	return &smtpSession{b: b}, nil
}

type smtpSession struct {
	b  *smtpBackend
	to string
}

func (s *smtpSession) Reset()        {}
func (s *smtpSession) Logout() error { return nil }
func (s *smtpSession) Mail(string, *gosmtp.MailOptions) error {
	return nil
}
func (s *smtpSession) Rcpt(to string, _ *gosmtp.RcptOptions) error {
	if s.b.refuse {
		return &gosmtp.SMTPError{Code: 550, EnhancedCode: gosmtp.EnhancedCode{5, 1, 1}, Message: "mailbox unavailable"}
	}
	s.to = to
	return nil
}
func (s *smtpSession) Data(r io.Reader) error {
	body, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	s.b.mails = append(s.b.mails, "To-Envelope: "+s.to+"\r\n"+string(body))
	return nil
}

func startSMTP(t *testing.T, refuse bool) (*smtpBackend, *models.SMTPConfig) {
	t.Helper()
	be := &smtpBackend{refuse: refuse}
	srv := gosmtp.NewServer(be)
	srv.Domain = "localhost"
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	host, port, _ := net.SplitHostPort(l.Addr().String())
	return be, &models.SMTPConfig{Host: host, Port: port, From: "alerts@example.com"}
}

func TestEmailDelivery(t *testing.T) {
	t.Run("an accepting server gets the alert", func(t *testing.T) {
		be, cfg := startSMTP(t, false)
		e := newNotifyEnv(t, cfg)
		e.channel(t, "oncall", "email", "oncall@example.com", "MEDIUM")
		alert := e.raise(t, "CRITICAL", "Integrity broken")
		drain(t, e.deliveries)
		be.mu.Lock()
		defer be.mu.Unlock()
		if len(be.mails) != 1 {
			t.Fatalf("mails %d", len(be.mails))
		}
		m := be.mails[0]
		for _, want := range []string{"To-Envelope: oncall@example.com", "From: alerts@example.com", "Subject: [auditdb] CRITICAL SECURITY alert: Integrity broken",
			"details of Integrity broken", "https://console.example.com/alerts/" + alert} {
			if !strings.Contains(m, want) {
				t.Fatalf("mail lacks %q:\n%s", want, m)
			}
		}
		got, _ := e.deliveries.ForAlert(context.Background(), e.org, alert)
		if len(got) != 1 || got[0].Status != "delivered" || got[0].Kind != "email" {
			t.Fatalf("deliveries %+v", got)
		}
	})
	t.Run("a refusing server is retried, then failed, without holding up a webhook", func(t *testing.T) {
		_, cfg := startSMTP(t, true)
		e := newNotifyEnv(t, cfg)
		rcv := newReceiver(t, http.StatusOK)
		e.channel(t, "oncall", "email", "oncall@example.com", "LOW")
		_, rcv.secret = e.channel(t, "hook", "webhook", rcv.srv.URL, "LOW")
		alert := e.raise(t, "HIGH", "Refused")
		drain(t, e.deliveries)
		if rcv.count() != 1 {
			t.Fatalf("webhook got %d", rcv.count())
		}
		for i := 1; i < 100; i++ {
			e.advance(models.RetryBackoff(i))
			drain(t, e.deliveries)
		}
		got, _ := e.deliveries.ForAlert(context.Background(), e.org, alert)
		var mail models.AlertDelivery
		for _, d := range got {
			if d.Kind == "email" {
				mail = d
			}
		}
		if mail.Status != "failed" || mail.Attempts < 10 || !strings.Contains(mail.LastError, "550") {
			t.Fatalf("email delivery %+v", mail)
		}
	})
}

// TestClaimedDeliverySurvivesACrash: a sender that claimed a delivery and died before
// recording the outcome leaves it leased; once the lease is over another instance sends it.
func TestClaimedDeliverySurvivesACrash(t *testing.T) {
	e := newNotifyEnv(t, nil)
	rcv := newReceiver(t, http.StatusOK)
	_, rcv.secret = e.channel(t, "hook", "webhook", rcv.srv.URL, "LOW")
	alert := e.raise(t, "HIGH", "Crash")
	if _, err := e.deliveries.EnqueueNew(context.Background(), 100); err != nil {
		t.Fatal(err)
	}
	// What SendDue's claim does, by an instance that then dies.
	now := e.clock()
	err := pgtest.DB(t).Exec(`UPDATE alert_deliveries SET attempts = attempts + 1, last_attempt_at = ?, next_attempt_at = ?
		WHERE alert_id = ?`, now, now.Add(2*time.Minute), alert).Error
	if err != nil {
		t.Fatal(err)
	}
	if n, err := e.deliveries.SendDue(context.Background(), 100); err != nil || n != 0 {
		t.Fatalf("sent %d while leased (err %v)", n, err)
	}
	e.advance(2 * time.Minute)
	drain(t, e.deliveries)
	got, _ := e.deliveries.ForAlert(context.Background(), e.org, alert)
	if len(got) != 1 || got[0].Status != "delivered" || got[0].Attempts != 2 || rcv.count() != 1 {
		t.Fatalf("deliveries %+v, received %d", got, rcv.count())
	}
}

// TestHangingReceiverDoesNotBlockOthers: a receiver that never answers times out and is
// retried later; the other channels' deliveries go out in the same pass.
func TestHangingReceiverDoesNotBlockOthers(t *testing.T) {
	e := newNotifyEnv(t, nil)
	e.deliveries.Timeout = 300 * time.Millisecond
	release := make(chan struct{})
	hanging := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(hanging.Close)
	t.Cleanup(func() { close(release) })
	healthy := newReceiver(t, http.StatusOK)
	e.channel(t, "hanging", "webhook", hanging.URL, "LOW")
	_, healthy.secret = e.channel(t, "healthy", "webhook", healthy.srv.URL, "LOW")
	alert := e.raise(t, "HIGH", "Slow receiver")
	start := time.Now()
	drain(t, e.deliveries)
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("the pass took %v", took)
	}
	got, _ := e.deliveries.ForAlert(context.Background(), e.org, alert)
	status := map[string]models.AlertDelivery{}
	for _, d := range got {
		status[d.Channel] = d
	}
	if status["healthy"].Status != "delivered" || healthy.count() != 1 {
		t.Fatalf("healthy: %+v", status["healthy"])
	}
	if d := status["hanging"]; d.Status != "pending" || !strings.Contains(d.LastError, "no answer in time") {
		t.Fatalf("hanging: %+v", d)
	}
}

// TestDeliveryErrorClassHidesTheNetwork: what a tenant is shown of a failed delivery does
// not tell an open port from a closed one, nor name the server's resolver.
func TestDeliveryErrorClassHidesTheNetwork(t *testing.T) {
	open := models.DeliveryErrorClass(errors.New(`Post "http://127.0.0.1:6379/": EOF`), 0)
	closed := models.DeliveryErrorClass(errors.New(`Post "http://[::1]:5432/": dial tcp [::1]:5432: connect: connection refused`), 0)
	if open != closed {
		t.Fatalf("an open port reads %q and a closed one %q", open, closed)
	}
	dns := models.DeliveryErrorClass(errors.New(`its host x.example cannot be resolved: lookup x.example on 10.255.255.53:53: no such host`), 0)
	if strings.Contains(dns, "10.255") || strings.Contains(dns, "53") {
		t.Fatalf("the resolver shows: %q", dns)
	}
	if got := models.DeliveryErrorClass(errors.New("x"), 503); !strings.Contains(got, "503") {
		t.Fatalf("an HTTP status is not named: %q", got)
	}
}
