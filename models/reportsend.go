package models

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/textproto"
	"strings"
	"time"
)

// ReportSendTimeout bounds one report delivery (up to 10 MB of files in the body or
// attached): connecting and each answer still wait at most SendTimeout.
const ReportSendTimeout = 2 * time.Minute

// ReportSender delivers report files: to webhooks through the alert channels' signed
// sender under a stricter rule (public addresses only: loopback, private, link-local,
// multicast and unspecified ones are refused, also after DNS resolution, and redirects
// are not followed), and by email through the configured SMTP server.
type ReportSender struct {
	resolver Resolver
	smtp     *SMTPConfig
	loopback bool
	Now      func() time.Time
}

// NewReportSender returns a sender resolving webhook hosts with r (the system resolver
// when nil) and sending email through smtp (nil: email deliveries fail, saying so).
func NewReportSender(r Resolver, smtp *SMTPConfig) *ReportSender {
	if r == nil {
		r = net.DefaultResolver
	}
	return &ReportSender{resolver: r, smtp: smtp, Now: time.Now}
}

// AllowLoopbackForTest returns a copy of s whose webhooks may reach loopback addresses
// (http allowed to them), as alert channels' may: the one way a test's local receiver is
// reached. Servers never call it.
func (s *ReportSender) AllowLoopbackForTest() *ReportSender {
	c := *s
	c.loopback = true
	return &c
}

// Webhook posts body (JSON) to target signed with secret (X-Auditdb-Signature), with
// event and delivery in the X-Auditdb-Event and X-Auditdb-Delivery headers. It returns an
// error saying why when the address is refused, cannot be reached or answers other than
// 2xx.
func (s *ReportSender) Webhook(ctx context.Context, target, secret, event, delivery string, body []byte) error {
	if secret == "" {
		return errors.New("models: webhook: the schedule has no signing secret; save the schedule again for one")
	}
	ctx, cancel := context.WithTimeout(ctx, ReportSendTimeout)
	defer cancel()
	_, err := sendWebhook(ctx, s.resolver, target, secret, event, delivery, body, s.Now(), s.loopback)
	return err
}

// MailAttachment is a file attached to an email; Open is called while the message is
// written.
type MailAttachment struct {
	Name        string
	ContentType string
	Open        func() (io.ReadCloser, error)
}

// ReportMail is one email of a report: its subject, plain text and attachments.
type ReportMail struct {
	To          []string
	Subject     string
	Text        string
	Attachments []MailAttachment
}

// ErrSMTPDisabled is the failure of an email delivery on a server without SMTP.
var ErrSMTPDisabled = errors.New("models: email: no SMTP server is configured (AUDITDB_SMTP_URL and AUDITDB_SMTP_FROM)")

// Email sends m as one multipart message to its recipients over the SMTP server, the
// attachments streamed in base64. It returns ErrSMTPDisabled without a server, and an
// error naming the refusal otherwise.
func (s *ReportSender) Email(ctx context.Context, m ReportMail) error {
	if s.smtp == nil {
		return ErrSMTPDisabled
	}
	if len(m.To) == 0 {
		return errors.New("models: email: no recipient")
	}
	for _, to := range m.To {
		if !ValidEmail(to) {
			return fmt.Errorf("models: email: %q is not an email address", to)
		}
	}
	now := s.Now()
	// sendMail's deadline for the whole conversation comes from ctx: room for the files.
	ctx, cancel := context.WithTimeout(ctx, ReportSendTimeout)
	defer cancel()
	return sendMail(ctx, s.smtp, m.To, func(w io.Writer) error { return writeReportMail(w, s.smtp.From, m, now) })
}

// writeReportMail writes m as a MIME message: a quoted-printable text part, then each
// attachment in base64 lines of 76 characters. (The SMTP data writer dot-stuffs lines.)
func writeReportMail(w io.Writer, from string, m ReportMail, now time.Time) error {
	mw := multipart.NewWriter(w)
	var h strings.Builder
	fmt.Fprintf(&h, "From: %s\r\nTo: %s\r\n", from, strings.Join(m.To, ", "))
	fmt.Fprintf(&h, "Subject: %s\r\n", mime.QEncoding.Encode("utf-8", headerSafe(m.Subject)))
	fmt.Fprintf(&h, "Date: %s\r\n", now.UTC().Format(time.RFC1123Z))
	fmt.Fprintf(&h, "Message-ID: <report-%d.%s@auditdb>\r\n", now.UnixNano(), RandomToken(6))
	fmt.Fprintf(&h, "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=%s\r\n\r\n", mw.Boundary())
	if _, err := io.WriteString(w, h.String()); err != nil {
		return err
	}
	part, err := mw.CreatePart(textproto.MIMEHeader{"Content-Type": {"text/plain; charset=utf-8"},
		"Content-Transfer-Encoding": {"quoted-printable"}})
	if err != nil {
		return err
	}
	qp := quotedprintable.NewWriter(part)
	if _, err := io.WriteString(qp, m.Text); err != nil {
		return err
	}
	if err := qp.Close(); err != nil {
		return err
	}
	for _, a := range m.Attachments {
		part, err := mw.CreatePart(textproto.MIMEHeader{
			"Content-Type":              {mime.FormatMediaType(a.ContentType, map[string]string{"name": a.Name})},
			"Content-Disposition":       {mime.FormatMediaType("attachment", map[string]string{"filename": a.Name})},
			"Content-Transfer-Encoding": {"base64"}})
		if err != nil {
			return err
		}
		rc, err := a.Open()
		if err != nil {
			return fmt.Errorf("open attachment %s: %w", a.Name, err)
		}
		lw := &lineWrapper{w: part}
		enc := base64.NewEncoder(base64.StdEncoding, lw)
		_, err = io.Copy(enc, rc)
		rc.Close()
		if err == nil {
			err = enc.Close()
		}
		if err == nil {
			_, err = io.WriteString(part, "\r\n")
		}
		if err != nil {
			return fmt.Errorf("attach %s: %w", a.Name, err)
		}
	}
	return mw.Close()
}

var crlf = []byte("\r\n")

// lineWrapper breaks what it is given into lines of 76 bytes (base64 in MIME).
type lineWrapper struct {
	w   io.Writer
	col int
}

func (l *lineWrapper) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		if l.col == 76 {
			if _, err := l.w.Write(crlf); err != nil {
				return n, err
			}
			l.col = 0
		}
		k := min(76-l.col, len(p))
		if _, err := l.w.Write(p[:k]); err != nil {
			return n, err
		}
		l.col += k
		n += k
		p = p[k:]
	}
	return n, nil
}
