package models

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"gorm.io/gorm"
)

// ChannelDelivery is one entry of a channel's delivery log.
type ChannelDelivery struct {
	AlertDelivery
	ID             int64
	ChannelID      string
	AlertID        string // "" for a test delivery
	Title          string
	ResponseStatus int // the webhook's HTTP status, 0 when none
	NextAttemptAt  time.Time
	CreatedAt      time.Time
}

// Delivery timing: each attempt has SendTimeout; a claimed delivery is leased for
// claimLease (longer than an attempt) so a crashed sender's deliveries are retried; failed
// attempts are retried after RetryBackoff until RetryFor has passed since the alert.
const (
	SendTimeout = 10 * time.Second
	RetryFor    = 24 * time.Hour
	claimLease  = 2 * time.Minute
	maxBackoff  = time.Hour
)

// RetryBackoff is the wait after the attempts-th failed attempt: 30 s, 1 min, 2 min, 4 min
// … doubling up to an hour.
func RetryBackoff(attempts int) time.Duration {
	d := 30 * time.Second
	for i := 1; i < attempts && d < maxBackoff; i++ {
		d *= 2
	}
	return min(d, maxBackoff)
}

// DeliveryPayload is the JSON body of a webhook (and the content of an email).
type DeliveryPayload struct {
	Alert        string    `json:"alert"`
	Organization string    `json:"organization"`
	Severity     string    `json:"severity"`
	Type         string    `json:"type"`
	Title        string    `json:"title"`
	Description  string    `json:"description"`
	CreatedAt    time.Time `json:"createdAt"`
	URL          string    `json:"url"`
}

// DeliveryStore enqueues alert notifications, sends them, and reads their log. Its state
// is all in PostgreSQL: a restart loses nothing, and several instances can send at once
// without sending anything twice (claims take rows with FOR UPDATE SKIP LOCKED and lease
// them).
type DeliveryStore struct {
	db       *gorm.DB
	trail    *AuditTrail
	log      *slog.Logger
	baseURL  string
	smtp     *SMTPConfig
	resolver Resolver
	// Now is the clock (tests move it forward).
	Now func() time.Time
	// Concurrency bounds the deliveries sent at once by one SendDue.
	Concurrency int
	// Timeout bounds one attempt (SendTimeout unless a test shortens it).
	Timeout time.Duration
	// ErrorSink, when set, is told of every delivery that failed for good (the error log).
	ErrorSink func(ctx context.Context, rec ErrorRecord)
}

// NewDeliveryStore returns a store over db. baseURL is the console's public address (the
// alert links in notifications); smtp nil disables email; resolver nil uses the system's
// DNS. log receives failed deliveries.
func NewDeliveryStore(db *gorm.DB, trail *AuditTrail, log *slog.Logger, baseURL string, smtp *SMTPConfig, resolver Resolver) *DeliveryStore {
	if resolver == nil {
		resolver = net.DefaultResolver
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &DeliveryStore{db: db, trail: trail, log: log, baseURL: strings.TrimRight(baseURL, "/"), smtp: smtp,
		resolver: resolver, Now: time.Now, Concurrency: 4, Timeout: SendTimeout}
}

type newAlertRow struct {
	ID             string
	OrganizationID string
	Severity       string
	Type           string
	Title          string
	Description    *string
	CreatedAt      time.Time
}

// EnqueueNew takes up to limit alerts not yet handled (raised by any source), enqueues a
// delivery to every enabled channel of their organization at or above the channel's
// minimum severity, and marks them handled, in one transaction. Alerts another instance
// is handling are skipped. It returns how many alerts it handled.
func (s *DeliveryStore) EnqueueNew(ctx context.Context, limit int) (int, error) {
	var n int
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var alerts []newAlertRow
		err := tx.Raw(`SELECT id, organization_id, severity, type, title, description, created_at FROM alerts
			WHERE notified_at IS NULL ORDER BY created_at LIMIT ? FOR UPDATE SKIP LOCKED`, limit).Scan(&alerts).Error
		if err != nil {
			return fmt.Errorf("models: take new alerts: %w", err)
		}
		if len(alerts) == 0 {
			return nil
		}
		now := s.Now().UTC()
		ids := make([]string, len(alerts))
		for i, a := range alerts {
			ids[i] = a.ID
			p := DeliveryPayload{Alert: a.ID, Organization: a.OrganizationID, Severity: a.Severity, Type: a.Type,
				Title: a.Title, CreatedAt: a.CreatedAt.UTC(), URL: s.baseURL + "/alerts/" + a.ID}
			if a.Description != nil {
				p.Description = *a.Description
			}
			body, err := json.Marshal(p)
			if err != nil {
				return fmt.Errorf("models: delivery payload: %w", err)
			}
			err = tx.Exec(`INSERT INTO alert_deliveries (organization_id, alert_id, channel_id, payload, next_attempt_at, created_at)
				SELECT organization_id, ?, id, ?, ?, ? FROM notification_channels
				WHERE organization_id = ? AND enabled
				  AND array_position(ARRAY['LOW','MEDIUM','HIGH','CRITICAL']::varchar[], min_severity)
				      <= array_position(ARRAY['LOW','MEDIUM','HIGH','CRITICAL']::varchar[], ?::varchar)`,
				a.ID, string(body), now, now, a.OrganizationID, a.Severity).Error
			if err != nil {
				return fmt.Errorf("models: enqueue deliveries: %w", err)
			}
		}
		if err := tx.Exec(`UPDATE alerts SET notified_at = ? WHERE id IN ?`, now, ids).Error; err != nil {
			return fmt.Errorf("models: mark alerts notified: %w", err)
		}
		n = len(alerts)
		return nil
	})
	return n, err
}

