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

func TestEvidenceBundlesBuiltAtOnceAreCappedPerOrganization(t *testing.T) {
	b := &blockingBundler{started: make(chan struct{}, 10), release: make(chan struct{})}
	app := fiber.New(fiber.Config{ErrorHandler: func(c *fiber.Ctx, err error) error {
		return c.SendStatus(render.StatusOf(err))
	}})
	app.Get("/events/bundle", func(c *fiber.Ctx) error {
		render.SetViewer(c, &render.Viewer{OrgID: c.Query("org"), User: &models.User{ID: 1, Email: "a@example.com"}})
		return c.Next()
	}, DownloadEvidenceBundle(b, nopAuditor{}, time.Now))
	get := func(org string) int {
		res, err := app.Test(httptest.NewRequest("GET", "/events/bundle?org="+org, nil), -1)
		if err != nil {
			return 0
		}
		return res.StatusCode
	}
	// Organizations a to d each start one, in parallel: the instance's cap.
	orgs := []string{"org-a", "org-b", "org-c", "org-d"}
	codes := make(chan int, len(orgs))
	for _, org := range orgs {
		go func() { codes <- get(org) }()
	}
	for range orgs {
		<-b.started
	}
	if code := get("org-a"); code != fiber.StatusTooManyRequests {
		t.Fatalf("a second bundle of org-a while its first is built: %d, want 429", code)
	}
	if code := get("org-e"); code != fiber.StatusTooManyRequests {
		t.Fatalf("a bundle beyond the instance's %d: %d, want 429", MaxConcurrentBundles, code)
	}
	close(b.release)
	for range orgs {
		if code := <-codes; code != fiber.StatusOK {
			t.Fatalf("a bundle within the caps: %d", code)
		}
	}
	// The slots are given back: org-a again, and org-e.
	for _, org := range []string{"org-a", "org-e"} {
		if code := get(org); code != fiber.StatusOK {
			t.Fatalf("%s after the others finished: %d", org, code)
		}
	}
}

func TestOneOrganizationDoesNotBlockAnother(t *testing.T) {
	b := &blockingBundler{started: make(chan struct{}, 10), release: make(chan struct{})}
	app := fiber.New(fiber.Config{ErrorHandler: func(c *fiber.Ctx, err error) error {
		return c.SendStatus(render.StatusOf(err))
	}})
	app.Get("/events/bundle", func(c *fiber.Ctx) error {
		render.SetViewer(c, &render.Viewer{OrgID: c.Query("org"), User: &models.User{ID: 1, Email: "a@example.com"}})
		return c.Next()
	}, DownloadEvidenceBundle(b, nopAuditor{}, time.Now))
	// 20 requests of org-a at once: exactly one is built, the rest refused.
	codes := make(chan int, 21)
	for range 20 {
		go func() {
			res, err := app.Test(httptest.NewRequest("GET", "/events/bundle?org=org-a", nil), -1)
			if err != nil {
				codes <- 0
				return
			}
			codes <- res.StatusCode
		}()
	}
	<-b.started
	refused := 0
	for range 19 {
		if code := <-codes; code == fiber.StatusTooManyRequests {
			refused++
		}
	}
	if refused != 19 {
		t.Fatalf("%d of 19 refused while org-a's first is built", refused)
	}
	go func() {
		res, err := app.Test(httptest.NewRequest("GET", "/events/bundle?org=org-b", nil), -1)
		if err != nil {
			codes <- 0
			return
		}
		codes <- res.StatusCode
	}()
	<-b.started // org-b's started while org-a's is still held
	close(b.release)
	for range 2 {
		if code := <-codes; code != fiber.StatusOK {
			t.Fatalf("a bundle within the caps: %d", code)
		}
	}
}
