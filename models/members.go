package models

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"strconv"
	"strings"
	"time"

	"github.com/alexedwards/argon2id"
	"gorm.io/gorm"
)

// Member is a user's membership of one organization, shaped for the members page.
type Member struct {
	UserID             int64
	Email              string
	Name               string
	Role               string
	Since              time.Time
	MustChangePassword bool
}

// NewMember is a member to add: an existing user by email, or a new user.
type NewMember struct {
	Email string
	Name  string // for a new user
	Role  string
}

// AddedMember reports what Add did. OneTimePassword is set only when a new user was
// created; it is shown once and must be changed at first sign-in.
type AddedMember struct {
	Member
	NewUser         bool
	OneTimePassword string
}

// MemberStore manages memberships: who holds which role in an organization. Every change
// locks the organization, refuses privilege escalation and keeps at least one owner, and
// writes its self-audit event in the same transaction.
type MemberStore struct {
	db    *gorm.DB
	trail *AuditTrail
	// Refresh is run after every committed change (see PolicyRefresh).
	Refresh PolicyRefresh
	// Mailer sends invitation links; nil when the server has no email configured.
	Mailer InvitationMailer
}

// NewMemberStore returns a store over db that audits changes to trail.
func NewMemberStore(db *gorm.DB, trail *AuditTrail) *MemberStore {
	return &MemberStore{db: db, trail: trail}
}

const memberColumns = `u.id AS user_id, u.email, u.name, m.role, m.created_at AS since, u.must_change_password`

// List returns org's members by email.
func (s *MemberStore) List(ctx context.Context, org string) ([]Member, error) {
	var out []Member
	err := s.db.WithContext(ctx).Raw(`SELECT `+memberColumns+` FROM memberships m JOIN users u ON u.id = m.user_id
		WHERE m.organization_id = ? ORDER BY lower(u.email)`, org).Scan(&out).Error
	if err != nil {
		return nil, fmt.Errorf("models: list members: %w", err)
	}
	return out, nil
}

// Get returns member userID of org. It returns a KindNotFound error when the user is not a
// member of org (whatever other organizations it belongs to).
func (s *MemberStore) Get(ctx context.Context, org string, userID int64) (*Member, error) {
	return getMember(ctx, s.db, org, userID)
}

func getMember(ctx context.Context, tx *gorm.DB, org string, userID int64) (*Member, error) {
	var out []Member
	err := tx.WithContext(ctx).Raw(`SELECT `+memberColumns+` FROM memberships m JOIN users u ON u.id = m.user_id
		WHERE m.organization_id = ? AND m.user_id = ?`, org, userID).Scan(&out).Error
	if err != nil {
		return nil, fmt.Errorf("models: get member: %w", err)
	}
	if len(out) == 0 {
		return nil, NotFound("member")
	}
	return &out[0], nil
}

// Add gives in.Email the role in.Role in org at once, creating the user with a one-time
// password when no user has that email. Only a superadmin or the program may: it attaches an
// existing account without its owner's consent (a superadmin naming a new organization's
// owner); everyone else invites (Invite). It returns KindForbidden for any other actor,
// KindInvalid for a bad email or unknown role, KindConflict when the user is a member
// already, and KindNotFound for an unknown organization.
func (s *MemberStore) Add(ctx context.Context, org string, in NewMember, by Actor) (*AddedMember, error) {
	if err := checkNewMember(in, by); err != nil {
		return nil, err
	}
	if err := s.trail.prepare(ctx); err != nil {
		return nil, err
	}
	var out *AddedMember
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var err error
		out, err = addMember(ctx, tx, s.trail, org, in, by)
		return err
	})
	if err := s.Refresh.done(ctx, err); err != nil {
		return nil, err
	}
	return out, nil
}

// checkNewMember refuses what Add refuses before it opens a transaction: an actor that
// must invite instead, a bad email or a name too long.
func checkNewMember(in NewMember, by Actor) error {
	if !by.unrestricted() {
		return Forbidden("an account joins an organization by accepting an invitation; invite it instead")
	}
	email := strings.TrimSpace(in.Email)
	if addr, err := mail.ParseAddress(email); err != nil || addr.Address != email || len(email) > 320 {
		return Invalid("email", "must be a plain email address")
	}
	if len(strings.TrimSpace(in.Name)) > 255 {
		return Invalid("name", "must be at most 255 characters")
	}
	return nil
}