// EnqueueTest queues a test delivery to org's channel id (self-audited); the sender sends
// it like any other, once (a test is not retried). Another organization's channel is
// KindNotFound.
func (s *DeliveryStore) EnqueueTest(ctx context.Context, org, channelID string, by Actor) error {
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var c NotificationChannel
		err := tx.Where("organization_id = ? AND id = ?", org, channelID).Take(&c).Error
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return NotFound("notification channel")
		}
		if err != nil {
			return fmt.Errorf("models: notification channel: %w", err)
		}
		now := s.Now().UTC()
		body, err := json.Marshal(DeliveryPayload{Alert: "test", Organization: org, Severity: c.MinSeverity, Type: "SYSTEM",
			Title: "Test notification from auditdb", Description: "Sent from Settings → Notifications to check channel " + c.Name + ".",
			CreatedAt: now, URL: s.baseURL + "/settings/notifications"})
		if err != nil {
			return fmt.Errorf("models: delivery payload: %w", err)
		}
		if err := tx.Exec(`INSERT INTO alert_deliveries (organization_id, alert_id, channel_id, payload, next_attempt_at, created_at)
			VALUES (?, NULL, ?, ?, ?, ?)`, org, c.ID, string(body), now, now).Error; err != nil {
			return fmt.Errorf("models: enqueue test delivery: %w", err)
		}
		return s.trail.RecordTx(ctx, tx, NotificationTestSent(by, org, c.ID, c.Name))
	})
}

// claimed is a delivery taken by SendDue, with its channel.
type claimed struct {
	ID             int64
	OrganizationID string
	AlertID        *string
	Payload        string
	Attempts       int
	CreatedAt      time.Time
	ChannelName    string
	Kind           string
	Target         string
	Secret         *string
}

// SendDue claims up to limit due deliveries, sends them (at most Concurrency at once, each
// within Timeout) and records each outcome: delivered; retried after RetryBackoff;
// failed once RetryFor has passed since it was enqueued (at once for a test), written to
// the log. A slow or failing channel never holds up the others for longer than one
// attempt's timeout. It returns how many it
// attempted.
func (s *DeliveryStore) SendDue(ctx context.Context, limit int) (int, error) {
	now := s.Now().UTC()
	var rows []claimed
	err := s.db.WithContext(ctx).Raw(`WITH due AS (
			SELECT id FROM alert_deliveries WHERE status = 'pending' AND next_attempt_at <= ?
			ORDER BY next_attempt_at, id LIMIT ? FOR UPDATE SKIP LOCKED)
		UPDATE alert_deliveries d SET attempts = d.attempts + 1, last_attempt_at = ?, next_attempt_at = ?
		FROM due, notification_channels c
		WHERE d.id = due.id AND c.id = d.channel_id
		RETURNING d.id, d.organization_id, d.alert_id, d.payload::text AS payload, d.attempts, d.created_at,
			c.name AS channel_name, c.kind, c.target, c.secret`, now, limit, now, now.Add(claimLease)).Scan(&rows).Error
	if err != nil {
		return 0, fmt.Errorf("models: claim deliveries: %w", err)
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, max(s.Concurrency, 1))
	for _, d := range rows {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			s.attempt(ctx, d)
		}()
	}
	wg.Wait()
	return len(rows), nil
}

