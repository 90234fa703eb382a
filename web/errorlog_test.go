package web

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/requestid"

	"auditdb/handlers/render"
	"auditdb/models"
	"auditdb/models/pgtest"
	"auditdb/policy"
)

// errorApp is a small app with the real error handler, request ids and panic recovery,
// whose routes fail on purpose, acting for organization org.
func errorApp(errs ErrorRecorder, org string) *fiber.App {
	app := fiber.New(fiber.Config{ErrorHandler: errorHandler(slog.New(slog.NewTextHandler(io.Discard, nil)), errs)})
	app.Use(requestid.New())
	app.Use(recoverPanics)
	app.Use(func(c *fiber.Ctx) error {
		render.SetPrincipal(c, render.Principal{Subject: policy.Subject{Name: "user:77"}, Org: org})
		return c.Next()
	})
	app.Get("/things/:id", func(c *fiber.Ctx) error { return errors.New("user " + c.Params("id") + " failed") })
	app.Get("/panics", func(c *fiber.Ctx) error { panic("nil map somewhere") })
	app.Get("/missing", func(c *fiber.Ctx) error { return models.NotFound("thing") })
	return app
}

// stuckInserter never finishes an insert until ctx ends: a database that hangs.
type stuckInserter struct{}

func (stuckInserter) Insert(ctx context.Context, _ []models.ErrorRecord) error {
	<-ctx.Done()
	return ctx.Err()
}

func TestServerErrorsReachTheErrorLog(t *testing.T) {
	ctx := context.Background()
	db := pgtest.DB(t)
	store := models.NewErrorLogStore(db, models.NewPartitionManager(db))
	w := models.NewErrorWriter(store, models.ErrorWriterConfig{MaxDelay: time.Millisecond}, nil)
	w.Start()
	t.Cleanup(func() { w.Close(ctx) })
	org := pgtest.OrgID(t, "errs")
	app := errorApp(w, org)

	for _, path := range []string{"/things/123", "/things/456", "/panics", "/missing"} {
		resp, err := app.Test(httptest.NewRequest("GET", path, nil), 5000)
		if err != nil {
			t.Fatal(err)
		}
		want := fiber.StatusInternalServerError
		if path == "/missing" {
			want = fiber.StatusNotFound
		}
		if resp.StatusCode != want {
			t.Fatalf("GET %s: status %d, want %d", path, resp.StatusCode, want)
		}
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	groups, err := store.List(ctx, models.ErrorScope{Org: org}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	byOp := map[string]models.ErrorGroup{}
	for _, g := range groups {
		byOp[g.Operation] = g
	}
	t.Run("a 500 is recorded with its route, folded by fingerprint", func(t *testing.T) {
		g, ok := byOp["GET /things/:id"]
		if !ok || g.Kind != models.ErrorKindHTTP || g.Count != 2 || g.Title != "user <n> failed" || g.Component != "web" {
			t.Fatalf("groups = %+v", groups)
		}
		_, occ, err := store.Get(ctx, models.ErrorScope{Org: org}, g.Key, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if occ[0].Code != "500" || occ[0].UserID != "user:77" || occ[0].RequestID == "" || occ[0].Context["method"] != "GET" {
			t.Fatalf("occurrence = %+v", occ[0])
		}
	})
	t.Run("a panic is recorded as a panic with its stack", func(t *testing.T) {
		g, ok := byOp["GET /panics"]
		if !ok || g.Kind != models.ErrorKindPanic || g.Count != 1 || g.Samples[0] != "panic: nil map somewhere" {
			t.Fatalf("groups = %+v", groups)
		}
		_, occ, err := store.Get(ctx, models.ErrorScope{Org: org}, g.Key, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if stack, _ := occ[0].Context["stack"].(string); stack == "" {
			t.Fatalf("no stack in %+v", occ[0].Context)
		}
	})
	t.Run("a 4xx is not a server error", func(t *testing.T) {
		if len(groups) != 2 {
			t.Fatalf("groups = %+v, want only the 500 and the panic", groups)
		}
	})
}

func TestServerErrorAnswersWhenTheErrorLogCannotWrite(t *testing.T) {
	ctx := context.Background()
	closed, err := models.Open(ctx, pgtest.DSN(t))
	if err != nil {
		t.Fatal(err)
	}
	sqlDB, err := closed.DB()
	if err != nil {
		t.Fatal(err)
	}
	sqlDB.Close()
	for _, tc := range []struct {
		name  string
		store models.ErrorInserter
		queue int
	}{
		{"closed database pool", models.NewErrorLogStore(closed, models.NewPartitionManager(closed)), 0},
		{"database that hangs, queue full", stuckInserter{}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := models.NewErrorWriter(tc.store, models.ErrorWriterConfig{Queue: tc.queue, Batch: 1, MaxDelay: time.Millisecond, Timeout: time.Second}, nil)
			w.Start()
			app := errorApp(w, "acme")
			start := time.Now()
			for range 5 {
				resp, err := app.Test(httptest.NewRequest("GET", "/things/9", nil), 5000)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				if resp.StatusCode != fiber.StatusInternalServerError || len(body) == 0 {
					t.Fatalf("status %d body %q, want the 500 page", resp.StatusCode, body)
				}
			}
			if took := time.Since(start); took > 1500*time.Millisecond {
				t.Fatalf("five failing requests took %v: the error log held them up", took)
			}
			fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			if err := w.Flush(fctx); err != nil {
				t.Fatal(err)
			}
			st := w.Stats()
			if st.Written != 0 || st.Failed+st.Dropped != 5 {
				t.Fatalf("stats = %+v, want all five lost and counted", st)
			}
			w.Close(ctx)
		})
	}
}
