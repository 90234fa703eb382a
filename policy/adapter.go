package policy

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/casbin/casbin/v2/model"
	"github.com/casbin/casbin/v2/persist"
	"gorm.io/gorm"

	"auditdb/models"
)

// UserPrefix starts the Casbin subject of a user: "user:<id>".
const UserPrefix = "user:"

// RoleEditor is what the adapter's write methods need from the role store.
type RoleEditor interface {
	Edit(ctx context.Context, org, name string, by models.Actor, edit func(cur *models.Role) (models.RoleInput, error)) (*models.Role, error)
}

// MemberEditor is what the adapter's write methods need from the member store.
type MemberEditor interface {
	Assign(ctx context.Context, org string, userID int64, role string, by models.Actor) error
	Remove(ctx context.Context, org string, userID int64, by models.Actor) error
}

// Snapshot is the whole policy at one policy_version, read in one transaction.
type Snapshot struct {
	Version   int64
	Namespace string // tells this database's policy apart in a shared Redis
	Lines     [][]string
}

// Adapter is a Casbin adapter over organization_role and memberships:
//
//	p, <role>, <org or *>, <resource>, <action>   one per permission of a role
//	g, <role>, <inherited role>, <org or *>        one per inherited role
//	g, user:<id>, <role>, <org>                    one per membership
//
// LoadPolicy reads them in one repeatable-read transaction. The write methods (Casbin's
// auto-save) store back through the role and member stores, so the Casbin API and the
// console's forms go through the same validation, escalation rules and self-audit (as the
// system actor "casbin-api"). SavePolicy, which would rewrite everything, is refused.
type Adapter struct {
	db      *gorm.DB
	roles   RoleEditor
	members MemberEditor
	actor   models.Actor

	mu   sync.Mutex
	last Snapshot // the snapshot LoadPolicy loaded last
}

var (
	_ persist.Adapter      = (*Adapter)(nil)
	_ persist.BatchAdapter = (*Adapter)(nil)
)

// NewAdapter returns an adapter reading db and writing through roles and members.
func NewAdapter(db *gorm.DB, roles RoleEditor, members MemberEditor) *Adapter {
	return &Adapter{db: db, roles: roles, members: members, actor: models.SystemActor("casbin-api")}
}

// writeTimeout bounds one auto-save write; Casbin's adapter interface carries no context.
const writeTimeout = 10 * time.Second

// Snapshot reads the policy and its version in one repeatable-read, read-only transaction.
func (a *Adapter) Snapshot(ctx context.Context) (Snapshot, error) {
	var snap Snapshot
	err := a.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var head struct {
			Version  int64
			Token    string
			Database string
		}
		if err := tx.Raw(`SELECT version, token, current_database() AS database FROM policy_version`).Scan(&head).Error; err != nil {
			return fmt.Errorf("policy: read version: %w", err)
		}
		snap.Version, snap.Namespace = head.Version, namespace(head.Database, head.Token)
		roles, err := models.LoadRoles(ctx, tx)
		if err != nil {
			return err
		}
		for org, set := range roles {
			for _, r := range set.Sorted() {
				for _, p := range r.Permissions {
					snap.Lines = append(snap.Lines, []string{"p", r.Name, org, p.Resource, p.Action})
				}
				for _, parent := range r.Inherits {
					snap.Lines = append(snap.Lines, []string{"g", r.Name, parent, org})
				}
			}
		}
		var ms []struct {
			UserID         int64
			OrganizationID string
			Role           string
		}
		if err := tx.Raw(`SELECT user_id, organization_id, role FROM memberships ORDER BY organization_id, user_id`).Scan(&ms).Error; err != nil {
			return fmt.Errorf("policy: load memberships: %w", err)
		}
		for _, m := range ms {
			snap.Lines = append(snap.Lines, []string{"g", UserSubject(m.UserID), m.Role, m.OrganizationID})
		}
		return nil
	}, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	return snap, err
}

// namespace derives a short Redis key prefix from the database's name and random token.
func namespace(database, token string) string {
	h := uint64(14695981039346656037)
	for _, b := range []byte(database + "/" + token) {
		h ^= uint64(b)
		h *= 1099511628211
	}
	return strconv.FormatUint(h, 36)
}

// LoadPolicy loads every role and membership into m.
func (a *Adapter) LoadPolicy(m model.Model) error {
	ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
	defer cancel()
	snap, err := a.Snapshot(ctx)
	if err != nil {
		return err
	}
	for _, line := range snap.Lines {
		if err := persist.LoadPolicyArray(line, m); err != nil {
			return fmt.Errorf("policy: load %v: %w", line, err)
		}
	}
	a.mu.Lock()
	a.last = Snapshot{Version: snap.Version, Namespace: snap.Namespace}
	a.mu.Unlock()
	return nil
}

