// Package static holds the admin console's built assets: the compiled
// Tailwind stylesheet (css/app.css), the vendored htmx library
// (js/htmx.min.js) and the logo (img/logo.svg).
//
// The files are produced by `make assets` and committed, so a plain
// `go build` needs neither Node nor network access. Serve FS under /static/
// (the layout links /static/css/app.css, /static/js/htmx.min.js and
// /static/img/logo.svg).
package static

import "embed"

// FS is the embedded asset tree, rooted so that "css/app.css",
// "js/htmx.min.js" and "img/logo.svg" are valid paths. Opening a name that
// is not embedded returns an error wrapping fs.ErrNotExist.
//
//go:embed css js img
var FS embed.FS
