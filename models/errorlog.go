package models

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Kinds of server error the error log records.
const (
	ErrorKindHTTP       = "http"        // a 5xx answer
	ErrorKindPanic      = "panic"       // a recovered panic (answered 500)
	ErrorKindJob        = "job"         // a scheduled job that returned an error
	ErrorKindDeadLetter = "dead_letter" // events the database refused, kept as a dead letter
	ErrorKindDelivery   = "delivery"    // a notification that could not be delivered
)

// Bounds of what the error log keeps.
const (
	// ErrorSamples is how many sample messages a fingerprint keeps, newest first.
	ErrorSamples = 5
	// ErrorTrendDays is how many days the trend covers, today included.
	ErrorTrendDays = 7
	// DefaultErrorRetention is how long error_log rows are kept.
	DefaultErrorRetention = 30 * 24 * time.Hour
	maxErrorMessage       = 2000
)

// ErrorRecord is one server error. Kind, Component and Message are required; Operation
// is the route pattern ("GET /events/:id") or the job name; Org is the organization the
// error happened for ("" when none). Never put secrets, request bodies or personal data
// beyond ids in it.
type ErrorRecord struct {
	Kind      string // one of the ErrorKind constants
	Component string // "web", "jobs", "ingest", "notifications", …
	Operation string // route pattern, job name, channel
	Org       string
	Message   string
	Severity  string // "error" unless said otherwise
	Status    int    // the HTTP status answered, 0 when none
	Method    string
	RequestID string
	UserID    string
	Retryable bool
	// Context holds further ids (alert id, channel id, attempt); it is stored as JSON.
	Context map[string]any
	// At is when it happened; zero means now.
	At time.Time
}

var (
	uuidPattern   = regexp.MustCompile(`(?i)\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b`)
	quotedPattern = regexp.MustCompile("\"[^\"]*\"|'[^']*'|`[^`]*`")
	hexPattern    = regexp.MustCompile(`(?i)\b0x[0-9a-f]+\b|\b[0-9a-f]*[0-9][0-9a-f]*[a-f][0-9a-f]*\b|\b[0-9a-f]*[a-f][0-9a-f]*[0-9][0-9a-f]*\b`)
	numberPattern = regexp.MustCompile(`\d+(\.\d+)?`)
	spacePattern  = regexp.MustCompile(`\s+`)
)

// NormalizeErrorMessage strips what varies between occurrences of the same error: UUIDs,
// quoted values, hexadecimal ids and numbers become placeholders, so "user 123 failed" and
// "user 456 failed" read the same.
func NormalizeErrorMessage(msg string) string {
	msg = uuidPattern.ReplaceAllString(msg, "<uuid>")
	msg = quotedPattern.ReplaceAllString(msg, "<value>")
	msg = hexPattern.ReplaceAllStringFunc(msg, func(s string) string {
		if len(s) < 6 && !strings.HasPrefix(strings.ToLower(s), "0x") {
			return numberPattern.ReplaceAllString(s, "<n>") // short words like "a1b" stay readable
		}
		return "<hex>"
	})
	msg = numberPattern.ReplaceAllString(msg, "<n>")
	return strings.TrimSpace(spacePattern.ReplaceAllString(msg, " "))
}

// ErrorFingerprint is what folds occurrences together: kind, operation and the normalized
// message.
func ErrorFingerprint(kind, operation, message string) string {
	h := sha256.Sum256([]byte(kind + "\x00" + operation + "\x00" + NormalizeErrorMessage(message)))
	return hex.EncodeToString(h[:16])
}

// errorAggregationKey is the fingerprint within one organization (the aggregation's key).
func errorAggregationKey(org, fingerprint string) string {
	h := sha256.Sum256([]byte(org + "\x00" + fingerprint))
	return hex.EncodeToString(h[:16])
}

// truncate cuts s to fit a column of n characters, marking the cut with "…" (which takes
// the last of the n).
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return Truncate(s, n-1) + "…"
}

