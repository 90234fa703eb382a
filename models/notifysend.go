package models

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/smtp"
	"strconv"
	"strings"
	"time"
)

// WebhookSignature is the X-Auditdb-Signature value of body sent at t with secret:
// "t=<unix>,v1=<hex HMAC-SHA256(secret, "<unix>." + body)>". A receiver recomputes it
// and compares in constant time (and rejects old timestamps).
func WebhookSignature(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts + "."))
	mac.Write(body)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac.Sum(nil))
}

// webhookClient posts through the guarded dialer, without proxies and without following
// redirects (a redirect could lead anywhere).
func webhookClient(r Resolver) *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			Proxy:                 nil,
			DialContext:           guardedDialer{resolver: r, timeout: SendTimeout}.DialContext,
			TLSHandshakeTimeout:   SendTimeout,
			ResponseHeaderTimeout: SendTimeout,
			MaxIdleConns:          1,
			DisableKeepAlives:     true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// sendWebhook posts body to target, signed; any 2xx answer is a delivery. The URL is
// checked again (the address may have changed since the channel was saved) and every
// connection goes only to a checked address: loopback too when loopback is set (alert
// channels), public addresses only otherwise (report deliveries). Redirects are not
// followed: a 3xx answer is a failed delivery.
func sendWebhook(ctx context.Context, r Resolver, target, secret, event, delivery string, body []byte, now time.Time, loopback bool) (int, error) {
	u, rule, err := checkWebhookURL(ctx, r, target, loopback)
	if err != nil {
		return 0, fmt.Errorf("models: webhook refused: %s", MessageOf(err))
	}
	ctx = context.WithValue(ctx, addrRuleKey{}, rule)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("models: webhook request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "auditdb-webhook/1")
	req.Header.Set("X-Auditdb-Event", event)
	req.Header.Set("X-Auditdb-Delivery", delivery)
	req.Header.Set("X-Auditdb-Signature", WebhookSignature(secret, now, body))
	client := webhookClient(r)
	defer client.CloseIdleConnections()
	resp, err := client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("models: webhook: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode >= 300 && resp.StatusCode <= 399 {
		return resp.StatusCode, fmt.Errorf("models: webhook answered %s; redirects are not followed", resp.Status)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, fmt.Errorf("models: webhook answered %s", resp.Status)
	}
	return resp.StatusCode, nil
}

// headerSafe removes line breaks from a header value.
func headerSafe(s string) string {
	return strings.NewReplacer("\r", " ", "\n", " ").Replace(s)
}

// emailMessage writes the notification p as a plain-text message.
func emailMessage(from, to string, id int64, p DeliveryPayload, now time.Time) []byte {
	subject := fmt.Sprintf("[auditdb] %s %s alert: %s", p.Severity, p.Type, p.Title)
	if p.Alert == "test" {
		subject = "[auditdb] " + p.Title
	}
	var b strings.Builder
	fmt.Fprintf(&b, "From: %s\r\nTo: %s\r\n", from, to)
	fmt.Fprintf(&b, "Subject: %s\r\n", mime.QEncoding.Encode("utf-8", headerSafe(subject)))
	fmt.Fprintf(&b, "Date: %s\r\n", now.UTC().Format(time.RFC1123Z))
	fmt.Fprintf(&b, "Message-ID: <delivery-%d.%d@auditdb>\r\n", id, now.UnixNano())
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n")
	fmt.Fprintf(&b, "X-Auditdb-Delivery: %d\r\n\r\n", id)
	body := fmt.Sprintf("%s\n\nSeverity: %s\nType: %s\nOrganization: %s\nRaised: %s\n\n%s\n\n%s\n",
		p.Title, p.Severity, p.Type, p.Organization, p.CreatedAt.UTC().Format("2006-01-02 15:04:05 UTC"), p.Description, p.URL)
	// No dot-stuffing here: the SMTP data writer does it.
	for _, line := range strings.Split(body, "\n") {
		b.WriteString(line + "\r\n")
	}
	return []byte(b.String())
}

// sendEmail sends p to one recipient over c's SMTP server.
func sendEmail(ctx context.Context, c *SMTPConfig, to string, id int64, p DeliveryPayload, now time.Time) error {
	if !ValidEmail(to) {
		return fmt.Errorf("models: email: %q is not an email address", to)
	}
	msg := emailMessage(c.From, to, id, p, now)
	return sendMail(ctx, c, []string{to}, func(w io.Writer) error {
		_, err := w.Write(msg)
		return err
	})
}

// sendMail sends one message, written by write, to every address of to over c's SMTP
// server: TLS from the start for smtps, otherwise STARTTLS when the server offers it;
// authenticated when c has a user.
func sendMail(ctx context.Context, c *SMTPConfig, to []string, write func(io.Writer) error) error {
	addr := net.JoinHostPort(c.Host, c.Port)
	d := net.Dialer{Timeout: SendTimeout}
	var conn net.Conn
	var err error
	if c.ImplicitTLS {
		conn, err = (&tls.Dialer{NetDialer: &d, Config: &tls.Config{ServerName: c.Host, MinVersion: tls.VersionTLS12}}).DialContext(ctx, "tcp", addr)
	} else {
		conn, err = d.DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return fmt.Errorf("models: smtp: %w", err)
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(SendTimeout)
	}
	_ = conn.SetDeadline(deadline)
	client, err := smtp.NewClient(conn, c.Host)
	if err != nil {
		conn.Close()
		return fmt.Errorf("models: smtp: %w", err)
	}
	defer client.Close()
	if !c.ImplicitTLS {
		if ok, _ := client.Extension("STARTTLS"); ok {
			if err := client.StartTLS(&tls.Config{ServerName: c.Host, MinVersion: tls.VersionTLS12}); err != nil {
				return fmt.Errorf("models: smtp starttls: %w", err)
			}
		}
	}
	if c.Username != "" {
		if ok, _ := client.Extension("AUTH"); !ok {
			return errors.New("models: smtp: the server offers no authentication")
		}
		if err := client.Auth(smtp.PlainAuth("", c.Username, c.Password, c.Host)); err != nil {
			return fmt.Errorf("models: smtp auth: %w", err)
		}
	}
	if err := client.Mail(c.From); err != nil {
		return fmt.Errorf("models: smtp: %w", err)
	}
	for _, rcpt := range to {
		if err := client.Rcpt(rcpt); err != nil {
			return fmt.Errorf("models: smtp: %w", err)
		}
	}
	w, err := client.Data()
	if err != nil {
		return fmt.Errorf("models: smtp: %w", err)
	}
	if err := write(w); err != nil {
		return fmt.Errorf("models: smtp: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("models: smtp: %w", err)
	}
	return client.Quit()
}