// attempt sends one claimed delivery and records what happened.
func (s *DeliveryStore) attempt(ctx context.Context, d claimed) {
	sctx, cancel := context.WithTimeout(ctx, s.Timeout)
	status, err := s.send(sctx, d)
	cancel()
	now := s.Now().UTC()
	var q string
	var args []any
	switch {
	case err == nil:
		q, args = `UPDATE alert_deliveries SET status = 'delivered', delivered_at = ?, last_error = NULL,
			response_status = NULLIF(?, 0) WHERE id = ? AND attempts = ?`, []any{now, status, d.ID, d.Attempts}
	case d.AlertID == nil || now.Add(RetryBackoff(d.Attempts)).Sub(d.CreatedAt) >= RetryFor:
		q, args = `UPDATE alert_deliveries SET status = 'failed', last_error = ?, response_status = NULLIF(?, 0)
			WHERE id = ? AND attempts = ?`, []any{DeliveryErrorClass(err, status), status, d.ID, d.Attempts}
		alert := "test"
		if d.AlertID != nil {
			alert = *d.AlertID
		}
		s.log.Error("alert delivery failed", "org", d.OrganizationID, "alert", alert, "channel", d.ChannelName,
			"kind", d.Kind, "delivery", d.ID, "attempts", d.Attempts, "err", err)
		if s.ErrorSink != nil {
			s.ErrorSink(ctx, ErrorRecord{Kind: ErrorKindDelivery, Component: "notifications", Operation: d.Kind,
				Org: d.OrganizationID, Message: DeliveryErrorClass(err, status),
				Context: map[string]any{"alert_id": alert, "channel": d.ChannelName, "delivery_id": d.ID, "attempts": d.Attempts}})
		}
	default:
		q, args = `UPDATE alert_deliveries SET last_error = ?, response_status = NULLIF(?, 0), next_attempt_at = ?
			WHERE id = ? AND attempts = ?`, []any{DeliveryErrorClass(err, status), status, now.Add(RetryBackoff(d.Attempts)), d.ID, d.Attempts}
		s.log.Warn("alert delivery will be retried", "org", d.OrganizationID, "channel", d.ChannelName,
			"delivery", d.ID, "attempts", d.Attempts, "err", err)
	}
	if xerr := s.db.WithContext(context.WithoutCancel(ctx)).Exec(q, args...).Error; xerr != nil {
		s.log.Error("alert delivery outcome not recorded", "delivery", d.ID, "err", xerr)
	}
}

// send delivers d once; status is the webhook's HTTP status (0 for email or no answer).
func (s *DeliveryStore) send(ctx context.Context, d claimed) (int, error) {
	switch d.Kind {
	case ChannelWebhook:
		secret := ""
		if d.Secret != nil {
			secret = *d.Secret
		}
		event := "alert.raised"
		if d.AlertID == nil {
			event = "test"
		}
		return sendWebhook(ctx, s.resolver, d.Target, secret, event, strconv.FormatInt(d.ID, 10), []byte(d.Payload), s.Now(), true)
	case ChannelEmail:
		if s.smtp == nil {
			return 0, errors.New("email channels are disabled: no SMTP server is configured")
		}
		var p DeliveryPayload
		if err := json.Unmarshal([]byte(d.Payload), &p); err != nil {
			return 0, fmt.Errorf("models: delivery payload: %w", err)
		}
		return 0, sendEmail(ctx, s.smtp, d.Target, d.ID, p, s.Now())
	}
	return 0, fmt.Errorf("models: unknown channel kind %q", d.Kind)
}

const deliveryColumns = `c.name AS channel, c.kind, d.status, d.attempts, d.last_attempt_at, d.delivered_at,
	COALESCE(d.last_error, '') AS last_error`

// ForAlert returns the deliveries of org's alert alertID, oldest first (none for another
// organization's alert).
func (s *DeliveryStore) ForAlert(ctx context.Context, org, alertID string) ([]AlertDelivery, error) {
	var out []AlertDelivery
	err := s.db.WithContext(ctx).Raw(`SELECT `+deliveryColumns+` FROM alert_deliveries d
		JOIN notification_channels c ON c.id = d.channel_id
		WHERE d.organization_id = ? AND d.alert_id = ? ORDER BY d.created_at, d.id`, org, alertID).Scan(&out).Error
	if err != nil {
		return nil, fmt.Errorf("models: deliveries of alert: %w", err)
	}
	return out, nil
}

