package reports

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"auditdb/models"
)

// Sender sends report deliveries; *models.ReportSender is the server's.
type Sender interface {
	Webhook(ctx context.Context, target, secret, event, delivery string, body []byte) error
	Email(ctx context.Context, m models.ReportMail) error
}

// AttachLimit is how many bytes of files travel with a delivery (in the webhook's body,
// attached to the email); files past it are sent as their signed download links.
const AttachLimit = 10 << 20

// WebhookEvent is the X-Auditdb-Event of a report delivery.
const WebhookEvent = "report.completed"

// FileDeliverer delivers an execution's files to a schedule's webhook or email
// addresses: each file inline while the total stays within AttachLimit, as a link after.
type FileDeliverer struct {
	Store *Store
	Send  Sender
	// Limit overrides AttachLimit when set (tests).
	Limit int64
}

// WebhookPayload is the JSON body a report webhook receives.
type WebhookPayload struct {
	Event        string           `json:"event"`
	Organization string           `json:"organization"`
	Execution    WebhookExecution `json:"execution"`
	Files        []WebhookFile    `json:"files"`
}

// WebhookExecution describes the run in a webhook's body.
type WebhookExecution struct {
	ID         string            `json:"id"`
	Type       string            `json:"type"`
	From       time.Time         `json:"from"`
	To         time.Time         `json:"to"`
	Status     string            `json:"status"`
	StartedAt  time.Time         `json:"started_at"`
	Records    int64             `json:"records_processed"`
	ScheduleID string            `json:"schedule_id,omitempty"`
	Integrity  *IntegritySummary `json:"integrity,omitempty"`
}

// WebhookFile is one file in a webhook's body: its content (base64) when it was within
// the limit, always its signed download link.
type WebhookFile struct {
	Format        string `json:"format"`
	Name          string `json:"name"`
	ContentType   string `json:"content_type"`
	Size          int64  `json:"size"`
	SHA256        string `json:"sha256"`
	URL           string `json:"url,omitempty"`
	ContentBase64 []byte `json:"content_base64,omitempty"`
}

func (d *FileDeliverer) limit() int64 {
	if d.Limit > 0 {
		return d.Limit
	}
	return AttachLimit
}

// inline lists which of files travel with the delivery (in order, while the total stays
// within the limit).
func (d *FileDeliverer) inline(files []File) []bool {
	out := make([]bool, len(files))
	var total int64
	for i, f := range files {
		if total+f.Size <= d.limit() {
			out[i] = true
			total += f.Size
		}
	}
	return out
}

// Deliver sends e's files to dl: a signed JSON POST to a webhook, or one email to the
// addresses. It returns the refusal or failure.
func (d *FileDeliverer) Deliver(ctx context.Context, org string, dl Delivery, e *Execution, links func(File) string) error {
	switch dl.Kind {
	case DeliverWebhook:
		return d.webhook(ctx, org, dl, e, links)
	case DeliverEmail:
		return d.email(ctx, org, dl, e, links)
	}
	return fmt.Errorf("reports: nothing to deliver for %q", dl.Kind)
}

func (d *FileDeliverer) webhook(ctx context.Context, org string, dl Delivery, e *Execution, links func(File) string) error {
	p := WebhookPayload{Event: WebhookEvent, Organization: org, Files: []WebhookFile{},
		Execution: WebhookExecution{ID: e.ID, Type: e.Type, From: e.Criteria.From.UTC(), To: e.Criteria.To.UTC(), Status: e.Status,
			StartedAt: e.StartedAt.UTC(), ScheduleID: e.ScheduleID, Integrity: e.Integrity}}
	if e.Records != nil {
		p.Execution.Records = *e.Records
	}
	inline := d.inline(e.Files)
	for i, f := range e.Files {
		wf := WebhookFile{Format: f.Format, Name: f.Name, ContentType: f.ContentType, Size: f.Size, SHA256: f.SHA256, URL: links(f)}
		if inline[i] {
			var err error
			if wf.ContentBase64, err = d.read(ctx, org, e.ID, f); err != nil {
				return err
			}
		}
		p.Files = append(p.Files, wf)
	}
	body, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("reports: webhook body: %w", err)
	}
	return d.Send.Webhook(ctx, dl.URL, dl.Secret, WebhookEvent, e.ID, body)
}

// read returns a stored file's content, at most the limit.
func (d *FileDeliverer) read(ctx context.Context, org, exec string, f File) ([]byte, error) {
	_, rc, err := d.Store.OpenFile(ctx, org, exec, f.Format)
	if err != nil {
		return nil, fmt.Errorf("reports: read %s for delivery: %w", f.Format, err)
	}
	defer rc.Close()
	var b bytes.Buffer
	if _, err := io.Copy(&b, io.LimitReader(rc, d.limit()+1)); err != nil {
		return nil, fmt.Errorf("reports: read %s for delivery: %w", f.Format, err)
	}
	return b.Bytes(), nil
}

func (d *FileDeliverer) email(ctx context.Context, org string, dl Delivery, e *Execution, links func(File) string) error {
	title := TypeTitles[e.Type]
	period := e.Criteria.From.UTC().Format("2006-01-02 15:04") + " to " + e.Criteria.To.UTC().Format("2006-01-02 15:04") + " UTC"
	m := models.ReportMail{To: dl.Emails, Subject: "[auditdb] " + title + " report, " + period}
	var b strings.Builder
	fmt.Fprintf(&b, "The scheduled report %s of organization %s is ready.\n\nPeriod: %s\n", title, org, period)
	if e.Records != nil {
		fmt.Fprintf(&b, "Events: %d\n", *e.Records)
	}
	b.WriteString("\nFiles:\n")
	inline := d.inline(e.Files)
	for i, f := range e.Files {
		fmt.Fprintf(&b, "\n- %s (%d bytes, SHA-256 %s)\n", f.Name, f.Size, f.SHA256)
		if inline[i] {
			b.WriteString("  attached\n")
			f := f
			m.Attachments = append(m.Attachments, models.MailAttachment{Name: f.Name, ContentType: f.ContentType,
				Open: func() (io.ReadCloser, error) {
					_, rc, err := d.Store.OpenFile(ctx, org, e.ID, f.Format)
					return rc, err
				}})
		} else {
			fmt.Fprintf(&b, "  too large to attach; download (sign-in required, the link expires in 24 hours):\n  %s\n", links(f))
		}
	}
	b.WriteString("\nEach download is recorded in the organization's audit log.\n")
	m.Text = b.String()
	return d.Send.Email(ctx, m)
}
