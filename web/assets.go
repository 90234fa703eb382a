package web

import (
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"mime"
	"path"
	"strings"

	"github.com/gofiber/fiber/v2"

	"auditdb/views/components"
)

// immutable is the cache policy of a fingerprinted static file: its URL changes with its
// content, so a copy never goes stale.
const immutable = "public, max-age=31536000, immutable"

// asset is one static file served under its fingerprinted name.
type asset struct {
	name  string // its path in the static tree, e.g. css/app.css
	body  []byte
	ctype string
}

// assets are the static files with a content hash in their names (css/app.3f2a9c1d0b.css),
// computed once at start from the embedded tree, so a deploy that changes a file changes its
// URL and browsers may keep every copy for a year.
type assets struct {
	urls   map[string]string // css/app.css → /static/css/app.<hash>.css
	byPath map[string]asset  // css/app.<hash>.css → the file
}

// fingerprint returns name with the first 10 hex digits of body's SHA-256 before its
// extension: css/app.css → css/app.0123456789.css.
func fingerprint(name string, body []byte) string {
	sum := sha256.Sum256(body)
	ext := path.Ext(name)
	return strings.TrimSuffix(name, ext) + "." + hex.EncodeToString(sum[:5]) + ext
}

// loadAssets fingerprints every file of tree. It fails only when the tree cannot be read.
func loadAssets(tree fs.FS) (*assets, error) {
	a := &assets{urls: map[string]string{}, byPath: map[string]asset{}}
	err := fs.WalkDir(tree, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := fs.ReadFile(tree, name)
		if err != nil {
			return err
		}
		ctype := mime.TypeByExtension(path.Ext(name))
		if ctype == "" {
			ctype = fiber.MIMEOctetStream
		}
		fp := fingerprint(name, body)
		a.urls[name] = "/static/" + fp
		a.byPath[fp] = asset{name: name, body: body, ctype: ctype}
		return nil
	})
	return a, err
}

// URL returns the fingerprinted URL of the static file name, or /static/<name> for a name
// the tree does not hold.
func (a *assets) URL(name string) string {
	if u, ok := a.urls[name]; ok {
		return u
	}
	return "/static/" + name
}

// serve answers a fingerprinted static path with its file and the immutable cache policy,
// and passes any other path on (to the plain files, cached for an hour).
func (a *assets) serve(c *fiber.Ctx) error {
	f, ok := a.byPath[strings.TrimPrefix(c.Path(), "/static/")]
	if !ok || (c.Method() != fiber.MethodGet && c.Method() != fiber.MethodHead) {
		return c.Next()
	}
	c.Set(fiber.HeaderContentType, f.ctype)
	c.Set(fiber.HeaderCacheControl, immutable)
	return c.Send(f.body)
}

// viewContext puts the request's components.View (the asset URLs) on its context, for
// every page and fragment rendered with it.
func viewContext(a *assets) fiber.Handler {
	return func(c *fiber.Ctx) error {
		if isAPIPath(c.Path()) {
			return c.Next() // the API renders no component
		}
		c.SetUserContext(components.WithView(c.UserContext(), components.View{Asset: a.URL}))
		return c.Next()
	}
}

// robotsTxt keeps the whole console out of search engines (with X-Robots-Tag on every
// answer, see securityHeaders).
func robotsTxt(c *fiber.Ctx) error {
	c.Set(fiber.HeaderContentType, fiber.MIMETextPlainCharsetUTF8)
	c.Set(fiber.HeaderCacheControl, "public, max-age=86400")
	return c.SendString("User-agent: *\nDisallow: /\n")
}
