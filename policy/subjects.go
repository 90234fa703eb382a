package policy

import (
	"context"
	"strconv"
	"strings"

	"auditdb/models"
)

// The two kinds of subject: console users ("user:<id>", see UserSubject and UserOf) and API
// keys ("apikey:<scope>:<id>", see APIKeyOf). A user's permissions come from the roles of
// the Casbin policy; a key holds no role, only the fixed permissions of its scope.

// apiKeyPrefix starts the subject name of an API key.
const apiKeyPrefix = "apikey:"

// APIKeyOf returns the subject of an API key.
func APIKeyOf(k *models.APIKey) Subject {
	return Subject{Name: apiKeyPrefix + k.Scope + ":" + strconv.FormatInt(k.ID, 10)}
}

// ScopePermissions are what each API key scope grants in the key's organization.
var ScopePermissions = map[string][]models.Permission{
	models.ScopeIngest: {{Resource: "audit.events", Action: "create"}},
	models.ScopeRead: {{Resource: "audit.events", Action: "read"}, {Resource: "audit.events", Action: "verify"},
		{Resource: "audit.alerts", Action: "read"}, {Resource: "audit.reports", Action: "read"}},
	models.ScopeGDPR: {{Resource: "audit.gdpr", Action: "read"}, {Resource: "audit.gdpr", Action: "create"}},
}

// Authorizer answers whether a subject may do an action on a resource in an organization.
type Authorizer interface {
	Allowed(ctx context.Context, sub Subject, org, resource, action string) (bool, error)
}

// KeyScoped returns an authorizer that decides for API-key subjects from the key's scope
// and passes every other subject to next.
func KeyScoped(next Authorizer) Authorizer { return keyScoped{next} }

type keyScoped struct{ next Authorizer }

func (a keyScoped) Allowed(ctx context.Context, sub Subject, org, resource, action string) (bool, error) {
	rest, ok := strings.CutPrefix(sub.Name, apiKeyPrefix)
	if !ok {
		return a.next.Allowed(ctx, sub, org, resource, action)
	}
	scope, _, _ := strings.Cut(rest, ":")
	return models.Covers(ScopePermissions[scope], models.Permission{Resource: resource, Action: action}), nil
}
