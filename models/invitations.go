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

// Self-audit actions of invitations.
const (
	ActionMemberInvite      = "member.invite"
	ActionInvitationAccept  = "member.invitation.accept"
	ActionInvitationDecline = "member.invitation.decline"
)

// InvitationTTL is how long an invitation may be accepted.
const InvitationTTL = 7 * 24 * time.Hour

// Invited is the inviter's answer to Invite. It is the same whether or not the email had an
// account: Code is a fresh one-time code either way. For an email without an account it is
// also the new account's one-time password; for an existing account it signs nothing in
// (its owner signs in with their own password) — so what the inviter sees never tells
// whether the email has an account anywhere.
type Invited struct {
	Email     string
	Role      string
	Code      string
	ExpiresAt time.Time
}

// Invitation is a pending invitation as the invited account sees it.
type Invitation struct {
	ID        int64
	OrgID     string
	OrgName   string
	Role      string
	InvitedBy string // the inviter's email, "" when unknown
	ExpiresAt time.Time
}

// Invite invites in.Email to org with role in.Role. The membership exists only once the
// account's owner, signed in, accepts (AcceptInvitation): an organization can no longer
// attach an account another organization created. An email without an account gets one,
// with the returned code as its one-time password. A pending invitation of the same account
// is replaced. It returns KindInvalid for a bad email or unknown role, KindConflict when the
// account is a member of org already, KindForbidden when the role grants something the
// actor does not hold, and KindNotFound for an unknown organization.
//
// Both paths cost one argon2id hash and a few writes, so neither the answer nor its timing
// tells whether the email had an account.
func (s *MemberStore) Invite(ctx context.Context, org string, in NewMember, by Actor) (*Invited, error) {
	email := strings.TrimSpace(in.Email)
	if addr, err := mail.ParseAddress(email); err != nil || addr.Address != email || len(email) > 320 {
		return nil, Invalid("email", "must be a plain email address")
	}
	name := strings.TrimSpace(in.Name)
	if len(name) > 255 {
		return nil, Invalid("name", "must be at most 255 characters")
	}
	code, err := RandomPassword(20)
	if err != nil {
		return nil, err
	}
	hash, err := argon2id.CreateHash(code, argonParams)
	if err != nil {
		return nil, fmt.Errorf("models: hash invitation code: %w", err)
	}
	if err := s.trail.prepare(ctx); err != nil {
		return nil, err
	}
	out := &Invited{Email: email, Role: in.Role, Code: code}
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := lockOrg(ctx, tx, org); err != nil {
			return err
		}
		set, err := loadSet(ctx, tx, org)
		if err != nil {
			return err
		}
		if set[in.Role] == nil {
			return ErrNoRole
		}
		if err := checkGrant(ctx, tx, set, org, by, set.Effective(in.Role)); err != nil {
			return err
		}
		var users []User
		if err := tx.Where("lower(email) = lower(?)", email).Limit(1).Find(&users).Error; err != nil {
			return fmt.Errorf("models: look up user: %w", err)
		}
		if len(users) == 0 {
			u := User{Email: email, Name: name, PasswordHash: hash, MustChangePassword: true}
			if err := tx.Create(&u).Error; err != nil {
				if errors.Is(err, gorm.ErrDuplicatedKey) {
					return Conflict("email", "an account with this email was added at the same moment; try again")
				}
				return fmt.Errorf("models: create user: %w", err)
			}
			users = append(users, u)
		}
		u := users[0]
		var member int64
		if err := tx.Raw(`SELECT count(*) FROM memberships WHERE organization_id = ? AND user_id = ?`, org, u.ID).
			Scan(&member).Error; err != nil {
			return fmt.Errorf("models: look up membership: %w", err)
		}
		if member > 0 {
			return Conflict("email", "is a member already; change their role instead")
		}
		now := time.Now().UTC()
		out.ExpiresAt = now.Add(InvitationTTL)
		var inviter *int64
		if by.UserID > 0 {
			inviter = &by.UserID
		}
		res := tx.Exec(`UPDATE membership_invitations SET role = ?, token_hash = ?, invited_by = ?, created_at = ?, expires_at = ?
			WHERE organization_id = ? AND user_id = ? AND accepted_at IS NULL AND declined_at IS NULL`,
			in.Role, hash, inviter, now, out.ExpiresAt, org, u.ID)
		if res.Error == nil && res.RowsAffected == 0 {
			res = tx.Exec(`INSERT INTO membership_invitations (organization_id, user_id, email, role, token_hash, invited_by, created_at, expires_at)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, org, u.ID, u.Email, in.Role, hash, inviter, now, out.ExpiresAt)
		}
		if res.Error != nil {
			return fmt.Errorf("models: save invitation: %w", res.Error)
		}
		target := strconv.FormatInt(u.ID, 10)
		// The entry says nothing of whether the account was new: the organization's
		// auditors may read it, and that is the fact the answer keeps to itself.
		return s.trail.RecordTx(ctx, tx, AuditEntry{Org: org, Action: ActionMemberInvite, Actor: by, TargetType: "user",
			TargetID: target, Outcome: fmt.Sprintf("%s invited as %s", email, in.Role),
			Details: map[string]any{"member": email, "role": in.Role, "expiresAt": out.ExpiresAt.Format(time.RFC3339)}})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Invitations returns the pending, unexpired invitations of account userID, oldest first.
func (s *MemberStore) Invitations(ctx context.Context, userID int64) ([]Invitation, error) {
	var out []Invitation
	err := s.db.WithContext(ctx).Raw(`SELECT i.id, i.organization_id AS org_id, o.name AS org_name, i.role,
			coalesce(u.email, '') AS invited_by, i.expires_at
		FROM membership_invitations i JOIN organizations o ON o.id = i.organization_id
		LEFT JOIN users u ON u.id = i.invited_by
		WHERE i.user_id = ? AND i.accepted_at IS NULL AND i.declined_at IS NULL AND i.expires_at > now()
		ORDER BY i.created_at, i.id`, userID).Scan(&out).Error
	if err != nil {
		return nil, fmt.Errorf("models: list invitations: %w", err)
	}
	return out, nil
}

// AcceptInvitation makes the signed-in account by.UserID a member as invitation id says. It
// returns KindNotFound when no pending invitation id is addressed to that account (another
// account's invitation included), KindConflict when it has expired or its role no longer
// exists, and the organization's id on success.
func (s *MemberStore) AcceptInvitation(ctx context.Context, id int64, by Actor) (string, error) {
	org, err := s.answerInvitation(ctx, id, by, true)
	if err := s.Refresh.done(ctx, err); err != nil {
		return "", err
	}
	return org, nil
}

// DeclineInvitation refuses invitation id for the signed-in account by.UserID, with the
// errors of AcceptInvitation (an expired invitation may still be declined).
func (s *MemberStore) DeclineInvitation(ctx context.Context, id int64, by Actor) error {
	_, err := s.answerInvitation(ctx, id, by, false)
	return err
}

func (s *MemberStore) answerInvitation(ctx context.Context, id int64, by Actor, accept bool) (string, error) {
	if by.UserID <= 0 {
		return "", NotFound("invitation")
	}
	if err := s.trail.prepare(ctx); err != nil {
		return "", err
	}
	var org string
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var rows []struct {
			OrganizationID string
			Email          string
			Role           string
			Expired        bool
		}
		// Read without locking first, to lock the organization before the invitation (the
		// order Invite takes them in).
		if err := tx.Raw(`SELECT organization_id FROM membership_invitations WHERE id = ? AND user_id = ?
			AND accepted_at IS NULL AND declined_at IS NULL`, id, by.UserID).Scan(&org).Error; err != nil {
			return fmt.Errorf("models: look up invitation: %w", err)
		}
		if org == "" {
			return NotFound("invitation")
		}
		if err := lockOrg(ctx, tx, org); err != nil {
			return err
		}
		if err := tx.Raw(`SELECT organization_id, email, role, expires_at <= now() AS expired FROM membership_invitations
			WHERE id = ? AND user_id = ? AND accepted_at IS NULL AND declined_at IS NULL FOR UPDATE`, id, by.UserID).
			Scan(&rows).Error; err != nil {
			return fmt.Errorf("models: look up invitation: %w", err)
		}
		if len(rows) == 0 || rows[0].OrganizationID != org {
			return NotFound("invitation")
		}
		inv := rows[0]
		target := strconv.FormatInt(by.UserID, 10)
		entry := AuditEntry{Org: org, Actor: by, TargetType: "user", TargetID: target,
			Details: map[string]any{"member": inv.Email, "role": inv.Role, "invitation": id}}
		if !accept {
			if err := tx.Exec(`UPDATE membership_invitations SET declined_at = now() WHERE id = ?`, id).Error; err != nil {
				return fmt.Errorf("models: decline invitation: %w", err)
			}
			entry.Action, entry.Outcome = ActionInvitationDecline, fmt.Sprintf("%s declined the invitation as %s", inv.Email, inv.Role)
			return s.trail.RecordTx(ctx, tx, entry)
		}
		if inv.Expired {
			return Conflict("invitation", "has expired; ask the organization for a new one")
		}
		set, err := loadSet(ctx, tx, org)
		if err != nil {
			return err
		}
		if set[inv.Role] == nil {
			return Conflict("invitation", "names a role the organization no longer has; ask for a new invitation")
		}
		res := tx.Exec(`INSERT INTO memberships (user_id, organization_id, role) VALUES (?, ?, ?)
			ON CONFLICT (user_id, organization_id) DO NOTHING`, by.UserID, org, inv.Role)
		if res.Error != nil {
			return fmt.Errorf("models: add membership: %w", res.Error)
		}
		if res.RowsAffected == 0 {
			return Conflict("invitation", "you are a member of this organization already")
		}
		if err := tx.Exec(`UPDATE membership_invitations SET accepted_at = now() WHERE id = ?`, id).Error; err != nil {
			return fmt.Errorf("models: accept invitation: %w", err)
		}
		entry.Action, entry.Outcome = ActionInvitationAccept, fmt.Sprintf("%s accepted the invitation and joined as %s", inv.Email, inv.Role)
		entry.Change = &ConfigChange{Field: "membership." + target + ".role", New: inv.Role}
		return s.trail.RecordTx(ctx, tx, entry)
	})
	if err != nil {
		return "", err
	}
	return org, nil
}
