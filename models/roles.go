package models

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"unicode/utf8"

	"gorm.io/gorm"
)

// OwnerRole is the default role whose last holder in an organization may not be removed or
// demoted.
const OwnerRole = "org:owner"

// Role is a row of organization_role: a named set of permissions, plus the roles whose
// permissions it inherits. A role stored under GlobalOrg is a default every organization
// sees; organizations cannot edit defaults, but may copy them into roles of their own.
type Role struct {
	OrganizationID string
	Name           string
	Description    string
	Permissions    []Permission
	Inherits       []string
}

// Global reports whether r is a default role shared by every organization.
func (r *Role) Global() bool { return r.OrganizationID == GlobalOrg }

// RoleSet is the roles one organization sees, by name: its own and the global defaults.
// Names never clash, because organization role names may not contain ':' and every
// default's does.
type RoleSet map[string]*Role

// Effective returns name's permissions together with everything it inherits, directly or
// through other roles, in the role editor's order. An unknown name has none; a cycle (which
// the store refuses to save) is walked once.
func (rs RoleSet) Effective(name string) []Permission {
	var out []Permission
	seen := map[string]bool{}
	var walk func(string)
	walk = func(n string) {
		r, ok := rs[n]
		if !ok || seen[n] {
			return
		}
		seen[n] = true
		out = append(out, r.Permissions...)
		for _, parent := range r.Inherits {
			walk(parent)
		}
	}
	walk(name)
	return SortPermissions(out)
}

// cycleThrough returns a path name → … → name when name inherits itself, else nil.
func (rs RoleSet) cycleThrough(name string) []string {
	var path []string
	onPath := map[string]bool{}
	done := map[string]bool{}
	var visit func(string) bool
	visit = func(n string) bool {
		if n == name && len(path) > 0 {
			path = append(path, n)
			return true
		}
		if onPath[n] || done[n] {
			return false
		}
		r, ok := rs[n]
		if !ok {
			return false
		}
		onPath[n] = true
		path = append(path, n)
		for _, parent := range r.Inherits {
			if visit(parent) {
				return true
			}
		}
		path = path[:len(path)-1]
		onPath[n] = false
		done[n] = true
		return false
	}
	if visit(name) {
		return path
	}
	return nil
}