// addMember is Add inside tx (checked by checkNewMember first): it locks org, creates the
// user when the email has none, inserts the membership and audits member.add to trail.
func addMember(ctx context.Context, tx *gorm.DB, trail *AuditTrail, org string, in NewMember, by Actor) (*AddedMember, error) {
	email, name := strings.TrimSpace(in.Email), strings.TrimSpace(in.Name)
	if err := lockOrg(ctx, tx, org); err != nil {
		return nil, err
	}
	set, err := loadSet(ctx, tx, org)
	if err != nil {
		return nil, err
	}
	if set[in.Role] == nil {
		return nil, ErrNoRole
	}
	if err := checkGrant(ctx, tx, set, org, by, set.Effective(in.Role)); err != nil {
		return nil, err
	}
	var users []User
	if err := tx.Where("lower(email) = lower(?)", email).Limit(1).Find(&users).Error; err != nil {
		return nil, fmt.Errorf("models: look up user: %w", err)
	}
	out := &AddedMember{}
	if len(users) == 0 {
		password, err := RandomPassword(20)
		if err != nil {
			return nil, err
		}
		hash, err := argon2id.CreateHash(password, argonParams)
		if err != nil {
			return nil, fmt.Errorf("models: hash password: %w", err)
		}
		u := User{Email: email, Name: name, PasswordHash: hash, MustChangePassword: true}
		if err := tx.Create(&u).Error; err != nil {
			if errors.Is(err, gorm.ErrDuplicatedKey) {
				return nil, Conflict("email", "a user with this email was added at the same moment; try again")
			}
			return nil, fmt.Errorf("models: create user: %w", err)
		}
		users = append(users, u)
		out.NewUser, out.OneTimePassword = true, password
	}
	u := users[0]
	res := tx.Exec(`INSERT INTO memberships (user_id, organization_id, role) VALUES (?, ?, ?)
		ON CONFLICT (user_id, organization_id) DO NOTHING`, u.ID, org, in.Role)
	if res.Error != nil {
		return nil, fmt.Errorf("models: add membership: %w", res.Error)
	}
	if res.RowsAffected == 0 {
		return nil, Conflict("email", "is a member already; change their role instead")
	}
	m, err := getMember(ctx, tx, org, u.ID)
	if err != nil {
		return nil, err
	}
	out.Member = *m
	err = trail.RecordTx(ctx, tx, AuditEntry{Org: org, Action: ActionMemberAdd, Actor: by, TargetType: "user",
		TargetID: strconv.FormatInt(u.ID, 10), Outcome: fmt.Sprintf("%s added as %s", u.Email, in.Role),
		Details: map[string]any{"member": u.Email, "role": in.Role, "newUser": out.NewUser},
		Change:  &ConfigChange{Field: "membership." + strconv.FormatInt(u.ID, 10) + ".role", New: in.Role}})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// SetRole gives member userID of org another role. It returns KindNotFound when the user is
// not a member of org, KindInvalid for an unknown role, KindForbidden when the actor does
// not hold every permission of the member's current and new role, and KindConflict when it
// would leave org without an owner.
func (s *MemberStore) SetRole(ctx context.Context, org string, userID int64, role string, by Actor) error {
	return s.Refresh.done(ctx, s.change(ctx, org, userID, by, &role))
}

// Remove ends member userID's membership of org, with the same errors as SetRole.
func (s *MemberStore) Remove(ctx context.Context, org string, userID int64, by Actor) error {
	return s.Refresh.done(ctx, s.change(ctx, org, userID, by, nil))
}

// change sets the member's role to *role, or removes the membership when role is nil.
func (s *MemberStore) change(ctx context.Context, org string, userID int64, by Actor, role *string) error {
	if err := s.trail.prepare(ctx); err != nil {
		return err
	}
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := lockOrg(ctx, tx, org); err != nil {
			return err
		}
		m, err := getMember(ctx, tx, org, userID)
		if err != nil {
			return err
		}
		set, err := loadSet(ctx, tx, org)
		if err != nil {
			return err
		}
		want := set.Effective(m.Role)
		if role != nil {
			if set[*role] == nil {
				return ErrNoRole
			}
			want = append(want, set.Effective(*role)...)
		}
		if err := checkGrant(ctx, tx, set, org, by, want); err != nil {
			return err
		}
		if m.Role == OwnerRole && (role == nil || *role != OwnerRole) {
			var owners int64
			if err := tx.Raw(`SELECT count(*) FROM memberships WHERE organization_id = ? AND role = ?`, org, OwnerRole).
				Scan(&owners).Error; err != nil {
				return fmt.Errorf("models: count owners: %w", err)
			}
			if owners <= 1 {
				return Conflict("role", "the last owner of an organization cannot be removed or demoted; make someone else owner first")
			}
		}
		target := strconv.FormatInt(userID, 10)
		field := "membership." + target + ".role"
		entry := AuditEntry{Org: org, Actor: by, TargetType: "user", TargetID: target}
		if role == nil {
			err = tx.Exec(`DELETE FROM memberships WHERE organization_id = ? AND user_id = ?`, org, userID).Error
			entry.Action, entry.Outcome = ActionMemberRemove, fmt.Sprintf("%s removed (was %s)", m.Email, m.Role)
			entry.Details = map[string]any{"member": m.Email, "previousRole": m.Role}
			entry.Change = &ConfigChange{Field: field, Previous: m.Role}
		} else {
			if *role == m.Role {
				return nil
			}
			err = tx.Exec(`UPDATE memberships SET role = ? WHERE organization_id = ? AND user_id = ?`, *role, org, userID).Error
			entry.Action, entry.Outcome = ActionMemberUpdate, fmt.Sprintf("%s changed from %s to %s", m.Email, m.Role, *role)
			entry.Details = map[string]any{"member": m.Email, "previousRole": m.Role, "role": *role}
			entry.Change = &ConfigChange{Field: field, Previous: m.Role, New: *role}
		}
		if err != nil {
			return fmt.Errorf("models: change membership: %w", err)
		}
		return s.trail.RecordTx(ctx, tx, entry)
	})
}

