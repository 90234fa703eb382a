package cli

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"auditdb/models"
	"auditdb/models/erasure"
	"auditdb/models/ingest"
	"auditdb/models/merkle"
	"auditdb/models/querycache"
	"auditdb/web"
)

// config is read once from the environment; every field has a default that works on a
// development machine with PostgreSQL and Redis on localhost.
type config struct {
	DatabaseURL string // AUDITDB_DATABASE_URL
	RedisURL    string // AUDITDB_REDIS_URL
	// RedisPrefix starts every Redis key (AUDITDB_REDIS_PREFIX, "auditdb:"), so two
	// deployments may share one Redis.
	RedisPrefix string
	Addr        string // AUDITDB_ADDR
	DataDir     string // AUDITDB_DATA_DIR: generated development keys
	SigningKey  []byte // AUDITDB_SIGNING_KEY (hex or base64, ≥ 32 bytes) or <data dir>/signing.key
	// TrustedProxies are the reverse proxies whose X-Forwarded-For/-Proto are believed:
	// AUDITDB_TRUSTED_PROXIES (IPs and CIDR ranges, comma-separated). The deprecated
	// AUDITDB_TRUST_PROXY=true, without a list, trusts loopback and private addresses.
	TrustedProxies []netip.Prefix
	// CheckpointKey is the Ed25519 seed that signs Merkle checkpoints:
	// AUDITDB_CHECKPOINT_KEY (hex or base64, 32 bytes) or <data dir>/checkpoint.key.
	CheckpointKey []byte
	// Writer tunes the group-commit writer: AUDITDB_INGEST_FLUSHERS (concurrent
	// transactions), AUDITDB_INGEST_MAX_DELAY (how long a flusher waits for more, e.g. 100us)
	// and AUDITDB_INGEST_HOLD_BELOW (see ingest.WriterConfig.HoldBelow; 0 turns it off).
	Writer ingest.WriterConfig
	// SequencerEvery is how often the sequencer appends new events to the Merkle logs
	// (AUDITDB_SEQUENCER_EVERY, 100ms to 1m): shorter runs do the same work in smaller,
	// steadier pieces.
	SequencerEvery time.Duration
	// DetectEvery is how often detection reads newly logged events (AUDITDB_DETECT_EVERY,
	// 100ms to 1m, or "off" to run no detection on this instance). Where it runs, the
	// writer also feeds detection the events it writes (Writer.DetectionFeed;
	// AUDITDB_DETECT_FEED=true or false decides instead).
	DetectEvery time.Duration
	// PprofAddr, when set (AUDITDB_PPROF_ADDR, a loopback address such as 127.0.0.1:6060),
	// serves Go's runtime profiles there for diagnosing performance; off by default.
	PprofAddr string
	// SMTP is where email notifications go (AUDITDB_SMTP_URL such as
	// smtp://user:pass@host:587, with AUDITDB_SMTP_FROM the sender address); nil (unset)
	// disables email channels.
	SMTP *models.SMTPConfig
	// PublicURL is the console's address as people reach it (AUDITDB_PUBLIC_URL), for the
	// links in notifications; by default http://<AUDITDB_ADDR>.
	PublicURL string
	// StatementTimeout is the query budget of console and API requests (not ingest, not
	// jobs): AUDITDB_STATEMENT_TIMEOUT, 100ms to 5m (default 5s), or "off".
	StatementTimeout time.Duration
	// Metrics: AUDITDB_METRICS=off records and serves no Prometheus metrics (on by
	// default); AUDITDB_METRICS_ADDR (host:port) serves /metrics on a listener of its own,
	// and the main address then answers 404 for it. Without it, /metrics is on the main
	// address for loopback clients only.
	MetricsOff  bool
	MetricsAddr string
	// QueryCache bounds the console's query cache: AUDITDB_QUERY_CACHE (on or off),
	// AUDITDB_QUERY_CACHE_TTL (1s to 1h, 300s), AUDITDB_QUERY_CACHE_MAX_MB (1 to 16384, 100)
	// and AUDITDB_QUERY_CACHE_MAX_ENTRIES (1 to 1000000, 1000).
	QueryCache querycache.Config
	// Perf tunes the performance report: AUDITDB_SLOW_QUERY_MS (the slow-query threshold,
	// 1 to 3600000, 1000) and AUDITDB_AUTO_OPTIMIZE (true or false, true).
	Perf models.PerfOptions
	// PseudonymKey makes and encrypts GDPR pseudonyms: AUDITDB_PSEUDONYM_KEY (hex or base64
	// of exactly 32 bytes) or <data dir>/pseudonym.key; never stored in the database.
	PseudonymKey []byte
}

