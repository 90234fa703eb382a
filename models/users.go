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

// User is a console user. PasswordHash is an argon2id PHC string.
type User struct {
	ID           int64  `gorm:"column:id;primaryKey"`
	Email        string `gorm:"column:email"`
	Name         string `gorm:"column:name"`
	PasswordHash string `gorm:"column:password_hash"`
	Superadmin   bool   `gorm:"column:superadmin"`
	Disabled     bool   `gorm:"column:disabled"`
	// MustChangePassword is set for a user created with a one-time password: the console
	// lets it do nothing but choose a new password.
	MustChangePassword bool `gorm:"column:must_change_password"`
	// TimeZone is the IANA zone the user reads times in; nil is UTC.
	TimeZone  *string   `gorm:"column:time_zone"`
	CreatedAt time.Time `gorm:"column:created_at"`
	UpdatedAt time.Time `gorm:"column:updated_at"`
}

// TableName maps User to users.
func (User) TableName() string { return "users" }

// Membership gives a user a role in an organization.
type Membership struct {
	UserID         int64     `gorm:"column:user_id;primaryKey"`
	OrganizationID string    `gorm:"column:organization_id;primaryKey"`
	Role           string    `gorm:"column:role"`
	CreatedAt      time.Time `gorm:"column:created_at"`
}

// TableName maps Membership to memberships.
func (Membership) TableName() string { return "memberships" }

// MinPasswordLength is the shortest password accepted.
const MinPasswordLength = 12

// argonParams follow the OWASP minimum for argon2id (19 MiB, 2 passes, 1 lane).
var argonParams = &argon2id.Params{Memory: 19 * 1024, Iterations: 2, Parallelism: 1, SaltLength: 16, KeyLength: 32}

// dummyHash is compared against when the user does not exist, so an unknown email costs
// the same time as a wrong password.
var dummyHash, _ = argon2id.CreateHash("not-a-real-password", argonParams)

// ErrBadCredentials is returned for a wrong password and an unknown user alike.
var ErrBadCredentials = Unauthorized("email or password is incorrect")

// UserStore manages users and their memberships.
type UserStore struct {
	db    *gorm.DB
	trail *AuditTrail // nil: ChangePasswordBy is unavailable
}

// NewUserStore returns a store over db.
func NewUserStore(db *gorm.DB) *UserStore { return &UserStore{db: db} }

// NewAuditedUserStore returns a store over db whose ChangePasswordBy audits to trail.
func NewAuditedUserStore(db *gorm.DB, trail *AuditTrail) *UserStore {
	return &UserStore{db: db, trail: trail}
}

// NewUser describes a user to create.
type NewUser struct {
	Email, Name, Password string
	Superadmin            bool
	OrgID, Role           string // optional first membership
}

// Create adds a user (and the membership, when OrgID is set) in one transaction. It returns
// KindInvalid for a bad email, short password or unknown role, KindNotFound for an unknown
// organization and KindConflict for a taken email.
func (s *UserStore) Create(ctx context.Context, nu NewUser) (*User, error) {
	email := strings.TrimSpace(nu.Email)
	if addr, err := mail.ParseAddress(email); err != nil || addr.Address != email || len(email) > 320 {
		return nil, Invalid("email", "must be a plain email address")
	}
	if len(nu.Password) < MinPasswordLength {
		return nil, Invalid("password", fmt.Sprintf("must be at least %d characters", MinPasswordLength))
	}
	if !nu.Superadmin && nu.OrgID == "" {
		return nil, Invalid("org", "a user needs an organization and role, or superadmin")
	}
	hash, err := argon2id.CreateHash(nu.Password, argonParams)
	if err != nil {
		return nil, fmt.Errorf("models: hash password: %w", err)
	}
	u := &User{Email: email, Name: strings.TrimSpace(nu.Name), PasswordHash: hash, Superadmin: nu.Superadmin}
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Create(u).Error; err != nil {
			if errors.Is(err, gorm.ErrDuplicatedKey) {
				return Conflict("email", "a user with this email already exists")
			}
			return fmt.Errorf("models: create user: %w", err)
		}
		if nu.OrgID == "" {
			return nil
		}
		return addMembership(ctx, tx, u.ID, nu.OrgID, nu.Role)
	})
	if err != nil {
		return nil, err
	}
	return u, nil
}

