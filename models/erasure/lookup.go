package erasure

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"auditdb/models"
)

// maxReason bounds the reason a lookup gives.
const maxReason = 1000

// Lookup returns the subject a pseudonym of org stands for (as Subject.String writes it):
// an encrypted pseudonym is decrypted, a hash or token one is read from pseudonym_mapping
// (where the original is kept encrypted). reason is required (KindInvalid naming "reason");
// every lookup is self-audited as gdpr.data.pseudonymize with the reason and the pseudonym,
// and nothing is returned when that record cannot be written. An unknown pseudonym, an
// erasure's (never mapped back) or another organization's is KindNotFound.
func (e *Engine) Lookup(ctx context.Context, org, pseudonym, reason string, by models.Actor) (string, error) {
	if e.keyErr != nil {
		return "", e.keyErr
	}
	reason = strings.TrimSpace(reason)
	switch {
	case reason == "":
		return "", models.Invalid("reason", "say why the original identifier is needed")
	case len(reason) > maxReason:
		return "", models.Invalid("reason", fmt.Sprintf("is at most %d characters", maxReason))
	}
	pseudonym = strings.TrimSpace(pseudonym)
	if pseudonym == "" || len(pseudonym) > maxIdentifier || org == "" {
		return "", models.NotFound("pseudonym")
	}
	var original string
	if strings.HasPrefix(pseudonym, prefixEncryption) {
		ct, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(pseudonym, prefixEncryption))
		if err != nil {
			return "", models.NotFound("pseudonym")
		}
		if original, err = e.crypto.open(org, ct); err != nil {
			return "", models.NotFound("pseudonym")
		}
		// Only while its mapping exists: an erasure of the subject deletes it, and the
		// pseudonym then answers nothing although the key could still decrypt it.
		var mapped bool
		err = models.WithPgx(ctx, e.db, func(conn *pgx.Conn) error {
			return conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pseudonym_mapping WHERE organization_id = $1 AND pseudonym_id = $2)`,
				org, pseudonym).Scan(&mapped)
		})
		if err != nil {
			return "", fmt.Errorf("erasure: pseudonym mapping: %w", err)
		}
		if !mapped {
			return "", models.NotFound("pseudonym")
		}
	} else {
		var ct []byte
		err := models.WithPgx(ctx, e.db, func(conn *pgx.Conn) error {
			return conn.QueryRow(ctx, `SELECT original_ciphertext FROM pseudonym_mapping
				WHERE organization_id = $1 AND pseudonym_id = $2 AND original_ciphertext IS NOT NULL`, org, pseudonym).Scan(&ct)
		})
		if err == pgx.ErrNoRows {
			return "", models.NotFound("pseudonym")
		}
		if err != nil {
			return "", fmt.Errorf("erasure: pseudonym mapping: %w", err)
		}
		if original, err = e.crypto.open(org, ct); err != nil {
			return "", fmt.Errorf("erasure: the mapping of %s does not open with this key: %w", pseudonym, err)
		}
	}
	err := e.trail.Record(ctx, models.AuditEntry{Org: org, Action: ActionPseudonymize, Actor: by, TargetType: "pseudonym",
		TargetID: pseudonym, Outcome: "pseudonym " + pseudonym + " looked up",
		Details: map[string]any{"operation": "lookup", "pseudonym": pseudonym, "reason": reason}})
	if err != nil {
		return "", err
	}
	return original, nil
}

// SealLegacyMappings encrypts every pseudonym_mapping row still holding its original in
// clear (written before the erasure migration) and clears the plaintext. It returns how
// many rows it sealed.
func (e *Engine) SealLegacyMappings(ctx context.Context) (int64, error) {
	if e.keyErr != nil {
		return 0, e.keyErr
	}
	var n int64
	err := models.WithPgx(ctx, e.db, func(conn *pgx.Conn) error {
		return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			rows, _ := tx.Query(ctx, `SELECT id, organization_id, original_id FROM pseudonym_mapping
				WHERE original_id IS NOT NULL FOR UPDATE`)
			type legacy struct {
				id       int64
				org, raw string
			}
			var ls []legacy
			var l legacy
			if _, err := pgx.ForEachRow(rows, []any{&l.id, &l.org, &l.raw}, func() error {
				ls = append(ls, l)
				return nil
			}); err != nil {
				return err
			}
			for _, l := range ls {
				if _, err := tx.Exec(ctx, `UPDATE pseudonym_mapping SET original_ciphertext = $2, original_id = NULL WHERE id = $1`,
					l.id, e.crypto.seal(l.org, l.raw)); err != nil {
					return err
				}
				n++
			}
			return nil
		})
	})
	if err != nil {
		return 0, fmt.Errorf("erasure: seal legacy pseudonym mappings: %w", err)
	}
	return n, nil
}
