package models_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"auditdb/models"
)

// Report webhooks keep to public addresses: loopback, private, link-local, multicast and
// unspecified ones are refused, as literals and after DNS resolution, and plain http is
// refused; nothing is sent to a refused address.
func TestReportWebhookRefusesNonPublicAddresses(t *testing.T) {
	ctx := context.Background()
	res := &fakeResolver{hosts: map[string][]string{
		"public.example.com":   {"93.184.216.34"},
		"local.example.com":    {"127.0.0.1"},
		"private.example.com":  {"10.1.2.3"},
		"metadata.example.com": {"169.254.169.254"},
		"mixed.example.com":    {"93.184.216.34", "127.0.0.1"},
		"v6local.example.com":  {"::1"},
	}}
	for _, tc := range []struct {
		name, url string
		ok        bool
	}{
		{"a public host", "https://public.example.com/hook", true},
		{"IPv4 loopback literal", "https://127.0.0.1/hook", false},
		{"IPv6 loopback literal", "https://[::1]/hook", false},
		{"IPv4-mapped loopback", "https://[::ffff:127.0.0.1]/hook", false},
		{"IPv4-translated loopback", "https://[::ffff:0:7f00:1]/hook", false},
		{"IPv4-translated private address", "https://[::ffff:0:a00:1]/hook", false},
		{"IPv4-translated metadata address", "https://[::ffff:0:a9fe:a9fe]/hook", false},
		{"IPv4-translated public address", "https://[::ffff:0:5db8:d822]/hook", true},
		{"a name resolving to loopback", "https://local.example.com/hook", false},
		{"a name resolving to IPv6 loopback", "https://v6local.example.com/hook", false},
		{"a name resolving to a private address", "https://private.example.com/hook", false},
		{"a name resolving to link-local (cloud metadata)", "https://metadata.example.com/hook", false},
		{"one public and one loopback answer", "https://mixed.example.com/hook", false},
		{"private literal", "https://192.168.1.10/hook", false},
		{"link-local IPv6", "https://[fe80::1]/hook", false},
		{"multicast", "https://224.0.0.251/hook", false},
		{"unspecified IPv4", "https://0.0.0.0/hook", false},
		{"unspecified IPv6", "https://[::]/hook", false},
		{"plain http to a public host", "http://public.example.com/hook", false},
		{"plain http to loopback", "http://127.0.0.1:9/hook", false},
		{"unresolvable", "https://nowhere.example.com/hook", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := models.CheckReportWebhookURL(ctx, res, tc.url)
			if tc.ok != (err == nil) {
				t.Fatalf("CheckReportWebhookURL(%s) = %v, want ok=%v", tc.url, err, tc.ok)
			}
			if err != nil && (models.KindOf(err) != models.KindInvalid || !strings.Contains(models.MessageOf(err), "webhook_url")) {
				t.Fatalf("refusal %v does not name webhook_url", err)
			}
			// The alert channels' rule still lets loopback through.
			if tc.url == "https://127.0.0.1/hook" {
				if _, err := models.CheckWebhookURL(ctx, res, tc.url); err != nil {
					t.Fatalf("alert channel rule refuses loopback: %v", err)
				}
			}
		})
	}
}

func TestReportWebhookSend(t *testing.T) {
	ctx := context.Background()
	var hits atomic.Int32
	var gotSig, gotEvent string
	var gotBody []byte
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		gotSig, gotEvent = r.Header.Get("X-Auditdb-Signature"), r.Header.Get("X-Auditdb-Event")
		gotBody, _ = io.ReadAll(r.Body)
	}))
	defer recv.Close()
	var elsewhere atomic.Int32
	target := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { elsewhere.Add(1) }))
	defer target.Close()
	redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL+"/stolen", http.StatusTemporaryRedirect)
	}))
	defer redirect.Close()

	strict := models.NewReportSender(&fakeResolver{}, nil)
	now := time.Date(2026, 11, 30, 2, 0, 0, 0, time.UTC)
	strict.Now = func() time.Time { return now }
	body := []byte(`{"event":"report.completed"}`)

	t.Run("the server's sender refuses a loopback receiver and sends nothing", func(t *testing.T) {
		err := strict.Webhook(ctx, recv.URL+"/hook", "whsec_x", "report.completed", "exe_1", body)
		if err == nil || !strings.Contains(err.Error(), "refused") {
			t.Fatalf("strict send to %s = %v, want refused", recv.URL, err)
		}
		if hits.Load() != 0 {
			t.Fatal("the loopback receiver was reached")
		}
	})
	loose := strict.AllowLoopbackForTest()
	t.Run("through the test hook the receiver gets a signed body", func(t *testing.T) {
		if err := loose.Webhook(ctx, recv.URL+"/hook", "whsec_x", "report.completed", "exe_1", body); err != nil {
			t.Fatal(err)
		}
		if hits.Load() != 1 || !bytes.Equal(gotBody, body) || gotEvent != "report.completed" ||
			gotSig != models.WebhookSignature("whsec_x", now, body) {
			t.Fatalf("receiver got %d hits, body %q, event %q, signature %q", hits.Load(), gotBody, gotEvent, gotSig)
		}
	})
	t.Run("a redirect is not followed", func(t *testing.T) {
		err := loose.Webhook(ctx, redirect.URL+"/hook", "whsec_x", "report.completed", "exe_1", body)
		if err == nil || !strings.Contains(err.Error(), "307") {
			t.Fatalf("send to a redirect = %v, want failed with 307", err)
		}
		if elsewhere.Load() != 0 {
			t.Fatal("the redirect was followed")
		}
	})
	t.Run("no secret, no send", func(t *testing.T) {
		if err := loose.Webhook(ctx, recv.URL+"/hook", "", "report.completed", "exe_1", body); err == nil {
			t.Fatal("an unsigned webhook was sent")
		}
	})
}