// Sorted returns the roles with the defaults first, then by name.
func (rs RoleSet) Sorted() []*Role {
	out := make([]*Role, 0, len(rs))
	for _, r := range rs {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Global() != out[j].Global() {
			return out[i].Global()
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// InheritedBy returns the roles of the set that inherit name directly, by name.
func (rs RoleSet) InheritedBy(name string) []string {
	var out []string
	for _, r := range rs {
		if contains(r.Inherits, name) {
			out = append(out, r.Name)
		}
	}
	sort.Strings(out)
	return out
}

// RoleInput is a role as the editor (or the Casbin API) submits it. Name is ignored on
// update: roles are not renamed, since memberships refer to them by name.
type RoleInput struct {
	Name        string
	Description string
	Permissions []Permission
	Inherits    []string
}

// RoleNamePattern is what an organization role may be called: lower-case letters, digits,
// '.', '_' and '-', starting with a letter. ':' is reserved for the defaults (org:…) and
// user subjects (user:…).
var RoleNamePattern = regexp.MustCompile(`^[a-z][a-z0-9._-]{0,49}$`)

// MaxRoleDescription is the longest role description accepted, in characters.
const MaxRoleDescription = 500

// RoleStore reads and changes organization roles. Every change runs in one transaction
// that locks the organization (serializing it with membership changes), validates the
// whole resulting role graph, refuses privilege escalation and writes the self-audit
// event.
type RoleStore struct {
	db    *gorm.DB
	trail *AuditTrail
	// Refresh is run after every committed change (see PolicyRefresh).
	Refresh PolicyRefresh
}

// NewRoleStore returns a store over db that audits changes to trail.
func NewRoleStore(db *gorm.DB, trail *AuditTrail) *RoleStore { return &RoleStore{db: db, trail: trail} }

type roleRow struct {
	OrganizationID string
	Name           string
	Description    *string
	Permissions    []byte
	Inherits       []byte
}

func (r roleRow) role() (*Role, error) {
	out := &Role{OrganizationID: r.OrganizationID, Name: r.Name}
	if r.Description != nil {
		out.Description = *r.Description
	}
	if err := json.Unmarshal(r.Permissions, &out.Permissions); err != nil {
		return nil, fmt.Errorf("models: role %s/%s: permissions: %w", r.OrganizationID, r.Name, err)
	}
	if err := json.Unmarshal(r.Inherits, &out.Inherits); err != nil {
		return nil, fmt.Errorf("models: role %s/%s: inherits: %w", r.OrganizationID, r.Name, err)
	}
	return out, nil
}

// LoadRoles returns every role of every organization, keyed by organization (GlobalOrg for
// the defaults). The policy adapter loads the whole policy through it.
func LoadRoles(ctx context.Context, tx *gorm.DB) (map[string]RoleSet, error) {
	var rows []roleRow
	err := tx.WithContext(ctx).Raw(`SELECT organization_id, name, description, permissions, inherits
		FROM organization_role ORDER BY organization_id, name`).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("models: load roles: %w", err)
	}
	out := map[string]RoleSet{}
	for _, row := range rows {
		r, err := row.role()
		if err != nil {
			return nil, err
		}
		if out[r.OrganizationID] == nil {
			out[r.OrganizationID] = RoleSet{}
		}
		out[r.OrganizationID][r.Name] = r
	}
	return out, nil
}

func loadSet(ctx context.Context, tx *gorm.DB, org string) (RoleSet, error) {
	var rows []roleRow
	err := tx.WithContext(ctx).Raw(`SELECT organization_id, name, description, permissions, inherits
		FROM organization_role WHERE organization_id IN (?, ?)`, org, GlobalOrg).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("models: load roles of %s: %w", org, err)
	}
	set := RoleSet{}
	for _, row := range rows {
		r, err := row.role()
		if err != nil {
			return nil, err
		}
		set[r.Name] = r
	}
	return set, nil
}

// Set returns the roles org sees: its own and the defaults.
func (s *RoleStore) Set(ctx context.Context, org string) (RoleSet, error) {
	return loadSet(ctx, s.db, org)
}

// Get returns role name as org sees it (its own, or a default). It returns a KindNotFound
// error when org has no such role, including when another organization has one.
func (s *RoleStore) Get(ctx context.Context, org, name string) (*Role, error) {
	set, err := loadSet(ctx, s.db, org)
	if err != nil {
		return nil, err
	}
	r, ok := set[name]
	if !ok {
		return nil, NotFound("role")
	}
	return r, nil
}

// Usage returns how many members of org hold each role, by role name.
func (s *RoleStore) Usage(ctx context.Context, org string) (map[string]int, error) {
	var rows []struct {
		Role string
		N    int
	}
	err := s.db.WithContext(ctx).Raw(`SELECT role, count(*) AS n FROM memberships WHERE organization_id = ? GROUP BY role`, org).
		Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("models: role usage: %w", err)
	}
	out := map[string]int{}
	for _, r := range rows {
		out[r.Role] = r.N
	}
	return out, nil
}

// HeldBy returns the effective permissions user holds in org through its membership (none
// when it is not a member).
func (s *RoleStore) HeldBy(ctx context.Context, org string, userID int64) ([]Permission, error) {
	set, err := loadSet(ctx, s.db, org)
	if err != nil {
		return nil, err
	}
	return heldBy(ctx, s.db, set, org, userID)
}

func heldBy(ctx context.Context, tx *gorm.DB, set RoleSet, org string, userID int64) ([]Permission, error) {
	var roles []string
	err := tx.WithContext(ctx).Raw(`SELECT role FROM memberships WHERE organization_id = ? AND user_id = ?`, org, userID).
		Scan(&roles).Error
	if err != nil {
		return nil, fmt.Errorf("models: look up membership: %w", err)
	}
	if len(roles) == 0 {
		return nil, nil
	}
	return set.Effective(roles[0]), nil
}

