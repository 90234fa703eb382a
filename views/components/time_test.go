package components

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestTimeShowsTheViewersZoneAndISOOnHover: the text is the time in the viewer's zone (UTC
// when none is set), in one format; the title is ISO 8601, and with no zone set the browser
// adds its own zone (data-local-title).
func TestTimeShowsTheViewersZoneAndISOOnHover(t *testing.T) {
	at := time.Date(2026, 11, 29, 19, 21, 28, 0, time.UTC)
	render := func(ctx context.Context) string {
		t.Helper()
		var b strings.Builder
		if err := Time(at).Render(ctx, &b); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	got := render(WithView(context.Background(), View{Location: berlin}))
	for _, want := range []string{`>2026-11-29 20:21:28 CET</time>`, `datetime="2026-11-29T19:21:28Z"`, `title="2026-11-29T19:21:28Z"`} {
		if !strings.Contains(got, want) {
			t.Errorf("in Berlin: %s lacks %s", got, want)
		}
	}
	if strings.Contains(got, "data-local-title") {
		t.Errorf("in Berlin: %s asks the browser for its zone", got)
	}
	got = render(context.Background())
	for _, want := range []string{`>2026-11-29 19:21:28 UTC</time>`, `title="2026-11-29T19:21:28Z"`, "data-local-title"} {
		if !strings.Contains(got, want) {
			t.Errorf("with no zone: %s lacks %s", got, want)
		}
	}
}
