package web

import (
	"sort"
	"strings"

	"github.com/gofiber/fiber/v2"
)

// apiPrefix is where the API lives; routing ignores case, so /API/V1 is the same place.
const apiPrefix = "/api/v1"

// isAPIPath reports whether path is under /api, in any case.
func isAPIPath(path string) bool {
	return len(path) >= 4 && strings.EqualFold(path[:4], "/api") && (len(path) == 4 || path[4] == '/')
}

// apiFallback answers what no API route took: 405 with an Allow header when the path is
// one of table's (":name" segments match any segment) with another method, else 404. Both
// go through the error handler, so they are the API's JSON errors, not the console's
// sign-in redirect.
func apiFallback(table []route) fiber.Handler {
	return func(c *fiber.Ctx) error {
		path := strings.ToLower(strings.TrimSuffix(c.Path(), "/"))
		rel, ok := strings.CutPrefix(path, apiPrefix)
		if !ok {
			return fiber.ErrNotFound
		}
		var allow []string
		for _, r := range table {
			if pathMatches(r.path, rel) && !contains(allow, r.method) {
				allow = append(allow, r.method)
			}
		}
		if len(allow) == 0 {
			return fiber.ErrNotFound
		}
		sort.Strings(allow)
		c.Set(fiber.HeaderAllow, strings.Join(allow, ", "))
		return fiber.ErrMethodNotAllowed
	}
}

// pathMatches reports whether path fits pattern, segment by segment.
func pathMatches(pattern, path string) bool {
	ps, xs := strings.Split(pattern, "/"), strings.Split(path, "/")
	if len(ps) != len(xs) {
		return false
	}
	for i := range ps {
		if strings.HasPrefix(ps[i], ":") {
			if xs[i] == "" {
				return false
			}
		} else if ps[i] != xs[i] {
			return false
		}
	}
	return true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
