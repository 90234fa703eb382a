package reports_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"auditdb/models"
	"auditdb/models/pgtest"
	"auditdb/models/reports"
)

// mailbox is an in-process SMTP server keeping what it accepts, or refusing recipients.
type mailbox struct {
	refuse bool
	mu     sync.Mutex
	mails  []string
	rcpts  []string
}

func (m *mailbox) NewSession(*gosmtp.Conn) (gosmtp.Session, error) { return &mailSession{m}, nil }

type mailSession struct{ m *mailbox }

func (s *mailSession) Reset()                                 {}
func (s *mailSession) Logout() error                          { return nil }
func (s *mailSession) Mail(string, *gosmtp.MailOptions) error { return nil }
func (s *mailSession) Rcpt(to string, _ *gosmtp.RcptOptions) error {
	if s.m.refuse {
		return &gosmtp.SMTPError{Code: 550, EnhancedCode: gosmtp.EnhancedCode{5, 1, 1}, Message: "mailbox unavailable"}
	}
	s.m.mu.Lock()
	s.m.rcpts = append(s.m.rcpts, to)
	s.m.mu.Unlock()
	return nil
}
func (s *mailSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	s.m.mu.Lock()
	s.m.mails = append(s.m.mails, string(b))
	s.m.mu.Unlock()
	return err
}

func startMailbox(t *testing.T, refuse bool) (*mailbox, *models.SMTPConfig) {
	t.Helper()
	m := &mailbox{refuse: refuse}
	srv := gosmtp.NewServer(m)
	srv.Domain = "localhost"
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	host, port, _ := net.SplitHostPort(l.Addr().String())
	return m, &models.SMTPConfig{Host: host, Port: port, From: "reports@example.com"}
}