// normalize fills defaults and bounds the lengths of r.
func (r ErrorRecord) normalize(now time.Time) ErrorRecord {
	if r.At.IsZero() {
		r.At = now
	}
	r.At = r.At.UTC()
	if r.Severity == "" {
		r.Severity = "error"
	}
	if r.Kind == "" {
		r.Kind = "error"
	}
	if r.Component == "" {
		r.Component = "server"
	}
	r.Kind, r.Severity = truncate(r.Kind, 50), truncate(r.Severity, 20)
	r.Component, r.Operation = truncate(r.Component, 100), truncate(r.Operation, 100)
	r.Org, r.RequestID, r.UserID = truncate(r.Org, 50), truncate(r.RequestID, 200), truncate(r.UserID, 200)
	r.Message = truncate(r.Message, maxErrorMessage)
	return r
}

// errorLogRow is one row of error_log.
type errorLogRow struct {
	ID             string    `gorm:"column:id"`
	Category       string    `gorm:"column:category"`
	Severity       string    `gorm:"column:severity"`
	Code           string    `gorm:"column:code"`
	Message        string    `gorm:"column:message"`
	Component      string    `gorm:"column:component"`
	Operation      string    `gorm:"column:operation"`
	UserID         *string   `gorm:"column:user_id"`
	RequestID      *string   `gorm:"column:request_id"`
	Retryable      bool      `gorm:"column:retryable"`
	AggregationKey string    `gorm:"column:aggregation_key"`
	Context        []byte    `gorm:"column:context;type:jsonb"`
	OrganizationID *string   `gorm:"column:organization_id"`
	Timestamp      time.Time `gorm:"column:timestamp"`
}

func (errorLogRow) TableName() string { return "error_log" }

// errorAggRow is one row of error_aggregation as written.
type errorAggRow struct {
	AggregationKey     string    `gorm:"column:aggregation_key;primaryKey"`
	OrganizationID     *string   `gorm:"column:organization_id"`
	Fingerprint        string    `gorm:"column:fingerprint"`
	Category           string    `gorm:"column:category"`
	Severity           string    `gorm:"column:severity"`
	Component          string    `gorm:"column:component"`
	Operation          string    `gorm:"column:operation"`
	Title              string    `gorm:"column:title"`
	Count              int       `gorm:"column:count"`
	FirstOccurrence    time.Time `gorm:"column:first_occurrence"`
	LastOccurrence     time.Time `gorm:"column:last_occurrence"`
	AffectedComponents []byte    `gorm:"column:affected_components;type:jsonb"`
	Samples            []byte    `gorm:"column:samples;type:jsonb"`
	UpdatedAt          time.Time `gorm:"column:updated_at"`
}

func (errorAggRow) TableName() string { return "error_aggregation" }

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func newErrorID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// ErrorScope is whose errors a reader sees: one organization's, or (superadmin) all.
type ErrorScope struct {
	Org string
	All bool
}

// where adds the scope's filter on the organization_id column of q.
func (s ErrorScope) where(q *gorm.DB, column string) *gorm.DB {
	if s.All {
		return q
	}
	return q.Where(column+" = ?", s.Org)
}

// ErrorGroup is one fingerprint's aggregation with its trend.
type ErrorGroup struct {
	Key       string
	Org       string
	Kind      string
	Severity  string
	Component string
	Operation string
	Title     string // the normalized message
	Count     int
	FirstSeen time.Time
	LastSeen  time.Time
	Samples   []string // newest first
	// Trend counts occurrences per UTC day, oldest first, the last entry today.
	Trend [ErrorTrendDays]int
	// TrendDays are the days of Trend (UTC midnights).
	TrendDays [ErrorTrendDays]time.Time
}

// ErrorOccurrence is one row of error_log.
type ErrorOccurrence struct {
	At        time.Time
	Org       string
	Message   string
	Code      string
	Operation string
	RequestID string
	UserID    string
	Context   map[string]any
}

// ErrorLogStore writes and reads the error log.
type ErrorLogStore struct {
	db    *gorm.DB
	parts *PartitionManager
}

// NewErrorLogStore returns the store over db; parts creates error_log's partitions.
func NewErrorLogStore(db *gorm.DB, parts *PartitionManager) *ErrorLogStore {
	return &ErrorLogStore{db: db, parts: parts}
}