// checkGrant returns a KindForbidden error naming the first permission of want that the
// actor does not hold in org itself. held is computed from the role set as it was before
// the change, so nobody can lift themselves by editing their own role.
func checkGrant(ctx context.Context, tx *gorm.DB, before RoleSet, org string, by Actor, want []Permission) error {
	if by.unrestricted() {
		return nil
	}
	held, err := heldBy(ctx, tx, before, org, by.UserID)
	if err != nil {
		return err
	}
	for _, p := range want {
		if !Covers(held, p) {
			return Forbidden(fmt.Sprintf("you cannot grant %s: you do not hold it yourself", p))
		}
	}
	return nil
}

// checkRemoval is checkGrant's other half for an edit of role name: taking a permission
// away needs the same standing as giving it. It returns a KindForbidden error when the edit
// removes from name a permission the actor does not hold, or weakens a role (name itself or
// any role inheriting it, directly or not) held by a member whose effective permissions,
// before the edit, the actor does not cover — as the actor could not demote that member
// directly. Held permissions are those before the edit, like checkGrant's.
func checkRemoval(ctx context.Context, tx *gorm.DB, before, after RoleSet, org, name string, by Actor) error {
	if by.unrestricted() {
		return nil
	}
	held, err := heldBy(ctx, tx, before, org, by.UserID)
	if err != nil {
		return err
	}
	for _, role := range before.Sorted() {
		removed := Removed(before.Effective(role.Name), after.Effective(role.Name))
		if len(removed) == 0 {
			continue
		}
		for _, p := range removed {
			if !Covers(held, p) {
				return Forbidden(fmt.Sprintf("you cannot take %s away from role %s: you do not hold it yourself", p, role.Name))
			}
		}
		var holders []int64
		if err := tx.WithContext(ctx).Raw(`SELECT user_id FROM memberships WHERE organization_id = ? AND role = ?`, org, role.Name).
			Scan(&holders).Error; err != nil {
			return fmt.Errorf("models: role holders: %w", err)
		}
		if len(holders) == 0 {
			continue
		}
		for _, p := range before.Effective(role.Name) {
			if !Covers(held, p) {
				what := "role " + role.Name
				if role.Name != name {
					what += " (which inherits " + name + ")"
				}
				return Forbidden(fmt.Sprintf("you cannot weaken %s: it is held by a member with permissions you do not hold (%s)", what, p))
			}
		}
	}
	return nil
}

// Removed returns the permissions of before that after no longer covers, in before's order.
func Removed(before, after []Permission) []Permission {
	var out []Permission
	for _, p := range before {
		if !Covers(after, p) {
			out = append(out, p)
		}
	}
	return out
}

// lockOrg takes the organization's row lock for the rest of the transaction, so role and
// membership changes of one organization happen one at a time. It returns a KindNotFound
// error for an unknown organization.
func lockOrg(ctx context.Context, tx *gorm.DB, org string) error {
	if org == GlobalOrg {
		return tx.WithContext(ctx).Exec("SELECT pg_advisory_xact_lock(?)", globalRolesLockKey).Error
	}
	var ids []string
	if err := tx.WithContext(ctx).Raw("SELECT id FROM organizations WHERE id = ? FOR UPDATE", org).Scan(&ids).Error; err != nil {
		return fmt.Errorf("models: lock organization: %w", err)
	}
	if len(ids) == 0 {
		return NotFound("organization")
	}
	return nil
}

// globalRolesLockKey serializes changes to the default roles.
const globalRolesLockKey = 72_000_004

