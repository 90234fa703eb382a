package components

import (
	"context"
	"time"
)

// View is what every component may read about the request it renders for, carried on the
// render context (see WithView): the fingerprinted URLs of the static files and the
// viewer's time zone.
type View struct {
	// Asset returns the URL of the static file at name ("css/app.css"); nil is the plain
	// /static/<name>.
	Asset func(name string) string
	// Location is the time zone the viewer reads times in; nil is UTC.
	Location *time.Location
}

type viewKey struct{}

// WithView returns ctx carrying v for the components rendered with it.
func WithView(ctx context.Context, v View) context.Context {
	return context.WithValue(ctx, viewKey{}, v)
}

// ViewOf returns the View on ctx, or the zero View (plain asset URLs, UTC).
func ViewOf(ctx context.Context) View {
	v, _ := ctx.Value(viewKey{}).(View)
	return v
}

// AssetURL returns the URL of the static file name for the request of ctx.
func AssetURL(ctx context.Context, name string) string {
	if v := ViewOf(ctx); v.Asset != nil {
		return v.Asset(name)
	}
	return "/static/" + name
}
