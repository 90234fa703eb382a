package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"auditdb/models"
	"auditdb/web"
)

func TestBadConfig(t *testing.T) {
	cases := []struct{ name, key, value string }{
		{"short signing key", "AUDITDB_SIGNING_KEY", "abcd"},
		{"bad trust proxy", "AUDITDB_TRUST_PROXY", "perhaps"},
		{"checkpoint key of the wrong size", "AUDITDB_CHECKPOINT_KEY", "abcd"},
		{"flushers not a number", "AUDITDB_INGEST_FLUSHERS", "two"},
		{"no flushers", "AUDITDB_INGEST_FLUSHERS", "0"},
		{"gather delay not a duration", "AUDITDB_INGEST_MAX_DELAY", "2"},
		{"gather delay too long", "AUDITDB_INGEST_MAX_DELAY", "5s"},
		{"hold not a number", "AUDITDB_INGEST_HOLD_BELOW", "many"},
		{"hold negative", "AUDITDB_INGEST_HOLD_BELOW", "-3"},
		{"sequencer interval not a duration", "AUDITDB_SEQUENCER_EVERY", "2"},
		{"sequencer interval too short", "AUDITDB_SEQUENCER_EVERY", "10ms"},
		{"profiles on every interface", "AUDITDB_PPROF_ADDR", ":6060"},
		{"profiles on a public address", "AUDITDB_PPROF_ADDR", "10.1.2.3:6060"},
		{"profiles without a port", "AUDITDB_PPROF_ADDR", "127.0.0.1"},
		{"smtp url of another scheme", "AUDITDB_SMTP_URL", "http://mail.example.com"},
		{"public url without a scheme", "AUDITDB_PUBLIC_URL", "audit.example.com"},
		{"metrics neither on nor off", "AUDITDB_METRICS", "maybe"},
		{"metrics address without a port", "AUDITDB_METRICS_ADDR", "127.0.0.1"},
		{"pseudonym key of the wrong size", "AUDITDB_PSEUDONYM_KEY", "abcd"},
		{"pseudonym key not hex nor base64", "AUDITDB_PSEUDONYM_KEY", strings.Repeat("z", 64)},
		{"detection feed neither true nor false", "AUDITDB_DETECT_FEED", "sometimes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			err := Run(context.Background(), []string{"migrate"}, env(map[string]string{tc.key: tc.value}), &out)
			if err == nil || !strings.Contains(err.Error(), tc.key) {
				t.Fatalf("error %v should name %s", err, tc.key)
			}
		})
	}
}

// TestMetricsConfig: where /metrics goes by AUDITDB_METRICS and AUDITDB_METRICS_ADDR.
func TestMetricsConfig(t *testing.T) {
	for _, c := range []struct {
		env  map[string]string
		want web.MetricsMode
		err  string
	}{
		{map[string]string{}, web.MetricsLoopback, ""},
		{map[string]string{"AUDITDB_METRICS": "on"}, web.MetricsLoopback, ""},
		{map[string]string{"AUDITDB_METRICS": "off"}, web.MetricsOff, ""},
		{map[string]string{"AUDITDB_METRICS_ADDR": ":9464"}, web.MetricsSeparate, ""},
		{map[string]string{"AUDITDB_METRICS": "off", "AUDITDB_METRICS_ADDR": ":9464"}, 0, "AUDITDB_METRICS_ADDR"},
	} {
		cfg, err := loadConfig(func(k string) string { return c.env[k] })
		switch {
		case c.err != "":
			if err == nil || !strings.Contains(models.MessageOfCLI(err), c.err) {
				t.Errorf("%v: error %v, want one naming %s", c.env, err, c.err)
			}
		case err != nil:
			t.Errorf("%v: %v", c.env, err)
		case cfg.metricsMode() != c.want:
			t.Errorf("%v: mode %v, want %v", c.env, cfg.metricsMode(), c.want)
		}
	}
}

func TestSMTPConfig(t *testing.T) {
	t.Run("a server without a sender address is refused", func(t *testing.T) {
		_, err := loadConfig(env(map[string]string{"AUDITDB_SMTP_URL": "smtp://mail.example.com:587"}))
		if err == nil || !strings.Contains(err.Error(), "AUDITDB_SMTP_FROM") {
			t.Fatalf("error %v should name AUDITDB_SMTP_FROM", err)
		}
	})
	t.Run("unset disables email", func(t *testing.T) {
		cfg, err := loadConfig(env(nil))
		if err != nil || cfg.SMTP != nil || cfg.PublicURL != "http://127.0.0.1:8080" {
			t.Fatalf("config %+v, err %v", cfg, err)
		}
	})
	t.Run("a full configuration", func(t *testing.T) {
		cfg, err := loadConfig(env(map[string]string{"AUDITDB_SMTP_URL": "smtp://u:p@mail.example.com:2525",
			"AUDITDB_SMTP_FROM": "alerts@example.com", "AUDITDB_PUBLIC_URL": "https://audit.example.com"}))
		if err != nil || cfg.SMTP == nil || cfg.SMTP.Port != "2525" || cfg.SMTP.From != "alerts@example.com" || cfg.PublicURL != "https://audit.example.com" {
			t.Fatalf("config %+v, err %v", cfg, err)
		}
	})
}

func TestStatementTimeoutConfig(t *testing.T) {
	for _, c := range []struct {
		value string
		want  time.Duration
		bad   bool
	}{
		{"", 0, false}, // the services' default (models.DefaultStatementTimeout)
		{"2s", 2 * time.Second, false},
		{"off", -1, false},
		{"10ms", 0, true},
		{"1h", 0, true},
		{"fast", 0, true},
	} {
		t.Run(c.value, func(t *testing.T) {
			cfg, err := loadConfig(env(map[string]string{"AUDITDB_STATEMENT_TIMEOUT": c.value}))
			if c.bad {
				if err == nil || !strings.Contains(err.Error(), "AUDITDB_STATEMENT_TIMEOUT") {
					t.Fatalf("%q: error %v should name AUDITDB_STATEMENT_TIMEOUT", c.value, err)
				}
				return
			}
			if err != nil || cfg.StatementTimeout != c.want {
				t.Fatalf("%q: %v, %v; want %v", c.value, cfg.StatementTimeout, err, c.want)
			}
		})
	}
}

// The writer feeds detection where the instance runs it, unless AUDITDB_DETECT_FEED says.
func TestDetectionFeedConfig(t *testing.T) {
	for _, c := range []struct {
		every, feed string
		want        bool
	}{
		{"", "", true},
		{"off", "", false},
		{"2s", "", true},
		{"off", "true", true},
		{"", "false", false},
	} {
		cfg, err := loadConfig(env(map[string]string{"AUDITDB_DETECT_EVERY": c.every, "AUDITDB_DETECT_FEED": c.feed}))
		if err != nil || cfg.Writer.DetectionFeed != c.want {
			t.Errorf("AUDITDB_DETECT_EVERY=%q AUDITDB_DETECT_FEED=%q: feed %v (%v), want %v", c.every, c.feed,
				cfg.Writer.DetectionFeed, err, c.want)
		}
	}
}