// normalize checks and tidies a role input against the set it will join. It returns a
// KindInvalid error naming the field at fault.
func (in RoleInput) normalize(set RoleSet, name string) (RoleInput, error) {
	out := RoleInput{Name: name, Description: strings.TrimSpace(in.Description)}
	if !utf8.ValidString(out.Description) || utf8.RuneCountInString(out.Description) > MaxRoleDescription {
		return out, Invalid("description", fmt.Sprintf("must be at most %d characters of text", MaxRoleDescription))
	}
	for _, p := range in.Permissions {
		p.Resource, p.Action = strings.TrimSpace(p.Resource), strings.TrimSpace(p.Action)
		if err := ValidatePermission(p); err != nil {
			return out, err
		}
		out.Permissions = append(out.Permissions, p)
	}
	out.Permissions = SortPermissions(out.Permissions)
	if out.Permissions == nil {
		out.Permissions = []Permission{}
	}
	out.Inherits = []string{}
	for _, parent := range in.Inherits {
		parent = strings.TrimSpace(parent)
		switch {
		case parent == name:
			return out, Invalid("inherits", "a role cannot inherit itself")
		case set[parent] == nil:
			return out, Invalid("inherits", fmt.Sprintf("unknown role %q", parent))
		case contains(out.Inherits, parent):
			continue
		}
		out.Inherits = append(out.Inherits, parent)
	}
	sort.Strings(out.Inherits)
	return out, nil
}

// changeMode says whether a change may create a role, update one, or either.
type changeMode int

const (
	createRole changeMode = iota
	updateRole
	upsertRole
)

// Create adds role in.Name to org. It returns KindInvalid for a bad name, unknown
// resources, actions or inherited roles, and an inheritance cycle; KindConflict when the
// name is taken (by org or by a default); KindForbidden when the role would grant a
// permission the actor does not hold; KindNotFound for an unknown organization.
func (s *RoleStore) Create(ctx context.Context, org string, in RoleInput, by Actor) (*Role, error) {
	name := strings.TrimSpace(in.Name)
	return s.change(ctx, org, name, by, createRole, func(*Role) (RoleInput, error) { return in, nil })
}

// Update replaces the description, permissions and inheritance of org's role name. It
// returns KindNotFound when org has no such role of its own, KindForbidden for a default
// role or an escalation, and KindInvalid like Create.
func (s *RoleStore) Update(ctx context.Context, org, name string, in RoleInput, by Actor) (*Role, error) {
	return s.change(ctx, org, name, by, updateRole, func(*Role) (RoleInput, error) { return in, nil })
}

// Edit applies edit to role name of org, creating the role first when it does not exist
// (the Casbin API's behaviour: a policy line names its role into being). It validates like
// Create and Update.
func (s *RoleStore) Edit(ctx context.Context, org, name string, by Actor, edit func(cur *Role) (RoleInput, error)) (*Role, error) {
	return s.change(ctx, org, name, by, upsertRole, edit)
}