func TestReportEmailAttachesFiles(t *testing.T) {
	ctx := context.Background()
	be, cfg := startSMTP(t, false)
	s := models.NewReportSender(&fakeResolver{}, cfg)
	file := bytes.Repeat([]byte("événement,=1+2\r\n.leading dot\r\n"), 5000)
	err := s.Email(ctx, models.ReportMail{To: []string{"dpo@example.com", "auditor@example.com"}, Subject: "[auditdb] Report — ready",
		Text: "Files:\n.a line starting with a dot\n", Attachments: []models.MailAttachment{{Name: "report.csv", ContentType: "text/csv",
			Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(file)), nil }}}})
	if err != nil {
		t.Fatal(err)
	}
	be.mu.Lock()
	mails := append([]string(nil), be.mails...)
	be.mu.Unlock()
	if len(mails) != 1 { // one message for both recipients
		t.Fatalf("%d mails, want 1", len(mails))
	}
	raw := mails[0][strings.Index(mails[0], "\r\n")+2:]
	msg, err := mail.ReadMessage(strings.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if subj, _ := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject")); subj != "[auditdb] Report — ready" {
		t.Fatalf("subject %q", subj)
	}
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/mixed" {
		t.Fatalf("content type %q %v", mt, err)
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	text, err := mr.NextPart()
	if err != nil {
		t.Fatal(err)
	}
	tb, _ := io.ReadAll(text)
	if !strings.Contains(string(tb), "\n.a line starting with a dot") {
		t.Fatalf("text part %q", tb)
	}
	att, err := mr.NextPart()
	if err != nil {
		t.Fatal(err)
	}
	if att.FileName() != "report.csv" {
		t.Fatalf("attachment name %q", att.FileName())
	}
	got, err := io.ReadAll(base64.NewDecoder(base64.StdEncoding, att))
	if err != nil {
		t.Fatal(err)
	}
	if sha256.Sum256(got) != sha256.Sum256(file) {
		t.Fatalf("attachment differs: %d bytes, want %d", len(got), len(file))
	}
	t.Run("no SMTP server", func(t *testing.T) {
		err := models.NewReportSender(&fakeResolver{}, nil).Email(ctx, models.ReportMail{To: []string{"a@example.com"}})
		if err == nil || !strings.Contains(err.Error(), "AUDITDB_SMTP_URL") {
			t.Fatalf("email without SMTP = %v", err)
		}
	})
}

// A line that starts with a dot reaches the recipient as written: the SMTP data writer
// dot-stuffs lines itself, so the message must not do it a second time.
func TestAlertEmailLineStartingWithADot(t *testing.T) {
	be, cfg := startSMTP(t, false)
	e := newNotifyEnv(t, cfg)
	e.channel(t, "oncall", "email", "oncall@example.com", "LOW")
	e.raise(t, "HIGH", ".env file read")
	drain(t, e.deliveries)
	be.mu.Lock()
	defer be.mu.Unlock()
	if len(be.mails) != 1 {
		t.Fatalf("mails %d", len(be.mails))
	}
	if strings.Contains(be.mails[0], "\r\n..env file read") || !strings.Contains(be.mails[0], "\r\n.env file read") {
		t.Fatalf("the dotted line arrived changed:\n%s", be.mails[0])
	}
}

// discardSMTP is an SMTP backend that reads and drops every message (the benchmark's
// receiver, so its memory is not the sender's).
type discardSMTP struct{}

func (discardSMTP) NewSession(*gosmtp.Conn) (gosmtp.Session, error) { return discardSession{}, nil }

type discardSession struct{}

func (discardSession) Reset()                                 {}
func (discardSession) Logout() error                          { return nil }
func (discardSession) Mail(string, *gosmtp.MailOptions) error { return nil }
func (discardSession) Rcpt(string, *gosmtp.RcptOptions) error { return nil }
func (discardSession) Data(r io.Reader) error                 { _, err := io.Copy(io.Discard, r); return err }

// BenchmarkReportEmail sends one email with a 1 MB and a 10 MB attachment to an in-process
// SMTP server that drops it: the attachment is streamed from its reader, so the sender's
// memory per message does not grow with it (compare B/op of the two sizes).
func BenchmarkReportEmail(b *testing.B) {
	srv := gosmtp.NewServer(discardSMTP{})
	srv.Domain = "localhost"
	srv.MaxMessageBytes = 64 << 20
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go srv.Serve(l)
	defer srv.Close()
	host, port, _ := net.SplitHostPort(l.Addr().String())
	s := models.NewReportSender(&fakeResolver{}, &models.SMTPConfig{Host: host, Port: port, From: "reports@example.com"})
	for _, size := range []int{1 << 20, 10 << 20} {
		b.Run(fmt.Sprintf("%dMB", size>>20), func(b *testing.B) {
			file := bytes.Repeat([]byte("0123456789abcdef"), size/16)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				err := s.Email(context.Background(), models.ReportMail{To: []string{"dpo@example.com"}, Subject: "r", Text: "t",
					Attachments: []models.MailAttachment{{Name: "r.csv", ContentType: "text/csv",
						Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(file)), nil }}}})
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
