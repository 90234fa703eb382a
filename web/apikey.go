package web

import (
	"context"
	"strings"

	"github.com/gofiber/fiber/v2"

	"auditdb/models"
	"auditdb/web/render"
)

type apiKeyAuthenticator interface {
	Authenticate(ctx context.Context, raw string) (*models.APIKey, error)
}

// requireAPIKey admits API requests carrying "Authorization: Bearer <key>" with a live key,
// and attaches the key (its organization and scope) to the request. Everything else gets
// 401 with a WWW-Authenticate challenge. The organization of every API request comes from
// here, never from the body.
func requireAPIKey(keys apiKeyAuthenticator) fiber.Handler {
	return func(c *fiber.Ctx) error {
		k, err := apiKey(c, keys)
		if err != nil {
			c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="auditdb"`)
			return err
		}
		render.SetAPIKey(c, k)
		return c.Next()
	}
}

func apiKey(c *fiber.Ctx, keys apiKeyAuthenticator) (*models.APIKey, error) {
	h := c.Get(fiber.HeaderAuthorization)
	if h == "" {
		return nil, models.Unauthorized("an API key is required: send Authorization: Bearer <key>")
	}
	scheme, token, ok := strings.Cut(h, " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return nil, models.Unauthorized("the Authorization header must be: Bearer <key>")
	}
	return keys.Authenticate(c.UserContext(), token)
}

// requireScope admits requests whose API key has scope; others get 403.
func requireScope(scope string) fiber.Handler {
	return func(c *fiber.Ctx) error {
		k := render.APIKeyOf(c)
		if k == nil || k.Scope != scope {
			return models.Forbidden("this API key's scope does not allow this; it needs a " + scope + " key")
		}
		return c.Next()
	}
}