// RecentByChannel returns the last perChannel deliveries of each of org's channels,
// newest first, keyed by channel id.
func (s *DeliveryStore) RecentByChannel(ctx context.Context, org string, perChannel int) (map[string][]ChannelDelivery, error) {
	var rows []struct {
		ID             int64
		ChannelID      string
		AlertID        *string
		Title          string
		ResponseStatus *int
		NextAttemptAt  time.Time
		CreatedAt      time.Time
		Channel        string
		Kind           string
		Status         string
		Attempts       int
		LastAttemptAt  *time.Time
		DeliveredAt    *time.Time
		LastError      string
	}
	err := s.db.WithContext(ctx).Raw(`SELECT * FROM (
			SELECT d.id, d.channel_id, d.alert_id, d.payload->>'title' AS title, d.response_status, d.next_attempt_at,
				d.created_at, `+deliveryColumns+`,
				row_number() OVER (PARTITION BY d.channel_id ORDER BY d.created_at DESC, d.id DESC) AS n
			FROM alert_deliveries d JOIN notification_channels c ON c.id = d.channel_id
			WHERE d.organization_id = ?) r
		WHERE n <= ? ORDER BY created_at DESC, id DESC`, org, perChannel).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("models: delivery log: %w", err)
	}
	out := map[string][]ChannelDelivery{}
	for _, r := range rows {
		cd := ChannelDelivery{ID: r.ID, ChannelID: r.ChannelID, Title: r.Title, NextAttemptAt: r.NextAttemptAt,
			CreatedAt: r.CreatedAt, AlertDelivery: AlertDelivery{Channel: r.Channel, Kind: r.Kind, Status: r.Status,
				Attempts: r.Attempts, LastAttemptAt: r.LastAttemptAt, DeliveredAt: r.DeliveredAt, LastError: r.LastError}}
		if r.ResponseStatus != nil {
			cd.ResponseStatus = *r.ResponseStatus
		}
		if r.AlertID != nil {
			cd.AlertID = *r.AlertID
		}
		out[cd.ChannelID] = append(out[cd.ChannelID], cd)
	}
	return out, nil
}

// DeliveryErrorClass is what a tenant is shown of a failed delivery: the class of the
// failure (refused, timed out, TLS, an HTTP status, an SMTP refusal…), never the raw
// dial error, which would tell a tenant's admin which ports of the server's own network
// answer and which resolver it uses. The full error goes to the server's log.
func DeliveryErrorClass(err error, status int) string {
	if err == nil {
		return ""
	}
	msg := err.Error()
	var ne net.Error
	switch {
	case status >= 300:
		return fmt.Sprintf("the receiver answered HTTP %d", status)
	case errors.Is(err, errForbiddenAddress), strings.Contains(msg, errForbiddenAddress.Error()), strings.Contains(msg, "loopback"):
		return "refused: " + errForbiddenAddress.Error()
	case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()):
		return "no answer in time"
	case strings.Contains(msg, "connection refused"), strings.Contains(msg, "no route to host"),
		strings.Contains(msg, "network is unreachable"), strings.Contains(msg, "EOF"),
		strings.Contains(msg, "connection reset"):
		return "the receiver could not be reached"
	case strings.Contains(msg, "tls:"), strings.Contains(msg, "x509:"), strings.Contains(msg, "certificate"):
		return "the TLS handshake failed (certificate or protocol)"
	case strings.Contains(msg, "cannot be resolved"), strings.Contains(msg, "no address"):
		return "the receiver's host name cannot be resolved"
	case strings.Contains(msg, "smtp") || strings.Contains(msg, "SMTP"):
		if code := smtpCode(msg); code != "" {
			return "the mail server refused the message (" + code + ")"
		}
		return "the mail server could not be reached or refused the message"
	case strings.Contains(msg, "email channels are disabled"):
		return "email is not configured on this server"
	}
	return "the delivery failed"
}

// smtpCode returns the first three-digit SMTP reply code in msg, or "".
func smtpCode(msg string) string {
	for i := 0; i+3 <= len(msg); i++ {
		if msg[i] >= '2' && msg[i] <= '5' && msg[i+1] >= '0' && msg[i+1] <= '9' && msg[i+2] >= '0' && msg[i+2] <= '9' &&
			(i == 0 || msg[i-1] == ' ') && (i+3 == len(msg) || msg[i+3] == ' ') {
			return msg[i : i+3]
		}
	}
	return ""
}