func loadConfig(getenv func(string) string) (config, error) {
	get := func(key, def string) string {
		if v := getenv(key); v != "" {
			return v
		}
		return def
	}
	cfg := config{
		DatabaseURL: get("AUDITDB_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/auditdb?sslmode=disable"),
		RedisURL:    get("AUDITDB_REDIS_URL", "redis://127.0.0.1:6379/0"),
		RedisPrefix: get("AUDITDB_REDIS_PREFIX", "auditdb:"),
		Addr:        get("AUDITDB_ADDR", "127.0.0.1:8080"),
		DataDir:     get("AUDITDB_DATA_DIR", ".data"),

		SequencerEvery: defaultSequencerEvery,
		DetectEvery:    defaultDetectEvery,
	}
	if v := getenv("AUDITDB_TRUST_PROXY"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return cfg, models.Invalid("AUDITDB_TRUST_PROXY", "must be true or false")
		}
		if b {
			cfg.TrustedProxies = deprecatedTrustProxy
		}
	}
	if v := getenv("AUDITDB_TRUSTED_PROXIES"); v != "" {
		ps, err := web.ParseTrustedProxies(v)
		if err != nil {
			return cfg, models.Invalid("AUDITDB_TRUSTED_PROXIES", err.Error())
		}
		cfg.TrustedProxies = ps
	}
	if len(cfg.RedisPrefix) > 64 || strings.ContainsAny(cfg.RedisPrefix, " \t\r\n") {
		return cfg, models.Invalid("AUDITDB_REDIS_PREFIX", "must be at most 64 characters without spaces")
	}
	if v := getenv("AUDITDB_SIGNING_KEY"); v != "" {
		key, err := decodeKey(v)
		if err != nil || len(key) < 32 {
			return cfg, models.Invalid("AUDITDB_SIGNING_KEY", "must be at least 32 bytes, hex or base64 encoded")
		}
		cfg.SigningKey = key
	}
	if v := getenv("AUDITDB_SMTP_URL"); v != "" {
		smtp, err := models.ParseSMTPURL(v, getenv("AUDITDB_SMTP_FROM"))
		if err != nil {
			return cfg, err
		}
		cfg.SMTP = smtp
	}
	cfg.PublicURL = get("AUDITDB_PUBLIC_URL", "http://"+cfg.Addr)
	if u, err := url.Parse(cfg.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return cfg, models.Invalid("AUDITDB_PUBLIC_URL", "must be an http(s) URL such as https://audit.example.com")
	}
	if v := getenv("AUDITDB_PPROF_ADDR"); v != "" {
		host, _, err := net.SplitHostPort(v)
		if ip := net.ParseIP(host); err != nil || (host != "localhost" && (ip == nil || !ip.IsLoopback())) {
			return cfg, models.Invalid("AUDITDB_PPROF_ADDR", "must be a loopback host:port such as 127.0.0.1:6060 (profiles are not for the network)")
		}
		cfg.PprofAddr = v
	}
	switch v := getenv("AUDITDB_METRICS"); v {
	case "", "on":
	case "off":
		cfg.MetricsOff = true
	default:
		return cfg, models.Invalid("AUDITDB_METRICS", "must be on or off")
	}
	if v := getenv("AUDITDB_METRICS_ADDR"); v != "" {
		if _, port, err := net.SplitHostPort(v); err != nil || port == "" {
			return cfg, models.Invalid("AUDITDB_METRICS_ADDR", "must be host:port, such as 127.0.0.1:9464 or :9464")
		}
		if cfg.MetricsOff {
			return cfg, models.Invalid("AUDITDB_METRICS_ADDR", "is set while AUDITDB_METRICS=off; unset one of them")
		}
		cfg.MetricsAddr = v
	}
	if v := getenv("AUDITDB_INGEST_FLUSHERS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 64 {
			return cfg, models.Invalid("AUDITDB_INGEST_FLUSHERS", "must be a number from 1 to 64")
		}
		cfg.Writer.Flushers = n
	}
	if v := getenv("AUDITDB_INGEST_MAX_DELAY"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 || d > time.Second {
			return cfg, models.Invalid("AUDITDB_INGEST_MAX_DELAY", "must be a duration up to 1s, such as 500us")
		}
		cfg.Writer.MaxDelay = d
	}
	if v := getenv("AUDITDB_INGEST_HOLD_BELOW"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 10_000 {
			return cfg, models.Invalid("AUDITDB_INGEST_HOLD_BELOW", "must be a number of events from 0 (off) to 10000")
		}
		cfg.Writer.HoldBelow = n
		if n == 0 {
			cfg.Writer.HoldBelow = -1
		}
	}
	if v := getenv("AUDITDB_SEQUENCER_EVERY"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 100*time.Millisecond || d > time.Minute {
			return cfg, models.Invalid("AUDITDB_SEQUENCER_EVERY", "must be a duration from 100ms to 1m, such as 500ms")
		}
		cfg.SequencerEvery = d
	}
	if v := getenv("AUDITDB_DETECT_EVERY"); v == "off" {
		cfg.DetectEvery = 0
	} else if v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 100*time.Millisecond || d > time.Minute {
			return cfg, models.Invalid("AUDITDB_DETECT_EVERY", "must be a duration from 100ms to 1m, such as 500ms, or off")
		}
		cfg.DetectEvery = d
	}
	// Detection's feed is written where detection runs, unless said otherwise.
	cfg.Writer.DetectionFeed = cfg.DetectEvery > 0
	if v := getenv("AUDITDB_DETECT_FEED"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return cfg, models.Invalid("AUDITDB_DETECT_FEED", "must be true or false")
		}
		cfg.Writer.DetectionFeed = b
	}
	if v := getenv("AUDITDB_STATEMENT_TIMEOUT"); v == "off" {
		cfg.StatementTimeout = -1
	} else if v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 100*time.Millisecond || d > 5*time.Minute {
			return cfg, models.Invalid("AUDITDB_STATEMENT_TIMEOUT", "must be a duration from 100ms to 5m, such as 5s, or off")
		}
		cfg.StatementTimeout = d
	}
	if err := loadPerfConfig(getenv, &cfg); err != nil {
		return cfg, err
	}
	if v := getenv("AUDITDB_CHECKPOINT_KEY"); v != "" {
		key, err := decodeKey(v)
		if err != nil || len(key) != 32 {
			return cfg, models.Invalid("AUDITDB_CHECKPOINT_KEY", "must be a 32-byte Ed25519 seed, hex or base64 encoded")
		}
		cfg.CheckpointKey = key
	}
	if v := getenv(erasure.KeyEnv); v != "" {
		key, err := erasure.ParsePseudonymKey(v)
		if err != nil {
			return cfg, err
		}
		cfg.PseudonymKey = key
	}
	return cfg, nil
}