// Insert writes recs to error_log and folds them into error_aggregation, in one
// transaction: a row per record, an upsert per fingerprint (count, last occurrence,
// samples capped at ErrorSamples).
func (s *ErrorLogStore) Insert(ctx context.Context, recs []ErrorRecord) error {
	if len(recs) == 0 {
		return nil
	}
	now := time.Now()
	times := make([]time.Time, 0, len(recs))
	rows := make([]errorLogRow, 0, len(recs))
	aggs := map[string]*errorAggRow{}
	samples := map[string][]string{}
	norm := make([]ErrorRecord, len(recs))
	for i, r := range recs {
		norm[i] = r.normalize(now)
	}
	sort.SliceStable(norm, func(i, j int) bool { return norm[i].At.Before(norm[j].At) }) // samples newest first
	for _, r := range norm {
		fp := ErrorFingerprint(r.Kind, r.Operation, r.Message)
		key := errorAggregationKey(r.Org, fp)
		ctxJSON, err := json.Marshal(recordContext(r))
		if err != nil {
			ctxJSON = []byte(`{}`)
		}
		code := r.Kind
		if r.Status > 0 {
			code = fmt.Sprint(r.Status)
		}
		rows = append(rows, errorLogRow{ID: newErrorID(), Category: r.Kind, Severity: r.Severity, Code: code,
			Message: r.Message, Component: r.Component, Operation: r.Operation, UserID: nullable(r.UserID),
			RequestID: nullable(r.RequestID), Retryable: r.Retryable, AggregationKey: key, Context: ctxJSON,
			OrganizationID: nullable(r.Org), Timestamp: r.At})
		times = append(times, r.At)
		a, ok := aggs[key]
		if !ok {
			a = &errorAggRow{AggregationKey: key, OrganizationID: nullable(r.Org), Fingerprint: fp, Category: r.Kind,
				Severity: r.Severity, Component: r.Component, Operation: r.Operation,
				Title: truncate(NormalizeErrorMessage(r.Message), 500), FirstOccurrence: r.At, LastOccurrence: r.At}
			aggs[key] = a
		}
		a.Count++
		if r.At.Before(a.FirstOccurrence) {
			a.FirstOccurrence = r.At
		}
		if r.At.After(a.LastOccurrence) {
			a.LastOccurrence = r.At
		}
		samples[key] = append([]string{truncate(r.Message, 500)}, samples[key]...)
	}
	if err := s.parts.EnsureFor(ctx, "error_log", times...); err != nil {
		return err
	}
	keys := make([]string, 0, len(aggs))
	for k := range aggs {
		keys = append(keys, k)
	}
	sort.Strings(keys) // one lock order for every instance
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.CreateInBatches(rows, 500).Error; err != nil {
			return fmt.Errorf("models: write error log: %w", err)
		}
		for _, k := range keys {
			a := aggs[k]
			ss := samples[k]
			if len(ss) > ErrorSamples {
				ss = ss[:ErrorSamples]
			}
			a.Samples, _ = json.Marshal(ss)
			a.AffectedComponents, _ = json.Marshal([]string{a.Component})
			a.UpdatedAt = now
			err := tx.Clauses(clause.OnConflict{
				Columns: []clause.Column{{Name: "aggregation_key"}},
				DoUpdates: clause.Assignments(map[string]any{
					"count":            gorm.Expr("error_aggregation.count + EXCLUDED.count"),
					"last_occurrence":  gorm.Expr("greatest(error_aggregation.last_occurrence, EXCLUDED.last_occurrence)"),
					"first_occurrence": gorm.Expr("least(error_aggregation.first_occurrence, EXCLUDED.first_occurrence)"),
					"updated_at":       gorm.Expr("EXCLUDED.updated_at"),
					"samples": gorm.Expr(`(SELECT coalesce(jsonb_agg(x.v ORDER BY x.n), '[]'::jsonb) FROM (
						SELECT v, n FROM jsonb_array_elements(EXCLUDED.samples || coalesce(error_aggregation.samples, '[]'::jsonb))
						WITH ORDINALITY AS e(v, n) ORDER BY n LIMIT ?) x)`, ErrorSamples),
				}),
			}).Create(a).Error
			if err != nil {
				return fmt.Errorf("models: fold error %s: %w", k, err)
			}
		}
		return nil
	})
}

// recordContext is what error_log.context keeps of r: the request's ids and r.Context.
func recordContext(r ErrorRecord) map[string]any {
	out := map[string]any{}
	for k, v := range r.Context {
		out[k] = v
	}
	if r.Method != "" {
		out["method"] = r.Method
	}
	if r.Status > 0 {
		out["status"] = r.Status
	}
	return out
}

