package web

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"errors"
	"io"
	"strings"

	"github.com/andybalholm/brotli"
	"github.com/gofiber/fiber/v2"

	"auditdb/handlers"
	"auditdb/handlers/render"
)

// maxCodings is how many content codings one body may stack: each costs a pass over up to
// bodyLimit bytes, so a long list of cheap layers would buy a lot of work with one request.
const maxCodings = 2

// bodyLimit is the largest request body the server reads, after decoding any
// Content-Encoding: a compressed body may not expand past it.
const bodyLimit = 10 << 20

// decodeBody replaces a request body sent with a Content-Encoding (gzip, deflate, br,
// identity, or several applied in turn) by its decoded form before any handler reads it,
// streaming through each decoder with a cap of limit bytes. A body that would expand past
// the cap is refused with 413 as soon as the cap is reached (a gzip bomb costs at most
// limit bytes), an unknown coding (or more than maxCodings) with 415, an undecodable body with 400.
//
// Fiber would otherwise decode in Ctx.Body without any bound, and fasthttp does the same
// for multipart forms; once the header is gone, neither decodes again.
func decodeBody(limit int) fiber.Handler {
	return func(c *fiber.Ctx) error {
		req := c.Request()
		header := req.Header.Peek(fiber.HeaderContentEncoding)
		if len(header) == 0 {
			return c.Next()
		}
		var codings []string
		for _, p := range strings.Split(string(header), ",") {
			if p = strings.ToLower(strings.TrimSpace(p)); p != "" && p != "identity" {
				codings = append(codings, p)
			}
		}
		if len(codings) > maxCodings {
			return fiber.NewError(fiber.StatusUnsupportedMediaType, "at most two Content-Encodings may be stacked")
		}
		body := req.Body()
		// Codings are listed in the order they were applied: undo the last one first.
		for i := len(codings) - 1; i >= 0 && len(body) > 0; i-- {
			out, err := decodeOne(codings[i], body, limit)
			if err != nil {
				return err
			}
			body = out
		}
		req.Header.Del(fiber.HeaderContentEncoding)
		if len(codings) > 0 {
			req.SetBodyRaw(body)
			req.Header.SetContentLength(len(body))
		}
		return c.Next()
	}
}

// decodeOne decodes body from coding, reading at most limit bytes of output.
func decodeOne(coding string, body []byte, limit int) ([]byte, error) {
	var (
		r   io.Reader
		err error
	)
	src := bytes.NewReader(body)
	switch coding {
	case "gzip", "x-gzip":
		r, err = gzip.NewReader(src)
	case "deflate":
		r, err = zlib.NewReader(src)
	case "br":
		r = brotli.NewReader(src)
	default:
		return nil, fiber.NewError(fiber.StatusUnsupportedMediaType,
			"Content-Encoding "+coding+" is not supported; use gzip, deflate or br")
	}
	if err != nil {
		return nil, badCoding(coding)
	}
	out, err := io.ReadAll(io.LimitReader(r, int64(limit)+1))
	switch {
	case len(out) > limit:
		return nil, fiber.ErrRequestEntityTooLarge
	case err != nil && !errors.Is(err, io.EOF):
		return nil, badCoding(coding)
	}
	return out, nil
}

func badCoding(coding string) error {
	return fiber.NewError(fiber.StatusBadRequest, "the request body is not valid "+coding+" data")
}

// decodeConsoleBody is decodeBody for every request outside the API: the API decodes only
// once the request's key is known (its group mounts decodeBody after requireAPIKey), so an
// anonymous client cannot make the server expand a body. A console request with a
// Content-Encoding but no session cookie is sent to sign in before its body is decoded; the
// sign-in form itself, which needs its body for the CSRF check, is decoded as before.
func decodeConsoleBody(limit int) fiber.Handler {
	decode := decodeBody(limit)
	return func(c *fiber.Ctx) error {
		if isAPIPath(c.Path()) {
			return c.Next()
		}
		if len(c.Request().Header.Peek(fiber.HeaderContentEncoding)) > 0 && !strings.EqualFold(c.Path(), "/login") &&
			c.Cookies(handlers.SessionCookie) == "" {
			return render.Redirect(c, "/login")
		}
		return decode(c)
	}
}