// pseudonymKey returns the configured pseudonym key, or the one kept in the data directory
// (generated with mode 0600 on first use).
func (c config) pseudonymKey() ([]byte, error) {
	if c.PseudonymKey != nil {
		return c.PseudonymKey, nil
	}
	return erasure.LoadPseudonymKey(func(string) string { return "" }, c.DataDir)
}

// loadPerfConfig reads the query cache's and the performance report's settings.
func loadPerfConfig(getenv func(string) string, cfg *config) error {
	cfg.Perf = models.DefaultPerfOptions()
	switch v := getenv("AUDITDB_QUERY_CACHE"); v {
	case "", "on":
	case "off":
		cfg.QueryCache.Disabled = true
	default:
		return models.Invalid("AUDITDB_QUERY_CACHE", "must be on or off")
	}
	if v := getenv("AUDITDB_QUERY_CACHE_TTL"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Second || d > time.Hour {
			return models.Invalid("AUDITDB_QUERY_CACHE_TTL", "must be a duration from 1s to 1h, such as 300s")
		}
		cfg.QueryCache.TTL = d
	}
	if v := getenv("AUDITDB_QUERY_CACHE_MAX_MB"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 16384 {
			return models.Invalid("AUDITDB_QUERY_CACHE_MAX_MB", "must be a number of megabytes from 1 to 16384")
		}
		cfg.QueryCache.MaxBytes = int64(n) << 20
	}
	if v := getenv("AUDITDB_QUERY_CACHE_MAX_ENTRIES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1_000_000 {
			return models.Invalid("AUDITDB_QUERY_CACHE_MAX_ENTRIES", "must be a number from 1 to 1000000")
		}
		cfg.QueryCache.MaxEntries = n
	}
	if v := getenv("AUDITDB_SLOW_QUERY_MS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 3_600_000 {
			return models.Invalid("AUDITDB_SLOW_QUERY_MS", "must be a number of milliseconds from 1 to 3600000")
		}
		cfg.Perf.SlowQuery = time.Duration(n) * time.Millisecond
	}
	if v := getenv("AUDITDB_AUTO_OPTIMIZE"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return models.Invalid("AUDITDB_AUTO_OPTIMIZE", "must be true or false")
		}
		cfg.Perf.AutoOptimize = b
	}
	return nil
}