// Loaded returns the version and namespace of the policy LoadPolicy loaded last.
func (a *Adapter) Loaded() (version int64, ns string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.last.Version, a.last.Namespace
}

// ErrSaveUnsupported is returned by SavePolicy.
var ErrSaveUnsupported = errors.New("policy: SavePolicy would rewrite every role and membership; change them one at a time through the Casbin API or the stores")

// SavePolicy is refused; see ErrSaveUnsupported.
func (a *Adapter) SavePolicy(model.Model) error { return ErrSaveUnsupported }

// AddPolicy stores one policy line: a permission of a role (creating the role when it does
// not exist), an inherited role, or a membership.
func (a *Adapter) AddPolicy(sec, ptype string, rule []string) error {
	return a.write(ptype, rule, true)
}

// RemovePolicy removes one policy line.
func (a *Adapter) RemovePolicy(sec, ptype string, rule []string) error {
	return a.write(ptype, rule, false)
}

// AddPolicies stores policy lines one by one, stopping at the first refused.
func (a *Adapter) AddPolicies(sec, ptype string, rules [][]string) error {
	for _, r := range rules {
		if err := a.write(ptype, r, true); err != nil {
			return err
		}
	}
	return nil
}

// RemovePolicies removes policy lines one by one, stopping at the first refused.
func (a *Adapter) RemovePolicies(sec, ptype string, rules [][]string) error {
	for _, r := range rules {
		if err := a.write(ptype, r, false); err != nil {
			return err
		}
	}
	return nil
}

// RemoveFilteredPolicy removes every stored line of ptype whose fields from fieldIndex on
// equal fieldValues ("" matches anything).
func (a *Adapter) RemoveFilteredPolicy(sec, ptype string, fieldIndex int, fieldValues ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
	defer cancel()
	snap, err := a.Snapshot(ctx)
	if err != nil {
		return err
	}
	for _, line := range snap.Lines {
		if line[0] != ptype {
			continue
		}
		rule := line[1:]
		match := true
		for i, v := range fieldValues {
			if v != "" && (fieldIndex+i >= len(rule) || rule[fieldIndex+i] != v) {
				match = false
				break
			}
		}
		if match {
			if err := a.write(ptype, rule, false); err != nil {
				return err
			}
		}
	}
	return nil
}

func (a *Adapter) write(ptype string, rule []string, add bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
	defer cancel()
	switch {
	case ptype == "p" && len(rule) == 4:
		role, org, perm := rule[0], rule[1], models.Permission{Resource: rule[2], Action: rule[3]}
		_, err := a.roles.Edit(ctx, org, role, a.actor, func(cur *models.Role) (models.RoleInput, error) {
			in := inputOf(cur)
			if add {
				in.Permissions = append(in.Permissions, perm)
			} else {
				in.Permissions = slices.DeleteFunc(in.Permissions, func(p models.Permission) bool { return p == perm })
			}
			return in, nil
		})
		return err
	case ptype == "g" && len(rule) == 3 && strings.HasPrefix(rule[0], UserPrefix):
		id, err := strconv.ParseInt(strings.TrimPrefix(rule[0], UserPrefix), 10, 64)
		if err != nil || id <= 0 {
			return fmt.Errorf("policy: %q is not a user subject", rule[0])
		}
		if add {
			return a.members.Assign(ctx, rule[2], id, rule[1], a.actor)
		}
		return a.members.Remove(ctx, rule[2], id, a.actor)
	case ptype == "g" && len(rule) == 3:
		role, parent, org := rule[0], rule[1], rule[2]
		_, err := a.roles.Edit(ctx, org, role, a.actor, func(cur *models.Role) (models.RoleInput, error) {
			in := inputOf(cur)
			if add {
				in.Inherits = append(in.Inherits, parent)
			} else {
				in.Inherits = slices.DeleteFunc(in.Inherits, func(n string) bool { return n == parent })
			}
			return in, nil
		})
		return err
	}
	return fmt.Errorf("policy: cannot store %s line %v", ptype, rule)
}

func inputOf(cur *models.Role) models.RoleInput {
	if cur == nil {
		return models.RoleInput{}
	}
	return models.RoleInput{Name: cur.Name, Description: cur.Description,
		Permissions: slices.Clone(cur.Permissions), Inherits: slices.Clone(cur.Inherits)}
}

// UserSubject returns the Casbin subject of user id.
func UserSubject(id int64) string { return UserPrefix + strconv.FormatInt(id, 10) }
