package handlers

import (
	"context"
	"strconv"

	"github.com/gofiber/fiber/v2"

	"auditdb/handlers/render"
	"auditdb/models"
	"auditdb/views/pages/settings"
)

// APIKeyManager creates, lists and revokes an organization's API keys.
type APIKeyManager interface {
	Create(ctx context.Context, org, name, scope string, by models.Actor) (string, *models.APIKey, error)
	List(ctx context.Context, org string) ([]models.APIKey, error)
	Revoke(ctx context.Context, org string, id int64, by models.Actor) error
}

// ListAPIKeys shows the current organization's keys and the form to create one.
func ListAPIKeys(keys APIKeyManager) fiber.Handler {
	return func(c *fiber.Ctx) error {
		return renderAPIKeys(c, keys, fiber.StatusOK, settings.APIKeysProps{FormScope: models.ScopeIngest, Flash: flash(c)})
	}
}

// CreateAPIKey creates a key and shows it once. The page is not cached, and the key never
// appears in a URL.
func CreateAPIKey(keys APIKeyManager) fiber.Handler {
	return func(c *fiber.Ctx) error {
		v := render.ViewerOf(c)
		name, scope := c.FormValue("name"), c.FormValue("scope")
		raw, k, err := keys.Create(c.UserContext(), v.OrgID, name, scope, ActorOf(c))
		if fe := refusalOf(err); fe != nil {
			return renderAPIKeys(c, keys, render.StatusOf(err), settings.APIKeysProps{FormName: name, FormScope: scope, Error: fe})
		}
		if err != nil {
			return err
		}
		c.Set(fiber.HeaderCacheControl, "no-store")
		return renderAPIKeys(c, keys, fiber.StatusCreated, settings.APIKeysProps{NewKey: raw, NewKeyName: k.Name,
			FormScope: models.ScopeIngest})
	}
}

// RevokeAPIKey revokes a key of the current organization; it stops working at once.
func RevokeAPIKey(keys APIKeyManager) fiber.Handler {
	return func(c *fiber.Ctx) error {
		v := render.ViewerOf(c)
		id, err := pathID(c, "API key")
		if err != nil {
			return err
		}
		if err := keys.Revoke(c.UserContext(), v.OrgID, id, ActorOf(c)); err != nil {
			return err
		}
		return redirectDone(c, "/settings/apikeys", doneAPIKeyRevoked, "")
	}
}

func renderAPIKeys(c *fiber.Ctx, keys APIKeyManager, status int, p settings.APIKeysProps) error {
	v := render.ViewerOf(c)
	list, err := keys.List(c.UserContext(), v.OrgID)
	if err != nil {
		return err
	}
	p.CSRF, p.Scopes = v.Session.CSRFToken(), []string{models.ScopeIngest, models.ScopeRead, models.ScopeGDPR}
	for _, k := range list {
		row := settings.APIKeyRow{ID: k.ID, Name: k.Name, Prefix: k.Prefix + "…", Scope: k.Scope,
			Created: k.CreatedAt, CreatedBy: k.CreatedBy, LastUsed: k.LastUsedAt, Revoked: k.RevokedAt,
			RevokeAction: "/settings/apikeys/" + strconv.FormatInt(k.ID, 10) + "/revoke"}
		p.Keys = append(p.Keys, row)
	}
	return render.HTML(c, status, settings.APIKeys(v.Shell("API keys", "settings"), p))
}