// AddMembership gives user a role in org. It returns KindNotFound for an unknown
// organization and KindInvalid for a role the organization does not define.
func (s *UserStore) AddMembership(ctx context.Context, userID int64, org, role string) error {
	return addMembership(ctx, s.db.WithContext(ctx), userID, org, role)
}

func addMembership(ctx context.Context, tx *gorm.DB, userID int64, org, role string) error {
	var n int64
	if err := tx.Model(&Organization{}).Where("id = ?", org).Count(&n).Error; err != nil {
		return fmt.Errorf("models: look up organization: %w", err)
	}
	if n == 0 {
		return NotFound("organization")
	}
	if err := tx.Table("organization_role").Where("organization_id IN (?, '*') AND name = ?", org, role).Count(&n).Error; err != nil {
		return fmt.Errorf("models: look up role: %w", err)
	}
	if n == 0 {
		return Invalid("role", "is not a role of this organization")
	}
	m := Membership{UserID: userID, OrganizationID: org, Role: role}
	err := tx.Exec(`INSERT INTO memberships (user_id, organization_id, role) VALUES (?, ?, ?)
		ON CONFLICT (user_id, organization_id) DO UPDATE SET role = EXCLUDED.role`, m.UserID, m.OrganizationID, m.Role).Error
	if err != nil {
		return fmt.Errorf("models: add membership: %w", err)
	}
	return nil
}

// Authenticate checks an email and password. It returns ErrBadCredentials for an unknown
// user, a disabled user and a wrong password alike, spending the same hashing time on each.
func (s *UserStore) Authenticate(ctx context.Context, email, password string) (*User, error) {
	var u User
	err := s.db.WithContext(ctx).Where("lower(email) = lower(?)", strings.TrimSpace(email)).Take(&u).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		argon2id.ComparePasswordAndHash(password, dummyHash)
		return nil, ErrBadCredentials
	}
	if err != nil {
		return nil, fmt.Errorf("models: look up user: %w", err)
	}
	ok, err := argon2id.ComparePasswordAndHash(password, u.PasswordHash)
	if err != nil {
		return nil, fmt.Errorf("models: compare password: %w", err)
	}
	if !ok || u.Disabled {
		return nil, ErrBadCredentials
	}
	return &u, nil
}

// Get returns user id, or a KindNotFound error.
func (s *UserStore) Get(ctx context.Context, id int64) (*User, error) {
	var u User
	err := s.db.WithContext(ctx).Where("id = ?", id).Take(&u).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, NotFound("user")
	}
	if err != nil {
		return nil, fmt.Errorf("models: get user: %w", err)
	}
	return &u, nil
}

// OrgAccess is an organization a user may work in, with the role held there.
type OrgAccess struct {
	ID, Name, Role string
}

// Organizations returns the organizations user may work in, by name: every organization
// for a superadmin (role "superadmin"), else those of its memberships.
func (s *UserStore) Organizations(ctx context.Context, u *User) ([]OrgAccess, error) {
	var out []OrgAccess
	q := s.db.WithContext(ctx)
	var err error
	if u.Superadmin {
		err = q.Raw(`SELECT id, name, 'superadmin' AS role FROM organizations ORDER BY name, id`).Scan(&out).Error
	} else {
		err = q.Raw(`SELECT o.id, o.name, m.role FROM memberships m JOIN organizations o ON o.id = m.organization_id
			WHERE m.user_id = ? ORDER BY o.name, o.id`, u.ID).Scan(&out).Error
	}
	if err != nil {
		return nil, fmt.Errorf("models: list user organizations: %w", err)
	}
	return out, nil
}

// ChangePassword replaces user id's password after checking the current one, clears the
// one-time password flag and ends every other session of the user (all but the one whose
// token hash is keepSession; nil ends them all), in one transaction. It returns
// ErrBadCredentials for a wrong current password and KindInvalid for a new password that
// is too short or equal to the current one.
func (s *UserStore) ChangePassword(ctx context.Context, id int64, current, next string, keepSession []byte) error {
	return s.changePassword(ctx, id, current, next, keepSession, nil)
}

