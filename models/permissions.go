package models

import (
	"fmt"
	"sort"
	"strings"
)

// Wildcards a permission may use: AnyResource and AnyAction match everything; a resource
// ending in ".*" (such as "audit.*") matches every resource of that namespace.
const (
	AnyResource = "*"
	AnyAction   = "*"
)

// ResourceActions is one resource and the actions that mean something for it.
type ResourceActions struct {
	Resource string
	Actions  []string
}

// Resources is the permission vocabulary: every resource a role can be given, with the
// actions that make sense on it, in the order the role editor shows them.
var Resources = []ResourceActions{
	{"audit.events", []string{"read", "create", "update", "delete", "export", "verify", "pseudonymize"}},
	{"audit.alerts", []string{"read", "create", "update", "delete", "acknowledge", "resolve"}},
	{"audit.reports", []string{"read", "create", "update", "delete", "export"}},
	{"audit.presets", []string{"read", "create", "update", "delete"}},
	{"audit.retention", []string{"read", "create", "update", "delete"}},
	{"audit.gdpr", []string{"read", "create", "update", "delete", "export", "pseudonymize", "reidentify"}},
	{"audit.roles", []string{"read", "create", "update", "delete"}},
	{"audit.apikeys", []string{"read", "create", "delete"}},
	{"audit.metrics", []string{"read"}},
	{"organization.settings", []string{"read", "update"}},
	{"organization.members", []string{"read", "create", "update", "delete"}},
}

// Actions are every action of the vocabulary, in the role editor's column order.
var Actions = []string{"read", "create", "update", "delete", "export", "verify", "pseudonymize", "reidentify", "acknowledge", "resolve"}

// WildcardResources are the resource patterns a role may hold, widest first.
var WildcardResources = []string{AnyResource, "audit.*", "organization.*"}

// ResourceMatches reports whether the resource pattern held by a role covers requested.
// requested may itself be a pattern: "audit.*" covers "audit.events" and "audit.*", and
// "*" covers everything, but "audit.events" does not cover "audit.*". The Casbin matcher
// uses this very function, so enforcement and the escalation check agree.
func ResourceMatches(requested, held string) bool {
	if held == AnyResource || held == requested {
		return true
	}
	if prefix, ok := strings.CutSuffix(held, "*"); ok && strings.HasSuffix(prefix, ".") {
		return requested != AnyResource && strings.HasPrefix(requested, prefix)
	}
	return false
}

// ActionMatches reports whether the action held by a role covers requested ("*" covers
// everything, including "*").
func ActionMatches(requested, held string) bool {
	return held == AnyAction || held == requested
}

// Covers reports whether the permissions held cover p.
func Covers(held []Permission, p Permission) bool {
	for _, h := range held {
		if ResourceMatches(p.Resource, h.Resource) && ActionMatches(p.Action, h.Action) {
			return true
		}
	}
	return false
}

// String renders p as "resource:action".
func (p Permission) String() string { return p.Resource + ":" + p.Action }

// ParsePermission reads "resource:action". It returns a KindInvalid error for anything
// else; it does not check the vocabulary (see ValidatePermission).
func ParsePermission(s string) (Permission, error) {
	res, act, ok := strings.Cut(s, ":")
	if !ok || res == "" || act == "" {
		return Permission{}, Invalid("permissions", fmt.Sprintf("%q is not resource:action", s))
	}
	return Permission{Resource: res, Action: act}, nil
}

func actionsOf(resource string) []string {
	for _, r := range Resources {
		if r.Resource == resource {
			return r.Actions
		}
	}
	return nil
}

func isWildcardResource(resource string) bool {
	for _, w := range WildcardResources {
		if w == resource {
			return true
		}
	}
	return false
}

// MeaningfulActions returns the actions that mean something for a resource or resource
// pattern (for a pattern: the actions of any resource it covers), or nil for a resource
// outside the vocabulary.
func MeaningfulActions(resource string) []string {
	if !isWildcardResource(resource) {
		return actionsOf(resource)
	}
	seen := map[string]bool{}
	for _, r := range Resources {
		if ResourceMatches(r.Resource, resource) {
			for _, a := range r.Actions {
				seen[a] = true
			}
		}
	}
	var out []string
	for _, a := range Actions {
		if seen[a] {
			out = append(out, a)
		}
	}
	return out
}

// ValidatePermission returns a KindInvalid error for a resource or action outside the
// vocabulary, or a pair that means nothing (such as audit.metrics:delete).
func ValidatePermission(p Permission) error {
	meaningful := MeaningfulActions(p.Resource)
	if meaningful == nil {
		return Invalid("permissions", fmt.Sprintf("unknown resource %q", p.Resource))
	}
	if p.Action == AnyAction {
		return nil
	}
	if !contains(Actions, p.Action) {
		return Invalid("permissions", fmt.Sprintf("unknown action %q", p.Action))
	}
	if !contains(meaningful, p.Action) {
		return Invalid("permissions", fmt.Sprintf("%q cannot be granted on %s", p.Action, p.Resource))
	}
	return nil
}

// permissionRank orders permissions as the role editor lists them: wildcard resources
// first, then the vocabulary's order; actions in column order with "*" first.
func permissionRank(p Permission) (int, int) {
	ri := len(WildcardResources) + len(Resources)
	for i, w := range WildcardResources {
		if w == p.Resource {
			ri = i
		}
	}
	for i, r := range Resources {
		if r.Resource == p.Resource {
			ri = len(WildcardResources) + i
		}
	}
	ai := len(Actions) + 1
	if p.Action == AnyAction {
		ai = 0
	}
	for i, a := range Actions {
		if a == p.Action {
			ai = i + 1
		}
	}
	return ri, ai
}

// SortPermissions orders ps in place the way the role editor lists them and drops
// duplicates, returning the shortened slice.
func SortPermissions(ps []Permission) []Permission {
	sort.SliceStable(ps, func(i, j int) bool {
		ri, ai := permissionRank(ps[i])
		rj, aj := permissionRank(ps[j])
		if ri != rj {
			return ri < rj
		}
		if ai != aj {
			return ai < aj
		}
		return ps[i].String() < ps[j].String()
	})
	out := ps[:0]
	for _, p := range ps {
		if len(out) == 0 || out[len(out)-1] != p {
			out = append(out, p)
		}
	}
	return out
}
