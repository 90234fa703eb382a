package handlers

import (
	"context"
	"io"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"auditdb/handlers/render"
	"auditdb/models"
	"auditdb/models/bundle"
)

// blockingBundler holds every Write until release is closed.
type blockingBundler struct {
	started chan struct{}
	release chan struct{}
}

func (b *blockingBundler) Check(context.Context, string, models.EventFilter) error { return nil }

func (b *blockingBundler) Write(_ context.Context, _ string, _ models.EventFilter, w io.Writer) (bundle.Summary, error) {
	b.started <- struct{}{}
	<-b.release
	_, err := w.Write([]byte("PK"))
	return bundle.Summary{Events: 1}, err
}

type nopAuditor struct{}

func (nopAuditor) Record(context.Context, ...models.AuditEntry) error { return nil }

func TestEvidenceBundlesBuiltAtOnceAreCapped(t *testing.T) {
	b := &blockingBundler{started: make(chan struct{}, 10), release: make(chan struct{})}
	app := fiber.New(fiber.Config{ErrorHandler: func(c *fiber.Ctx, err error) error {
		return c.SendStatus(render.StatusOf(err))
	}})
	app.Get("/events/bundle", func(c *fiber.Ctx) error {
		render.SetViewer(c, &render.Viewer{OrgID: "org-a", User: &models.User{ID: 1, Email: "a@example.com"}})
		return c.Next()
	}, DownloadEvidenceBundle(b, nopAuditor{}, time.Now))
	codes := make(chan int, MaxConcurrentBundles)
	for range MaxConcurrentBundles {
		go func() {
			res, err := app.Test(httptest.NewRequest("GET", "/events/bundle", nil), -1)
			if err != nil {
				codes <- 0
				return
			}
			codes <- res.StatusCode
		}()
	}
	for range MaxConcurrentBundles {
		<-b.started
	}
	res, err := app.Test(httptest.NewRequest("GET", "/events/bundle", nil), -1)
	if err != nil || res.StatusCode != fiber.StatusTooManyRequests {
		t.Fatalf("a bundle beyond the %d being built: %v %v", MaxConcurrentBundles, res.StatusCode, err)
	}
	close(b.release)
	for range MaxConcurrentBundles {
		if code := <-codes; code != fiber.StatusOK {
			t.Fatalf("a bundle within the cap: %d", code)
		}
	}
	// The slots are given back.
	b.release = make(chan struct{})
	close(b.release)
	if res, err := app.Test(httptest.NewRequest("GET", "/events/bundle", nil), -1); err != nil || res.StatusCode != fiber.StatusOK {
		t.Fatalf("after the others finished: %v %v", res.StatusCode, err)
	}
}