// runScheduled saves a JSON+CSV template and a daily schedule delivering to d, runs it
// once as the scheduler would and returns the schedule and the finished execution.
func runScheduled(t *testing.T, r *reports.Runner, store *reports.Store, org string, d reports.Delivery) (*reports.ScheduledReport, *reports.Execution) {
	t.Helper()
	ctx := context.Background()
	fixture(t, org, time.Now().UTC())
	tpl, err := store.SaveTemplate(ctx, org, "", reports.TemplateInput{Name: "Daily", Type: reports.TypeGeneral,
		PeriodDays: 2, Formats: []string{"json", "csv"}}, alice)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := store.SaveSchedule(ctx, org, "", reports.ScheduleInput{Name: "out", TemplateID: tpl.ID, Enabled: true,
		Schedule: reports.Schedule{Frequency: "daily", Time: "06:00", TimeZone: "UTC"}, Delivery: d}, alice)
	if err != nil {
		t.Fatal(err)
	}
	r.Now = func() time.Time { return sc.NextRun.Add(time.Minute) }
	if n, err := r.RunDue(ctx); err != nil || n != 1 {
		t.Fatalf("RunDue = %d, %v", n, err)
	}
	r.Wait()
	// Paused afterwards: other tests of this binary move their runners' clocks past its
	// next run, and due schedules are found across organizations.
	if err := pgtest.DB(t).Exec(`UPDATE scheduled_reports SET enabled = false WHERE id = ?`, sc.ID).Error; err != nil {
		t.Fatal(err)
	}
	execs, err := store.Executions(ctx, org, 1)
	if err != nil || len(execs) != 1 {
		t.Fatalf("executions %v %v", execs, err)
	}
	e, err := store.Execution(ctx, org, execs[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if e.Status != reports.StatusCompleted || len(e.Files) != 2 {
		t.Fatalf("execution %+v", e)
	}
	return sc, e
}

func link(org, exec string, f reports.File) string {
	return "https://console.example.com/reports/executions/" + exec + "/files/" + f.Format + "?sig=x"
}

func TestWebhookDelivery(t *testing.T) {
	type got struct {
		sig  string
		body []byte
	}
	var mu sync.Mutex
	var received []got
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		received = append(received, got{r.Header.Get("X-Auditdb-Signature"), b})
		mu.Unlock()
	}))
	defer recv.Close()

	t.Run("files within the limit travel in the signed body", func(t *testing.T) {
		r, store := newRunner(t)
		r.Link = link
		r.Deliver = &reports.FileDeliverer{Store: store, Send: models.NewReportSender(nil, nil).AllowLoopbackForTest()}
		org := pgtest.NewOrg(t, "hook")
		sc, e := runScheduled(t, r, store, org, reports.Delivery{Kind: reports.DeliverWebhook, URL: recv.URL + "/hook"})
		if !strings.HasPrefix(sc.Delivery.Secret, "whsec_") {
			t.Fatalf("the schedule has no signing secret: %+v", sc.Delivery)
		}
		if len(e.Deliveries) != 1 || !e.Deliveries[0].OK {
			t.Fatalf("delivery attempts %+v", e.Deliveries)
		}
		mu.Lock()
		last := received[len(received)-1]
		mu.Unlock()
		var ts int64
		if _, err := parseSig(last.sig, &ts); err != nil || last.sig != models.WebhookSignature(sc.Delivery.Secret, time.Unix(ts, 0), last.body) {
			t.Fatalf("signature %q does not verify with the schedule's secret", last.sig)
		}
		var p reports.WebhookPayload
		if err := json.Unmarshal(last.body, &p); err != nil {
			t.Fatal(err)
		}
		if p.Event != "report.completed" || p.Execution.ID != e.ID || p.Organization != org || len(p.Files) != 2 {
			t.Fatalf("payload %+v", p)
		}
		for i, f := range p.Files {
			sum := sha256.Sum256(f.ContentBase64)
			if len(f.ContentBase64) == 0 || hex.EncodeToString(sum[:]) != e.Files[i].SHA256 || f.URL == "" {
				t.Fatalf("file %s: %d bytes, sha %x, want %s", f.Format, len(f.ContentBase64), sum, e.Files[i].SHA256)
			}
		}
	})
	t.Run("files past the limit go as links", func(t *testing.T) {
		r, store := newRunner(t)
		r.Link = link
		r.Deliver = &reports.FileDeliverer{Store: store, Limit: 1, Send: models.NewReportSender(nil, nil).AllowLoopbackForTest()}
		org := pgtest.NewOrg(t, "hooklinks")
		_, e := runScheduled(t, r, store, org, reports.Delivery{Kind: reports.DeliverWebhook, URL: recv.URL + "/hook"})
		mu.Lock()
		last := received[len(received)-1]
		mu.Unlock()
		var p reports.WebhookPayload
		if err := json.Unmarshal(last.body, &p); err != nil || p.Execution.ID != e.ID {
			t.Fatalf("payload %s %v", last.body, err)
		}
		for _, f := range p.Files {
			if len(f.ContentBase64) != 0 || !strings.Contains(f.URL, "/reports/executions/"+e.ID+"/files/"+f.Format) {
				t.Fatalf("file %+v: want a link and no content", f)
			}
		}
	})
	t.Run("the server's rule refuses the loopback receiver; the run completes and the failure is recorded", func(t *testing.T) {
		r, store := newRunner(t)
		r.Link = link
		r.Deliver = &reports.FileDeliverer{Store: store, Send: models.NewReportSender(nil, nil)}
		org := pgtest.NewOrg(t, "hookrefused")
		mu.Lock()
		before := len(received)
		mu.Unlock()
		_, e := runScheduled(t, r, store, org, reports.Delivery{Kind: reports.DeliverWebhook, URL: recv.URL + "/hook"})
		if len(e.Deliveries) != 1 || e.Deliveries[0].OK || !strings.Contains(e.Deliveries[0].Error, "refused") {
			t.Fatalf("delivery attempts %+v", e.Deliveries)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(received) != before {
			t.Fatal("the loopback receiver was reached")
		}
	})
}

