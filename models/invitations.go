package models

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"gorm.io/gorm"
	"net/mail"
	"strconv"
	"strings"
	"time"
)

// Self-audit actions of invitations.
const (
	ActionMemberInvite      = "member.invite"
	ActionInvitationAccept  = "member.invitation.accept"
	ActionInvitationDecline = "member.invitation.decline"
)

// InvitationTTL is how long an invitation may be accepted.
const InvitationTTL = 7 * 24 * time.Hour

// Invited is the inviter's answer to Invite. It is the same whether or not the email has an
// account, and it carries no code or password: only the person who controls the address can
// come to control the account of that address.
type Invited struct {
	Email     string
	Role      string
	ExpiresAt time.Time
	// Emailed reports whether a link was sent to the address (an invitation mailer is
	// configured); it depends on the server's configuration only.
	Emailed bool
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

// Invite invites in.Email to org with role in.Role. It creates no account: the membership
// exists only once the account with that email, signed in, accepts (AcceptInvitation). An
// email without an account gets one from a superadmin, or — when a mailer is configured —
// through the single-use link emailed to it (ClaimInvitation). A pending invitation of the
// same email is replaced. It returns KindInvalid for a bad email or unknown role,
// KindConflict when the email's account is a member of org already, KindForbidden when the
// role grants something the actor does not hold, and KindNotFound for an unknown
// organization. The answer and the work done are the same whether or not the email has an
// account.
func (s *MemberStore) Invite(ctx context.Context, org string, in NewMember, by Actor) (*Invited, error) {
	email := strings.TrimSpace(in.Email)
	if addr, err := mail.ParseAddress(email); err != nil || addr.Address != email || len(email) > 320 {
		return nil, Invalid("email", "must be a plain email address")
	}
	var token string
	var tokenHash *string
	if s.Mailer != nil {
		token = RandomToken(32)
		h := hashInvitationToken(token)
		tokenHash = &h
	}
	if err := s.trail.prepare(ctx); err != nil {
		return nil, err
	}
	out := &Invited{Email: email, Role: in.Role, Emailed: s.Mailer != nil}
	var orgName string
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
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
		if err := tx.Raw(`SELECT name FROM organizations WHERE id = ?`, org).Scan(&orgName).Error; err != nil {
			return fmt.Errorf("models: look up organization: %w", err)
		}
		var users []User
		if err := tx.Where("lower(email) = lower(?)", email).Limit(1).Find(&users).Error; err != nil {
			return fmt.Errorf("models: look up user: %w", err)
		}
		var userID *int64
		if len(users) > 0 {
			var member int64
			if err := tx.Raw(`SELECT count(*) FROM memberships WHERE organization_id = ? AND user_id = ?`, org, users[0].ID).
				Scan(&member).Error; err != nil {
				return fmt.Errorf("models: look up membership: %w", err)
			}
			// The members page lists this account already, so the refusal tells nothing new.
			if member > 0 {
				return Conflict("email", "is a member already; change their role instead")
			}
			userID = &users[0].ID
		}
		now := time.Now().UTC()
		out.ExpiresAt = now.Add(InvitationTTL)
		var inviter *int64
		if by.UserID > 0 {
			inviter = &by.UserID
		}
		res := tx.Exec(`UPDATE membership_invitations SET role = ?, user_id = ?, email = ?, token_hash = ?, invited_by = ?, created_at = ?, expires_at = ?
			WHERE organization_id = ? AND lower(email) = lower(?) AND accepted_at IS NULL AND declined_at IS NULL`,
			in.Role, userID, email, tokenHash, inviter, now, out.ExpiresAt, org, email)
		if res.Error == nil && res.RowsAffected == 0 {
			res = tx.Exec(`INSERT INTO membership_invitations (organization_id, user_id, email, role, token_hash, invited_by, created_at, expires_at)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, org, userID, email, in.Role, tokenHash, inviter, now, out.ExpiresAt)
		}
		if res.Error != nil {
			return fmt.Errorf("models: save invitation: %w", res.Error)
		}
		// The entry says nothing of whether the email has an account: the organization's
		// auditors may read it, and that is the fact the answer keeps to itself.
		return s.trail.RecordTx(ctx, tx, AuditEntry{Org: org, Action: ActionMemberInvite, Actor: by, TargetType: "invitation",
			TargetID: strings.ToLower(email), Outcome: fmt.Sprintf("%s invited as %s", email, in.Role),
			Details: map[string]any{"member": email, "role": in.Role, "expiresAt": out.ExpiresAt.Format(time.RFC3339)}})
	})
	if err != nil {
		return nil, err
	}
	if s.Mailer != nil {
		msg := InvitationMail{To: email, OrgName: orgName, Role: in.Role, InvitedBy: by.Email,
			Path: "/invitations/claim?token=" + token, ExpiresAt: out.ExpiresAt}
		if err := s.Mailer.SendInvitation(ctx, msg); err != nil {
			return nil, Unavailable("the invitation is recorded but its email could not be sent; invite again to resend", err)
		}
	}
	return out, nil
}

// InvitationMail is the email that carries an invitation's single-use link.
type InvitationMail struct {
	To        string
	OrgName   string
	Role      string
	InvitedBy string // the inviter's email, "" when unknown
	// Path is the link's path and query (/invitations/claim?token=…); the mailer puts the
	// server's public URL in front of it.
	Path      string
	ExpiresAt time.Time
}

// InvitationMailer sends invitation emails. MemberStore.Mailer is nil when the server has
// no email configured.
type InvitationMailer interface {
	// SendInvitation sends m; an error means it was not sent.
	SendInvitation(ctx context.Context, m InvitationMail) error
}

// hashInvitationToken is what is stored of an emailed link's token: the token has 256
// random bits, so a plain SHA-256 is enough to make the stored value useless to a reader.
func hashInvitationToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// ErrCreatedByInviter refuses an invitation to an account an inviter created with a
// one-time password the inviter saw: that inviter may control it.
var ErrCreatedByInviter = Conflict("invitation", "this account was created by an organization's invitation with a password its inviter saw; "+
	"it accepts invitations once you choose a new password through an emailed invitation link, or a superadmin resets it")

// Invitations returns the pending, unexpired invitations addressed to the email of account
// userID, oldest first.
func (s *MemberStore) Invitations(ctx context.Context, userID int64) ([]Invitation, error) {
	var out []Invitation
	err := s.db.WithContext(ctx).Raw(`SELECT i.id, i.organization_id AS org_id, o.name AS org_name, i.role,
			coalesce(b.email, '') AS invited_by, i.expires_at
		FROM membership_invitations i JOIN organizations o ON o.id = i.organization_id
		JOIN users me ON me.id = ? AND lower(me.email) = lower(i.email)
		LEFT JOIN users b ON b.id = i.invited_by
		WHERE i.accepted_at IS NULL AND i.declined_at IS NULL AND i.expires_at > now()
		ORDER BY i.created_at, i.id`, userID).Scan(&out).Error
	if err != nil {
		return nil, fmt.Errorf("models: list invitations: %w", err)
	}
	return out, nil
}

// AcceptInvitation makes the signed-in account by.UserID a member as invitation id says. It
// returns KindNotFound when no pending invitation id is addressed to that account's email
// (another address's invitation included), KindConflict when it has expired, its role no
// longer exists or the account was created by an inviter (ErrCreatedByInviter), and the
// organization's id on success.
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
		var err error
		org, err = answerInvitationTx(ctx, tx, s.trail, id, by, accept)
		return err
	})
	if err != nil {
		return "", err
	}
	return org, nil
}

// answerInvitationTx accepts or declines invitation id for account by.UserID within tx.
// The invitation must be addressed to the account's email (case-insensitively), whatever
// user id it was recorded with.
func answerInvitationTx(ctx context.Context, tx *gorm.DB, trail *AuditTrail, id int64, by Actor, accept bool) (string, error) {
	const pending = `FROM membership_invitations i JOIN users u ON u.id = ? AND lower(u.email) = lower(i.email)
		WHERE i.id = ? AND i.accepted_at IS NULL AND i.declined_at IS NULL`
	var org string
	// Read without locking first, to lock the organization before the invitation (the
	// order Invite takes them in).
	if err := tx.Raw(`SELECT i.organization_id `+pending, by.UserID, id).Scan(&org).Error; err != nil {
		return "", fmt.Errorf("models: look up invitation: %w", err)
	}
	if org == "" {
		return "", NotFound("invitation")
	}
	if err := lockOrg(ctx, tx, org); err != nil {
		return "", err
	}
	var rows []struct {
		OrganizationID   string
		Email            string
		Role             string
		Expired          bool
		CreatedByInviter bool
	}
	if err := tx.Raw(`SELECT i.organization_id, i.email, i.role, i.expires_at <= now() AS expired, u.created_by_inviter `+
		pending+` FOR UPDATE OF i`, by.UserID, id).Scan(&rows).Error; err != nil {
		return "", fmt.Errorf("models: look up invitation: %w", err)
	}
	if len(rows) == 0 || rows[0].OrganizationID != org {
		return "", NotFound("invitation")
	}
	inv := rows[0]
	target := strconv.FormatInt(by.UserID, 10)
	entry := AuditEntry{Org: org, Actor: by, TargetType: "user", TargetID: target,
		Details: map[string]any{"member": inv.Email, "role": inv.Role, "invitation": id}}
	if !accept {
		if err := tx.Exec(`UPDATE membership_invitations SET declined_at = now(), user_id = ? WHERE id = ?`, by.UserID, id).Error; err != nil {
			return "", fmt.Errorf("models: decline invitation: %w", err)
		}
		entry.Action, entry.Outcome = ActionInvitationDecline, fmt.Sprintf("%s declined the invitation as %s", inv.Email, inv.Role)
		return org, trail.RecordTx(ctx, tx, entry)
	}
	if inv.Expired {
		return "", Conflict("invitation", "has expired; ask the organization for a new one")
	}
	if inv.CreatedByInviter {
		return "", ErrCreatedByInviter
	}
	set, err := loadSet(ctx, tx, org)
	if err != nil {
		return "", err
	}
	if set[inv.Role] == nil {
		return "", Conflict("invitation", "names a role the organization no longer has; ask for a new invitation")
	}
	res := tx.Exec(`INSERT INTO memberships (user_id, organization_id, role) VALUES (?, ?, ?)
		ON CONFLICT (user_id, organization_id) DO NOTHING`, by.UserID, org, inv.Role)
	if res.Error != nil {
		return "", fmt.Errorf("models: add membership: %w", res.Error)
	}
	if res.RowsAffected == 0 {
		return "", Conflict("invitation", "you are a member of this organization already")
	}
	if err := tx.Exec(`UPDATE membership_invitations SET accepted_at = now(), user_id = ?, token_hash = NULL WHERE id = ?`, by.UserID, id).Error; err != nil {
		return "", fmt.Errorf("models: accept invitation: %w", err)
	}
	entry.Action, entry.Outcome = ActionInvitationAccept, fmt.Sprintf("%s accepted the invitation and joined as %s", inv.Email, inv.Role)
	entry.Change = &ConfigChange{Field: "membership." + target + ".role", New: inv.Role}
	return org, trail.RecordTx(ctx, tx, entry)
}
