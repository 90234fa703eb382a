package events_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/a-h/templ"

	"auditdb/views/layout"
	"auditdb/views/pages/events"
)

const hostile = `<script>alert(1)</script>`

func render(t *testing.T, c templ.Component) string {
	t.Helper()
	var b strings.Builder
	if err := c.Render(context.Background(), &b); err != nil {
		t.Fatalf("render: %v", err)
	}
	return b.String()
}

func testID(id string) string { return `data-testid="` + id + `"` }

func listProps(rows ...events.Row) events.ListProps {
	return events.ListProps{
		Filter:          events.FilterValues{Q: "login " + hostile},
		Rows:            rows,
		NextHref:        "/events?before=41",
		FirstHref:       "/events?q=login",
		Statuses:        []string{"attempt", "success", "failure"},
		Classifications: []string{"public", "phi"},
	}
}

var hostileRow = events.Row{
	ID:        42,
	Href:      "/events/42",
	Time:      time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC),
	Action:    hostile,
	Status:    "failure",
	Principal: "alice@example.org",
	Resource:  "Patient/123",
	Outcome:   "denied",
}

func TestRender(t *testing.T) {
	shell := layout.Shell{Title: "Events", Active: "events", UserEmail: "alice@example.org", OrgID: "1", OrgName: "Acme", CSRF: "tok"}

	tests := []struct {
		name    string
		c       templ.Component
		want    []string
		notWant []string
	}{
		{
			name: "full list page escapes data and has its test ids",
			c:    events.List(shell, listProps(hostileRow)),
			want: []string{
				testID("events-filter"), testID("events-results"), testID("events-table"),
				testID("event-row"), testID("event-link"), testID("page-next"), testID("page-first"),
				testID("panel-action"), testID("filter-q"), testID("panel-status"), testID("filter-from"), testID("filter-range"),
				testID("query-panel"), testID("error-q"), `aria-live="polite"`, `hx-history="false"`,
				testID("nav-events"), `aria-current="page"`, `hx-target="#events-results"`,
				`&lt;script&gt;alert(1)&lt;/script&gt;`, `href="/events/42"`,
			},
			notWant: []string{hostile, testID("events-empty")},
		},
		{
			name:    "results fragment alone is not a document",
			c:       events.Results(listProps(hostileRow)),
			want:    []string{`id="events-results"`, testID("event-row"), `&lt;script&gt;alert(1)&lt;/script&gt;`},
			notWant: []string{hostile, "<html", testID("events-filter")},
		},
		{
			name:    "results without rows show the empty state and no next link",
			c:       events.Results(events.ListProps{}),
			want:    []string{testID("events-results"), testID("events-empty")},
			notWant: []string{testID("events-table"), testID("page-next"), testID("page-first")},
		},
		{
			name: "detail page escapes fields and details",
			c: events.Detail(shell, events.DetailProps{
				ID:          42,
				Title:       hostile,
				Fields:      []events.DetailField{{Label: "Action", Value: hostile, TestID: "event-action"}},
				DetailsJSON: `{"note": "` + hostile + `"}`,
			}),
			want:    []string{testID("event-details"), testID("event-action"), testID("event-back"), `href="/events"`},
			notWant: []string{hostile},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			html := render(t, tc.c)
			for _, s := range tc.want {
				if !strings.Contains(html, s) {
					t.Errorf("missing %q", s)
				}
			}
			for _, s := range tc.notWant {
				if strings.Contains(html, s) {
					t.Errorf("unexpected %q", s)
				}
			}
		})
	}
}
