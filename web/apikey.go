package web

import (
	"context"
	"strings"

	"github.com/gofiber/fiber/v2"

	"auditdb/handlers/render"
	"auditdb/models"
	"auditdb/policy"
)

type apiKeyAuthenticator interface {
	Authenticate(ctx context.Context, raw string) (*models.APIKey, error)
}

// requireAPIKey admits API requests carrying "Authorization: Bearer <key>" with a live key
// and makes the key the request's principal, in the key's organization: the organization
// of every API request comes from here, never from the body. Everything else gets 401
// with a WWW-Authenticate challenge.
func requireAPIKey(keys apiKeyAuthenticator) fiber.Handler {
	return func(c *fiber.Ctx) error {
		k, err := apiKey(c, keys)
		if err != nil {
			c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="auditdb"`)
			return err
		}
		c.Set(fiber.HeaderCacheControl, "no-store") // answers carry the organization's events
		render.SetAPIKey(c, k)
		render.SetPrincipal(c, render.Principal{Subject: policy.APIKeyOf(k), Org: k.OrganizationID})
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
