package models

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"
)

// Saved views: limits and the actions they are audited as.
const (
	MaxSavedViewName  = 80   // characters
	MaxSavedViewQuery = 2000 // bytes of the list's URL query
	// MaxSavedViewsPerUser is how many views one user may keep in one organization.
	MaxSavedViewsPerUser = 100

	ActionSavedViewCreate = "events.view.create"
	ActionSavedViewUpdate = "events.view.update"
	ActionSavedViewDelete = "events.view.delete"
)

// SavedView is a named search of the events list: the list's URL query (search, range),
// private to its owner or shared with the organization.
type SavedView struct {
	ID         int64
	OrgID      string
	UserID     int64
	OwnerEmail string
	Name       string
	Query      string // the list's URL query, e.g. "q=status%3Afailure&range=7d"
	Shared     bool
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// SavedViewInput is what a user saves: a name, the query and whether the organization sees it.
type SavedViewInput struct {
	Name   string
	Query  string
	Shared bool
}

// ValidSavedViewName trims name and checks it; it returns a KindInvalid error naming
// "name" that says what is wrong.
func ValidSavedViewName(name string) (string, error) {
	name = strings.TrimSpace(name)
	switch {
	case !utf8.ValidString(name) || strings.ContainsFunc(name, unicode.IsControl):
		return name, Invalid("name", "must be plain text on one line")
	case HasFormatChar(name):
		return name, FormatCharError("name", name)
	case name == "":
		return name, Invalid("name", "is required: give the view a name, such as “Failed logins this week”")
	case utf8.RuneCountInString(name) > MaxSavedViewName:
		return name, Invalid("name", fmt.Sprintf("must be at most %d characters (it has %d)", MaxSavedViewName, utf8.RuneCountInString(name)))
	}
	return name, nil
}

// HasFormatChar reports whether s holds a Unicode format character (category Cf: zero-width
// spaces and joiners, the byte order mark, soft hyphens, bidi controls such as U+202E).
// They are invisible, and the bidi ones turn the text around them, so a name holding one
// may look empty or like another name: names people give things refuse them.
func HasFormatChar(s string) bool { return strings.ContainsFunc(s, isFormatChar) }

// FormatCharError is the KindInvalid error naming field for s, which holds a format
// character (see HasFormatChar); it says which.
func FormatCharError(field, s string) error {
	r, _ := utf8.DecodeRuneInString(s[max(strings.IndexFunc(s, isFormatChar), 0):])
	return Invalid(field, fmt.Sprintf("must not hold invisible formatting characters such as zero-width spaces or "+
		"direction marks (it holds U+%04X)", r))
}

func isFormatChar(r rune) bool { return unicode.Is(unicode.Cf, r) }

// SavedViewStore keeps the saved views of the events list. Every method takes the
// organization and the acting user: a user sees their own views and the ones shared in the
// organization, and changes only their own.
type SavedViewStore struct {
	db    *gorm.DB
	trail *AuditTrail
}

// NewSavedViewStore returns a store over db whose changes are recorded in trail.
func NewSavedViewStore(db *gorm.DB, trail *AuditTrail) *SavedViewStore {
	return &SavedViewStore{db: db, trail: trail}
}

const savedViewColumns = `v.id, v.organization_id, v.user_id, coalesce(u.email, ''), v.name, v.query, v.shared, v.created_at, v.updated_at`

func scanSavedViews(tx *gorm.DB, where string, args ...any) ([]SavedView, error) {
	rows, err := tx.Raw(`SELECT `+savedViewColumns+` FROM saved_views v LEFT JOIN users u ON u.id = v.user_id WHERE `+where, args...).Rows()
	if err != nil {
		return nil, fmt.Errorf("models: saved views: %w", err)
	}
	defer rows.Close()
	var out []SavedView
	for rows.Next() {
		var v SavedView
		if err := rows.Scan(&v.ID, &v.OrgID, &v.UserID, &v.OwnerEmail, &v.Name, &v.Query, &v.Shared, &v.CreatedAt, &v.UpdatedAt); err != nil {
			return nil, fmt.Errorf("models: saved views: %w", err)
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// List returns the views user sees in org: their own and the shared ones, by name.
func (s *SavedViewStore) List(ctx context.Context, org string, user int64) ([]SavedView, error) {
	return scanSavedViews(s.db.WithContext(ctx), `v.organization_id = ? AND (v.user_id = ? OR v.shared)
		ORDER BY lower(v.name), v.id`, org, user)
}

// Get returns view id of org when user may see it (theirs, or shared). It returns a
// KindNotFound error for another organization's view and another user's private one.
func (s *SavedViewStore) Get(ctx context.Context, org string, user, id int64) (*SavedView, error) {
	return getSavedView(s.db.WithContext(ctx), org, user, id, false)
}

func getSavedView(tx *gorm.DB, org string, user, id int64, lock bool) (*SavedView, error) {
	where := `v.organization_id = ? AND v.id = ? AND (v.user_id = ? OR v.shared)`
	if lock {
		where += ` FOR UPDATE OF v`
	}
	views, err := scanSavedViews(tx, where, org, id, user)
	if err != nil {
		return nil, err
	}
	if len(views) == 0 {
		return nil, NotFound("saved view")
	}
	return &views[0], nil
}

// Create saves a view for by.UserID in org, self-audited. It returns a KindInvalid error
// naming the field for a bad name or query or when the user keeps too many views, and a
// KindConflict error naming "name" when they already have a view of that name.
func (s *SavedViewStore) Create(ctx context.Context, org string, in SavedViewInput, by Actor) (*SavedView, error) {
	name, err := ValidSavedViewName(in.Name)
	if err != nil {
		return nil, err
	}
	if err := validSavedQuery(in.Query); err != nil {
		return nil, err
	}
	if by.UserID <= 0 {
		return nil, Forbidden("only a signed-in user can save a view")
	}
	if err := s.trail.prepare(ctx); err != nil {
		return nil, err
	}
	var saved *SavedView
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		// Count, then insert, under a lock of the owner's views in org: parallel saves
		// cannot pass the limit together.
		if err := tx.Exec(`SELECT pg_advisory_xact_lock(hashtextextended('saved_views:' || ?::text || ':' || ?::bigint::text, 0))`, org, by.UserID).Error; err != nil {
			return fmt.Errorf("models: save view: %w", err)
		}
		var n int64
		if err := tx.Raw(`SELECT count(*) FROM saved_views WHERE organization_id = ? AND user_id = ?`, org, by.UserID).Scan(&n).Error; err != nil {
			return fmt.Errorf("models: save view: %w", err)
		}
		if n >= MaxSavedViewsPerUser {
			return Invalid("name", fmt.Sprintf("you keep %d saved views, the most allowed; delete one first", n))
		}
		var id int64
		err := tx.Raw(`INSERT INTO saved_views (organization_id, user_id, name, query, shared) VALUES (?, ?, ?, ?, ?) RETURNING id`,
			org, by.UserID, name, in.Query, in.Shared).Scan(&id).Error
		if err != nil {
			return savedViewWriteError(err, name)
		}
		if saved, err = getSavedView(tx, org, by.UserID, id, false); err != nil {
			return err
		}
		return s.trail.RecordTx(ctx, tx, AuditEntry{Org: org, Action: ActionSavedViewCreate, Actor: by, TargetType: "saved_view",
			TargetID: strconv.FormatInt(id, 10), Outcome: "saved view " + name + " created" + sharedText(in.Shared),
			Details: map[string]any{"name": name, "query": in.Query, "shared": in.Shared}})
	})
	if err != nil {
		return nil, err
	}
	return saved, nil
}

// Update renames view id of org and sets whether it is shared, self-audited. Only its
// owner may: another user's shared view is a KindForbidden error, another organization's
// or another user's private view a KindNotFound one. A bad or taken name is refused as
// Create refuses it.
func (s *SavedViewStore) Update(ctx context.Context, org string, id int64, name string, shared bool, by Actor) (*SavedView, error) {
	name, err := ValidSavedViewName(name)
	if err != nil {
		return nil, err
	}
	if err := s.trail.prepare(ctx); err != nil {
		return nil, err
	}
	var updated *SavedView
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		old, err := s.owned(tx, org, id, by)
		if err != nil {
			return err
		}
		if err := tx.Exec(`UPDATE saved_views SET name = ?, shared = ?, updated_at = now() WHERE id = ? AND organization_id = ?`,
			name, shared, id, org).Error; err != nil {
			return savedViewWriteError(err, name)
		}
		if updated, err = getSavedView(tx, org, by.UserID, id, false); err != nil {
			return err
		}
		return s.trail.RecordTx(ctx, tx, AuditEntry{Org: org, Action: ActionSavedViewUpdate, Actor: by, TargetType: "saved_view",
			TargetID: strconv.FormatInt(id, 10), Outcome: "saved view " + old.Name + " renamed " + name + sharedText(shared),
			Details: map[string]any{"name": name, "previous_name": old.Name, "shared": shared, "previously_shared": old.Shared}})
	})
	if err != nil {
		return nil, err
	}
	return updated, nil
}