// ChangePasswordBy is ChangePassword that also writes auth.password.change, with by as the
// principal, to the audit log of every organization the user is a member of (sessionOrg
// when it is a member of none, as a superadmin may be), in the same transaction: a
// password never changes unaudited, and a failed audit changes nothing. It returns what
// ChangePassword returns.
func (s *UserStore) ChangePasswordBy(ctx context.Context, id int64, current, next string, keepSession []byte, sessionOrg string, by Actor) error {
	if err := s.trail.prepare(ctx); err != nil {
		return err
	}
	return s.changePassword(ctx, id, current, next, keepSession, func(tx *gorm.DB) error {
		var orgs []string
		err := tx.Raw(`SELECT organization_id FROM memberships WHERE user_id = ? ORDER BY organization_id`, id).Scan(&orgs).Error
		if err != nil {
			return fmt.Errorf("models: list memberships: %w", err)
		}
		if len(orgs) == 0 && sessionOrg != "" {
			orgs = []string{sessionOrg}
		}
		for _, org := range orgs {
			err := s.trail.RecordTx(ctx, tx, AuditEntry{Org: org, Action: ActionPasswordChange, Actor: by, TargetType: "user",
				TargetID: strconv.FormatInt(id, 10), Outcome: "password changed"})
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// changePassword is ChangePassword running also within, when not nil, in its transaction.
func (s *UserStore) changePassword(ctx context.Context, id int64, current, next string, keepSession []byte, within func(tx *gorm.DB) error) error {
	if len(next) < MinPasswordLength {
		return Invalid("password", fmt.Sprintf("must be at least %d characters", MinPasswordLength))
	}
	if next == current {
		return Invalid("password", "must differ from the current password")
	}
	u, err := s.Get(ctx, id)
	if err != nil {
		return err
	}
	ok, err := argon2id.ComparePasswordAndHash(current, u.PasswordHash)
	if err != nil {
		return fmt.Errorf("models: compare password: %w", err)
	}
	if !ok {
		return ErrBadCredentials
	}
	hash, err := argon2id.CreateHash(next, argonParams)
	if err != nil {
		return fmt.Errorf("models: hash password: %w", err)
	}
	// One change: the new password and the end of every other session of the user (a
	// session stolen with the old password must not outlive it).
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		err := tx.Model(&User{}).Where("id = ?", id).
			Updates(map[string]any{"password_hash": hash, "must_change_password": false, "updated_at": gorm.Expr("now()")}).Error
		if err != nil {
			return fmt.Errorf("models: change password: %w", err)
		}
		err = tx.Exec(`UPDATE sessions SET revoked_at = now() WHERE user_id = ? AND revoked_at IS NULL AND token_hash <> ?`,
			id, keepSession).Error
		if err != nil {
			return fmt.Errorf("models: end other sessions: %w", err)
		}
		if within != nil {
			return within(tx)
		}
		return nil
	})
}

// Account is what a sign-in attempt concerns, for the self-audit trail: the user an email
// belongs to and the organizations it is a member of.
type Account struct {
	UserID int64
	Email  string
	Orgs   []string
}

// AccountByEmail returns the account of email, or nil when no user has it.
func (s *UserStore) AccountByEmail(ctx context.Context, email string) (*Account, error) {
	var users []User
	err := s.db.WithContext(ctx).Where("lower(email) = lower(?)", strings.TrimSpace(email)).Limit(1).Find(&users).Error
	if err != nil {
		return nil, fmt.Errorf("models: look up user: %w", err)
	}
	if len(users) == 0 {
		return nil, nil
	}
	acc := &Account{UserID: users[0].ID, Email: users[0].Email}
	err = s.db.WithContext(ctx).Raw(`SELECT organization_id FROM memberships WHERE user_id = ? ORDER BY organization_id`,
		acc.UserID).Scan(&acc.Orgs).Error
	if err != nil {
		return nil, fmt.Errorf("models: list memberships: %w", err)
	}
	return acc, nil
}

// GetByEmail returns the user with email (case-insensitive), or a KindNotFound error.
func (s *UserStore) GetByEmail(ctx context.Context, email string) (*User, error) {
	var u User
	err := s.db.WithContext(ctx).Where("lower(email) = lower(?)", strings.TrimSpace(email)).Take(&u).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, NotFound("user")
	}
	if err != nil {
		return nil, fmt.Errorf("models: get user: %w", err)
	}
	return &u, nil
}

// ResetPassword gives user id a new one-time password (returned, to be handed over out of
// band), which must be changed at the next sign-in, ends every session of the user, and
// clears the mark of an account an inviter created (created_by_inviter): whoever holds the
// reset password now controls the account, not the inviter. It is the operator's tool (the
// CLI), in one transaction. It returns KindNotFound for an unknown user.
func (s *UserStore) ResetPassword(ctx context.Context, id int64) (string, error) {
	password, err := RandomPassword(20)
	if err != nil {
		return "", err
	}
	hash, err := argon2id.CreateHash(password, argonParams)
	if err != nil {
		return "", fmt.Errorf("models: hash password: %w", err)
	}
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Exec(`UPDATE users SET password_hash = ?, must_change_password = true, created_by_inviter = false,
			updated_at = now() WHERE id = ?`, hash, id)
		if res.Error != nil {
			return fmt.Errorf("models: reset password: %w", res.Error)
		}
		if res.RowsAffected == 0 {
			return NotFound("user")
		}
		if err := tx.Exec(`UPDATE sessions SET revoked_at = now() WHERE user_id = ? AND revoked_at IS NULL`, id).Error; err != nil {
			return fmt.Errorf("models: end sessions: %w", err)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	return password, nil
}

// MaxTimeZoneLength is the width of users.time_zone.
const MaxTimeZoneLength = 64

// TimeZoneLocation returns the location of a user's zone preference: the one check of
// zone names (ValidTimeZone, which also bounds the name to the column), with the account
// page's wording, on the field time_zone.
func TimeZoneLocation(name string) (*time.Location, error) {
	loc, err := ValidTimeZone(name)
	if err != nil {
		return nil, Invalid("time_zone", fmt.Sprintf("%q is not a time zone name such as Europe/Berlin or America/New_York", name))
	}
	return loc, nil
}

// LocationOf returns the zone u reads times in: its preference, or UTC.
func (u *User) LocationOf() *time.Location {
	if u == nil || u.TimeZone == nil {
		return time.UTC
	}
	if loc, err := TimeZoneLocation(*u.TimeZone); err == nil {
		return loc
	}
	return time.UTC
}

// SetTimeZone sets user id's time-zone preference to the IANA zone name ("" or "UTC" clears
// it: times are shown in UTC) and audits user.time_zone.change in the organizations of the
// account, in one change. A name that is not a zone is refused and nothing is written.
func (s *UserStore) SetTimeZone(ctx context.Context, id int64, name, sessionOrg string, by Actor) error {
	var zone *string
	if name != "" && name != "UTC" {
		if _, err := TimeZoneLocation(name); err != nil {
			return err
		}
		zone = &name
	}
	if err := s.trail.prepare(ctx); err != nil {
		return err
	}
	shown := "UTC"
	if zone != nil {
		shown = *zone
	}
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Model(&User{}).Where("id = ?", id).Updates(map[string]any{"time_zone": zone, "updated_at": gorm.Expr("now()")})
		if res.Error != nil {
			return fmt.Errorf("models: set time zone: %w", res.Error)
		}
		if res.RowsAffected == 0 {
			return NotFound("user")
		}
		var orgs []string
		err := tx.Raw(`SELECT organization_id FROM memberships WHERE user_id = ? ORDER BY organization_id`, id).Scan(&orgs).Error
		if err != nil {
			return fmt.Errorf("models: list memberships: %w", err)
		}
		if len(orgs) == 0 && sessionOrg != "" {
			orgs = []string{sessionOrg}
		}
		for _, org := range orgs {
			err := s.trail.RecordTx(ctx, tx, AuditEntry{Org: org, Action: ActionTimeZoneChange, Actor: by, TargetType: "user",
				TargetID: strconv.FormatInt(id, 10), Outcome: "time zone set to " + shown})
			if err != nil {
				return err
			}
		}
		return nil
	})
}
