package components

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestTimeShowsUTCAndTheViewersZoneOnHover: the text is always UTC; the title is the time in
// the viewer's zone when one is set, and left to the browser's zone (data-local-title)
// otherwise.
func TestTimeShowsUTCAndTheViewersZoneOnHover(t *testing.T) {
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
	for _, want := range []string{`>2026-11-29 19:21:28 UTC</time>`, `datetime="2026-11-29T19:21:28Z"`,
		`title="2026-11-29 20:21:28 CET (Europe/Berlin)"`} {
		if !strings.Contains(got, want) {
			t.Errorf("in Berlin: %s lacks %s", got, want)
		}
	}
	got = render(context.Background())
	if !strings.Contains(got, `>2026-11-29 19:21:28 UTC</time>`) || !strings.Contains(got, "data-local-title") || strings.Contains(got, "title=") {
		t.Errorf("with no zone: %s", got)
	}
}