// aggRead is one error_aggregation row as read.
type aggRead struct {
	AggregationKey  string
	OrganizationID  *string
	Category        string
	Severity        string
	Component       string
	Operation       string
	Title           string
	Count           int
	FirstOccurrence time.Time
	LastOccurrence  time.Time
	Samples         []byte
}

func (a aggRead) group(now time.Time) ErrorGroup {
	g := ErrorGroup{Key: a.AggregationKey, Kind: a.Category, Severity: a.Severity, Component: a.Component,
		Operation: a.Operation, Title: a.Title, Count: a.Count, FirstSeen: a.FirstOccurrence.UTC(), LastSeen: a.LastOccurrence.UTC()}
	if a.OrganizationID != nil {
		g.Org = *a.OrganizationID
	}
	_ = json.Unmarshal(a.Samples, &g.Samples)
	today := now.UTC().Truncate(24 * time.Hour)
	for i := range g.TrendDays {
		g.TrendDays[i] = today.AddDate(0, 0, i-(ErrorTrendDays-1))
	}
	return g
}

// ErrorGroupLimit bounds how many fingerprints List returns.
const ErrorGroupLimit = 200

// List returns the scope's fingerprints, most recently seen first, each with its
// 7-day trend.
func (s *ErrorLogStore) List(ctx context.Context, scope ErrorScope, now time.Time) ([]ErrorGroup, error) {
	var rows []aggRead
	q := s.db.WithContext(ctx).Table("error_aggregation").
		Select("aggregation_key, organization_id, category, severity, component, operation, title, count, first_occurrence, last_occurrence, samples")
	if err := scope.where(q, "organization_id").Order("last_occurrence DESC, aggregation_key").Limit(ErrorGroupLimit).Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("models: list errors: %w", err)
	}
	groups := make([]ErrorGroup, len(rows))
	index := map[string]int{}
	keys := make([]string, len(rows))
	for i, r := range rows {
		groups[i] = r.group(now)
		index[r.AggregationKey] = i
		keys[i] = r.AggregationKey
	}
	if err := s.trend(ctx, scope, keys, now, func(key string, day int, n int) {
		groups[index[key]].Trend[day] = n
	}); err != nil {
		return nil, err
	}
	return groups, nil
}

// trend counts error_log rows per key and UTC day over the last ErrorTrendDays days.
func (s *ErrorLogStore) trend(ctx context.Context, scope ErrorScope, keys []string, now time.Time, set func(key string, day, n int)) error {
	if len(keys) == 0 {
		return nil
	}
	today := now.UTC().Truncate(24 * time.Hour)
	from := today.AddDate(0, 0, -(ErrorTrendDays - 1))
	var counts []struct {
		AggregationKey string
		Day            time.Time
		N              int
	}
	q := s.db.WithContext(ctx).Table("error_log").
		Select(`aggregation_key, date_trunc('day', "timestamp" AT TIME ZONE 'UTC') AS day, count(*) AS n`).
		Where(`aggregation_key IN ? AND "timestamp" >= ? AND "timestamp" < ?`, keys, from, today.AddDate(0, 0, 1))
	if err := scope.where(q, "organization_id").Group("1, 2").Scan(&counts).Error; err != nil {
		return fmt.Errorf("models: error trend: %w", err)
	}
	for _, c := range counts {
		day := time.Date(c.Day.Year(), c.Day.Month(), c.Day.Day(), 0, 0, 0, 0, time.UTC)
		i := int(day.Sub(from) / (24 * time.Hour))
		if i >= 0 && i < ErrorTrendDays {
			set(c.AggregationKey, i, c.N)
		}
	}
	return nil
}

// ErrorOccurrenceLimit bounds how many occurrences Get returns.
const ErrorOccurrenceLimit = 50