// parseSig reads the t= of a signature header.
func parseSig(h string, ts *int64) (string, error) {
	t, rest, _ := strings.Cut(strings.TrimPrefix(h, "t="), ",")
	n, err := strconv.ParseInt(t, 10, 64)
	*ts = n
	return rest, err
}

func TestEmailDelivery(t *testing.T) {
	t.Run("attached within the limit", func(t *testing.T) {
		box, cfg := startMailbox(t, false)
		r, store := newRunner(t)
		r.Link = link
		r.Deliver = &reports.FileDeliverer{Store: store, Send: models.NewReportSender(nil, cfg)}
		org := pgtest.NewOrg(t, "mail")
		_, e := runScheduled(t, r, store, org, reports.Delivery{Kind: reports.DeliverEmail, Emails: []string{"dpo@example.com", "cso@example.com"}})
		if len(e.Deliveries) != 1 || !e.Deliveries[0].OK {
			t.Fatalf("delivery attempts %+v", e.Deliveries)
		}
		box.mu.Lock()
		defer box.mu.Unlock()
		if len(box.mails) != 1 || strings.Join(box.rcpts, ",") != "dpo@example.com,cso@example.com" {
			t.Fatalf("mails %d to %v", len(box.mails), box.rcpts)
		}
		_, atts := readMail(t, box.mails[0])
		for _, f := range e.Files {
			sum := sha256.Sum256(atts[f.Name])
			if hex.EncodeToString(sum[:]) != f.SHA256 {
				t.Fatalf("%s is not attached intact (%d bytes)", f.Name, len(atts[f.Name]))
			}
		}
	})
	t.Run("a link past the limit", func(t *testing.T) {
		box, cfg := startMailbox(t, false)
		r, store := newRunner(t)
		r.Link = link
		r.Deliver = &reports.FileDeliverer{Store: store, Limit: 1, Send: models.NewReportSender(nil, cfg)}
		org := pgtest.NewOrg(t, "maillink")
		_, e := runScheduled(t, r, store, org, reports.Delivery{Kind: reports.DeliverEmail, Emails: []string{"dpo@example.com"}})
		box.mu.Lock()
		defer box.mu.Unlock()
		if len(e.Deliveries) != 1 || !e.Deliveries[0].OK || len(box.mails) != 1 {
			t.Fatalf("attempts %+v, mails %d", e.Deliveries, len(box.mails))
		}
		text, atts := readMail(t, box.mails[0])
		if len(atts) != 0 || !strings.Contains(text, "/reports/executions/"+e.ID+"/files/csv") {
			t.Fatalf("want links and no attachment, got %d attachments:\n%s", len(atts), text)
		}
	})
	t.Run("a refusing server is a recorded failure; the run completes", func(t *testing.T) {
		_, cfg := startMailbox(t, true)
		r, store := newRunner(t)
		r.Link = link
		r.Deliver = &reports.FileDeliverer{Store: store, Send: models.NewReportSender(nil, cfg)}
		org := pgtest.NewOrg(t, "mailrefused")
		_, e := runScheduled(t, r, store, org, reports.Delivery{Kind: reports.DeliverEmail, Emails: []string{"dpo@example.com"}})
		if len(e.Deliveries) != 1 || e.Deliveries[0].OK || !strings.Contains(e.Deliveries[0].Error, "550") {
			t.Fatalf("delivery attempts %+v", e.Deliveries)
		}
	})
}

// readMail returns a multipart message's text and its attachments by file name.
func readMail(t *testing.T, raw string) (string, map[string][]byte) {
	t.Helper()
	msg, err := mail.ReadMessage(strings.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	_, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil {
		t.Fatal(err)
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	var text string
	atts := map[string][]byte{}
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if p.FileName() == "" {
			b, _ := io.ReadAll(p)
			text += string(b)
			continue
		}
		b, err := io.ReadAll(base64.NewDecoder(base64.StdEncoding, p))
		if err != nil {
			t.Fatal(err)
		}
		atts[p.FileName()] = b
	}
	return text, atts
}