// Assign gives user userID the role in org, adding the membership when there is none (a
// Casbin grouping line names a membership into being). It checks like Add and SetRole and
// returns KindNotFound for an unknown user or organization.
func (s *MemberStore) Assign(ctx context.Context, org string, userID int64, role string, by Actor) error {
	if _, err := s.Get(ctx, org, userID); err == nil {
		return s.SetRole(ctx, org, userID, role, by)
	} else if KindOf(err) != KindNotFound {
		return err
	}
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
		if set[role] == nil {
			return ErrNoRole
		}
		if err := checkGrant(ctx, tx, set, org, by, set.Effective(role)); err != nil {
			return err
		}
		var users []User
		if err := tx.Where("id = ?", userID).Limit(1).Find(&users).Error; err != nil {
			return fmt.Errorf("models: look up user: %w", err)
		}
		if len(users) == 0 {
			return NotFound("user")
		}
		res := tx.Exec(`INSERT INTO memberships (user_id, organization_id, role) VALUES (?, ?, ?)
			ON CONFLICT (user_id, organization_id) DO NOTHING`, userID, org, role)
		if res.Error != nil {
			return fmt.Errorf("models: add membership: %w", res.Error)
		}
		if res.RowsAffected == 0 {
			return Conflict("user", "became a member at the same moment; try again")
		}
		target := strconv.FormatInt(userID, 10)
		return s.trail.RecordTx(ctx, tx, AuditEntry{Org: org, Action: ActionMemberAdd, Actor: by, TargetType: "user",
			TargetID: target, Outcome: fmt.Sprintf("%s added as %s", users[0].Email, role),
			Details: map[string]any{"member": users[0].Email, "role": role, "newUser": false},
			Change:  &ConfigChange{Field: "membership." + target + ".role", New: role}})
	}))
}