// Get returns one fingerprint of the scope with its trend and its newest occurrences; a
// key outside the scope is not found.
func (s *ErrorLogStore) Get(ctx context.Context, scope ErrorScope, key string, now time.Time) (ErrorGroup, []ErrorOccurrence, error) {
	var rows []aggRead
	q := s.db.WithContext(ctx).Table("error_aggregation").
		Select("aggregation_key, organization_id, category, severity, component, operation, title, count, first_occurrence, last_occurrence, samples").
		Where("aggregation_key = ?", key)
	if err := scope.where(q, "organization_id").Limit(1).Scan(&rows).Error; err != nil {
		return ErrorGroup{}, nil, fmt.Errorf("models: get error: %w", err)
	}
	if len(rows) == 0 {
		return ErrorGroup{}, nil, NotFound("error")
	}
	g := rows[0].group(now)
	if err := s.trend(ctx, scope, []string{key}, now, func(_ string, day, n int) { g.Trend[day] = n }); err != nil {
		return ErrorGroup{}, nil, err
	}
	var occ []struct {
		Timestamp      time.Time
		OrganizationID *string
		Message        string
		Code           string
		Operation      *string
		RequestID      *string
		UserID         *string
		Context        []byte
	}
	q = s.db.WithContext(ctx).Table("error_log").
		Select(`"timestamp", organization_id, message, code, operation, request_id, user_id, context`).
		Where(`aggregation_key = ? AND "timestamp" >= ?`, key, g.FirstSeen.Add(-time.Second))
	if err := scope.where(q, "organization_id").Order(`"timestamp" DESC`).Limit(ErrorOccurrenceLimit).Scan(&occ).Error; err != nil {
		return ErrorGroup{}, nil, fmt.Errorf("models: error occurrences: %w", err)
	}
	out := make([]ErrorOccurrence, len(occ))
	deref := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	for i, o := range occ {
		out[i] = ErrorOccurrence{At: o.Timestamp.UTC(), Org: deref(o.OrganizationID), Message: o.Message, Code: o.Code,
			Operation: deref(o.Operation), RequestID: deref(o.RequestID), UserID: deref(o.UserID)}
		_ = json.Unmarshal(o.Context, &out[i].Context)
	}
	return g, out, nil
}

// Purge deletes what is older than now minus keep: error_log partitions wholly before
// the cutoff are dropped, older rows in the others deleted, and fingerprints last seen
// before it removed. It returns how many rows and fingerprints went (dropped partitions
// count by their estimate).
func (s *ErrorLogStore) Purge(ctx context.Context, now time.Time, keep time.Duration) (int64, error) {
	if keep <= 0 {
		return 0, Invalid("retention", "the error log retention must be positive")
	}
	cutoff := now.UTC().Add(-keep)
	parts, err := s.parts.List(ctx)
	if err != nil {
		return 0, err
	}
	var gone int64
	for _, p := range parts {
		if p.Table != "error_log" || p.To.After(cutoff) {
			continue
		}
		if !partitionName.MatchString(p.Name) {
			return gone, fmt.Errorf("models: refusing to drop %q", p.Name)
		}
		if err := s.db.WithContext(ctx).Exec("DROP TABLE IF EXISTS " + p.Name).Error; err != nil {
			return gone, fmt.Errorf("models: drop partition %s: %w", p.Name, err)
		}
		s.parts.known.Delete(p.Table + "/" + p.From.Format("2006-01"))
		gone += max(p.Rows, 0)
	}
	res := s.db.WithContext(ctx).Exec(`DELETE FROM error_log WHERE "timestamp" < ?`, cutoff)
	if res.Error != nil {
		return gone, fmt.Errorf("models: purge error log: %w", res.Error)
	}
	gone += res.RowsAffected
	res = s.db.WithContext(ctx).Exec(`DELETE FROM error_aggregation WHERE last_occurrence < ?`, cutoff)
	if res.Error != nil {
		return gone, fmt.Errorf("models: purge error aggregation: %w", res.Error)
	}
	return gone + res.RowsAffected, nil
}

// ErrorInserter is what the ErrorWriter writes through (an *ErrorLogStore).
type ErrorInserter interface {
	Insert(ctx context.Context, recs []ErrorRecord) error
}

// ErrorWriterConfig tunes the ErrorWriter; zero values take the defaults.
type ErrorWriterConfig struct {
	Queue    int           // records held before new ones are dropped (1024)
	Batch    int           // records per insert (100)
	MaxDelay time.Duration // how long a record waits for company (200 ms)
	Timeout  time.Duration // bound of one insert (5 s)
}

func (c ErrorWriterConfig) withDefaults() ErrorWriterConfig {
	if c.Queue <= 0 {
		c.Queue = 1024
	}
	if c.Batch <= 0 {
		c.Batch = 100
	}
	if c.MaxDelay <= 0 {
		c.MaxDelay = 200 * time.Millisecond
	}
	if c.Timeout <= 0 {
		c.Timeout = 5 * time.Second
	}
	return c
}