func (s *RoleStore) change(ctx context.Context, org, name string, by Actor, mode changeMode, edit func(cur *Role) (RoleInput, error)) (*Role, error) {
	if org == GlobalOrg && by.System == "" {
		return nil, Forbidden("default roles are shared by every organization and cannot be edited; copy one instead")
	}
	if org != GlobalOrg {
		if err := s.trail.prepare(ctx); err != nil {
			return nil, err
		}
	}
	var saved *Role
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := lockOrg(ctx, tx, org); err != nil {
			return err
		}
		before, err := loadSet(ctx, tx, org)
		if err != nil {
			return err
		}
		cur, exists := before[name]
		switch {
		case exists && cur.OrganizationID != org:
			if mode == createRole {
				return Conflict("name", fmt.Sprintf("%q is the name of a default role", name))
			}
			return Forbidden("default roles are shared by every organization and cannot be edited; copy one instead")
		case exists && mode == createRole:
			return Conflict("name", fmt.Sprintf("a role named %q already exists", name))
		case !exists && mode == updateRole:
			return NotFound("role")
		case !exists && org != GlobalOrg && !RoleNamePattern.MatchString(name):
			return Invalid("name", "must be 1-50 lower-case letters, digits, '.', '_' or '-', starting with a letter (names with ':' are reserved for the default roles)")
		}
		var curCopy *Role
		if exists {
			c := *cur
			curCopy = &c
		}
		raw, err := edit(curCopy)
		if err != nil {
			return err
		}
		in, err := raw.normalize(before, name)
		if err != nil {
			return err
		}
		after := RoleSet{}
		for k, v := range before {
			after[k] = v
		}
		role := &Role{OrganizationID: org, Name: name, Description: in.Description, Permissions: in.Permissions, Inherits: in.Inherits}
		after[name] = role
		if cycle := after.cycleThrough(name); cycle != nil {
			return Invalid("inherits", "inheritance would make a cycle: "+strings.Join(cycle, " → "))
		}
		if err := checkGrant(ctx, tx, before, org, by, after.Effective(name)); err != nil {
			return err
		}
		if err := checkRemoval(ctx, tx, before, after, org, name, by); err != nil {
			return err
		}
		perms, _ := json.Marshal(role.Permissions)
		inherits, _ := json.Marshal(role.Inherits)
		if exists {
			err = tx.Exec(`UPDATE organization_role SET description = ?, permissions = ?, inherits = ?
				WHERE organization_id = ? AND name = ?`, role.Description, string(perms), string(inherits), org, name).Error
		} else {
			err = tx.Exec(`INSERT INTO organization_role (organization_id, name, description, permissions, inherits)
				VALUES (?, ?, ?, ?, ?)`, org, name, role.Description, string(perms), string(inherits)).Error
		}
		if err != nil {
			return fmt.Errorf("models: save role %s: %w", name, err)
		}
		saved = role
		if org == GlobalOrg {
			return nil // the defaults belong to no organization's audit log
		}
		entry := AuditEntry{Org: org, Action: ActionRoleCreate, Actor: by, TargetType: "role", TargetID: name,
			Outcome: "role " + name + " created",
			Details: map[string]any{"permissions": permStrings(role.Permissions), "inherits": role.Inherits},
			Change:  &ConfigChange{Field: "organization_role." + name, New: roleDefinition(role)}}
		if exists {
			entry.Action, entry.Outcome = ActionRoleUpdate, "role "+name+" updated"
			entry.Change.Previous = roleDefinition(cur)
		}
		return s.trail.RecordTx(ctx, tx, entry)
	})
	if err := s.Refresh.done(ctx, err); err != nil {
		return nil, err
	}
	return saved, nil
}

// Delete removes org's role name. It returns KindNotFound when org has no such role,
// KindForbidden for a default role, and KindConflict while a member holds it or another
// role inherits it.
func (s *RoleStore) Delete(ctx context.Context, org, name string, by Actor) error {
	if err := s.trail.prepare(ctx); err != nil {
		return err
	}
	return s.Refresh.done(ctx, s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := lockOrg(ctx, tx, org); err != nil {
			return err
		}
		set, err := loadSet(ctx, tx, org)
		if err != nil {
			return err
		}
		cur, ok := set[name]
		if !ok {
			return NotFound("role")
		}
		if cur.Global() {
			return Forbidden("default roles are shared by every organization and cannot be deleted")
		}
		var holders int64
		if err := tx.Raw(`SELECT count(*) FROM memberships WHERE organization_id = ? AND role = ?`, org, name).
			Scan(&holders).Error; err != nil {
			return fmt.Errorf("models: role holders: %w", err)
		}
		if holders > 0 {
			return Conflict("name", fmt.Sprintf("role %q is still held by %d member(s); give them another role first", name, holders))
		}
		if heirs := set.InheritedBy(name); len(heirs) > 0 {
			return Conflict("name", fmt.Sprintf("role %q is inherited by %s; remove it there first", name, strings.Join(heirs, ", ")))
		}
		if err := tx.Exec(`DELETE FROM organization_role WHERE organization_id = ? AND name = ?`, org, name).Error; err != nil {
			return fmt.Errorf("models: delete role %s: %w", name, err)
		}
		return s.trail.RecordTx(ctx, tx, AuditEntry{Org: org, Action: ActionRoleDelete, Actor: by, TargetType: "role",
			TargetID: name, Outcome: "role " + name + " deleted",
			Change: &ConfigChange{Field: "organization_role." + name, Previous: roleDefinition(cur)}})
	}))
}

func permStrings(ps []Permission) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return out
}

// roleDefinition is how a role appears in config_change_event.
func roleDefinition(r *Role) map[string]any {
	return map[string]any{"description": r.Description, "permissions": r.Permissions, "inherits": r.Inherits}
}

// ErrNoRole is returned by membership changes naming a role the organization lacks.
var ErrNoRole = Invalid("role", "is not a role of this organization")