func decodeKey(s string) ([]byte, error) {
	if b, err := hex.DecodeString(s); err == nil {
		return b, nil
	}
	return base64.StdEncoding.DecodeString(s)
}

// signingKey returns the configured key, or the development key kept in the data directory
// (generated with mode 0600 on first use).
func (c config) signingKey() ([]byte, error) {
	if c.SigningKey != nil {
		return c.SigningKey, nil
	}
	return dataDirKey(c.DataDir, "signing.key", 32)
}

// checkpointKey returns the checkpoint signer from the configured seed, or from the seed
// kept in the data directory (generated with mode 0600 on first use). The key is never
// stored in the database.
func (c config) checkpointKey() (*merkle.CheckpointKey, error) {
	seed := c.CheckpointKey
	if seed == nil {
		var err error
		if seed, err = dataDirKey(c.DataDir, "checkpoint.key", 32); err != nil {
			return nil, err
		}
		seed = seed[:32]
	}
	return merkle.NewCheckpointKey(seed)
}

func dataDirKey(dir, name string, size int) ([]byte, error) {
	path := filepath.Join(dir, name)
	raw, err := os.ReadFile(path)
	if err == nil {
		key, derr := hex.DecodeString(string(trimNewline(raw)))
		if derr != nil || len(key) < size {
			return nil, fmt.Errorf("%s is not a %d-byte hex key", path, size)
		}
		return key, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	key := make([]byte, size)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) { // another process made it first: use theirs
		return dataDirKey(dir, name, size)
	}
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", path, err)
	}
	defer f.Close()
	if _, err := f.WriteString(hex.EncodeToString(key) + "\n"); err != nil {
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	return key, nil
}

func trimNewline(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}