// ErrorWriter records server errors without ever failing or blocking the caller: Record
// puts the record on a bounded queue (dropping and counting it when the queue is full)
// and a background goroutine writes the queue in batches. A write that fails is logged
// and its batch dropped and counted.
type ErrorWriter struct {
	store ErrorInserter
	cfg   ErrorWriterConfig
	log   *slog.Logger
	now   func() time.Time

	queue chan ErrorRecord
	mu    sync.RWMutex
	state int // 0 new, 1 running, 2 closed
	done  chan struct{}

	recorded, dropped, failed, written atomic.Int64
}

// NewErrorWriter returns a writer over store; call Start, and Close at shutdown.
func NewErrorWriter(store ErrorInserter, cfg ErrorWriterConfig, log *slog.Logger) *ErrorWriter {
	cfg = cfg.withDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &ErrorWriter{store: store, cfg: cfg, log: log, now: time.Now,
		queue: make(chan ErrorRecord, cfg.Queue), done: make(chan struct{})}
}

// Record queues rec for the error log and returns at once. It never blocks and never
// fails: when the queue is full or the writer is closed the record is dropped and
// counted. A nil writer drops everything.
func (w *ErrorWriter) Record(_ context.Context, rec ErrorRecord) {
	if w == nil {
		return
	}
	if rec.At.IsZero() {
		rec.At = w.now()
	}
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.state == 2 {
		w.dropped.Add(1)
		return
	}
	select {
	case w.queue <- rec:
		w.recorded.Add(1)
	default:
		w.dropped.Add(1)
	}
}

// Start launches the background writer.
func (w *ErrorWriter) Start() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.state != 0 {
		return
	}
	w.state = 1
	go w.run()
}

// Close stops accepting records and waits until the queue is written, or ctx ends.
func (w *ErrorWriter) Close(ctx context.Context) error {
	w.mu.Lock()
	started := w.state == 1
	if w.state != 2 {
		w.state = 2
		close(w.queue)
	}
	w.mu.Unlock()
	if !started {
		return nil
	}
	select {
	case <-w.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("models: error log not drained: %w", ctx.Err())
	}
}

// ErrorWriterStats counts what the writer did since it was made.
type ErrorWriterStats struct {
	Recorded int64 // queued
	Written  int64 // written to the database
	Dropped  int64 // refused because the queue was full or the writer closed
	Failed   int64 // lost because their batch could not be written
}

// Stats returns the writer's counts.
func (w *ErrorWriter) Stats() ErrorWriterStats {
	return ErrorWriterStats{Recorded: w.recorded.Load(), Written: w.written.Load(),
		Dropped: w.dropped.Load(), Failed: w.failed.Load()}
}

// Flush waits until everything queued before it has been written or lost, or ctx ends
// (for tests and diagnostics).
func (w *ErrorWriter) Flush(ctx context.Context) error {
	target := w.recorded.Load()
	for w.written.Load()+w.failed.Load() < target {
		select {
		case <-ctx.Done():
			return fmt.Errorf("models: error log flush: %w", ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
	return nil
}

func (w *ErrorWriter) run() {
	defer close(w.done)
	batch := make([]ErrorRecord, 0, w.cfg.Batch)
	for {
		rec, ok := <-w.queue
		if !ok {
			return
		}
		batch = append(batch[:0], rec)
		timer := time.NewTimer(w.cfg.MaxDelay)
	gather:
		for len(batch) < w.cfg.Batch {
			select {
			case r, ok := <-w.queue:
				if !ok {
					break gather
				}
				batch = append(batch, r)
			case <-timer.C:
				break gather
			}
		}
		timer.Stop()
		w.write(batch)
	}
}

func (w *ErrorWriter) write(batch []ErrorRecord) {
	ctx, cancel := context.WithTimeout(context.Background(), w.cfg.Timeout)
	defer cancel()
	err := w.store.Insert(ctx, batch)
	if err == nil {
		w.written.Add(int64(len(batch)))
		return
	}
	w.failed.Add(int64(len(batch)))
	if !errors.Is(err, context.Canceled) {
		w.log.Warn("cannot write the error log; records lost", "records", len(batch), "err", err)
	}
}