// Delete deletes view id of org, self-audited, and returns it. Only its owner may (see
// Update for the errors).
func (s *SavedViewStore) Delete(ctx context.Context, org string, id int64, by Actor) (*SavedView, error) {
	if err := s.trail.prepare(ctx); err != nil {
		return nil, err
	}
	var gone *SavedView
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var err error
		if gone, err = s.owned(tx, org, id, by); err != nil {
			return err
		}
		if err := tx.Exec(`DELETE FROM saved_views WHERE id = ? AND organization_id = ?`, id, org).Error; err != nil {
			return fmt.Errorf("models: delete saved view: %w", err)
		}
		return s.trail.RecordTx(ctx, tx, AuditEntry{Org: org, Action: ActionSavedViewDelete, Actor: by, TargetType: "saved_view",
			TargetID: strconv.FormatInt(id, 10), Outcome: "saved view " + gone.Name + " deleted",
			Details: map[string]any{"name": gone.Name, "query": gone.Query, "shared": gone.Shared}})
	})
	if err != nil {
		return nil, err
	}
	return gone, nil
}

// owned locks view id of org for a change by its owner.
func (s *SavedViewStore) owned(tx *gorm.DB, org string, id int64, by Actor) (*SavedView, error) {
	v, err := getSavedView(tx, org, by.UserID, id, true)
	if err != nil {
		return nil, err
	}
	if v.UserID != by.UserID {
		return nil, Forbidden(fmt.Sprintf("saved view %s belongs to %s: only its owner can rename, share or delete it", v.Name, v.OwnerEmail))
	}
	return v, nil
}

func validSavedQuery(q string) error {
	if !utf8.ValidString(q) || strings.ContainsRune(q, 0) {
		return Invalid("query", "must be valid text")
	}
	if len(q) > MaxSavedViewQuery {
		return Invalid("query", fmt.Sprintf("is %d bytes long; a saved view holds at most %d: shorten the search", len(q), MaxSavedViewQuery))
	}
	return nil
}

func savedViewWriteError(err error, name string) error {
	var pg *pgconn.PgError
	if errors.As(err, &pg) && pg.Code == "23505" {
		return Conflict("name", "you already have a view named "+name+"; choose another name")
	}
	return fmt.Errorf("models: save view: %w", err)
}

func sharedText(shared bool) string {
	if shared {
		return ", shared with the organization"
	}
	return ", private"
}
