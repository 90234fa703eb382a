package erasure

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"auditdb/models"
)

// alias is a pseudonym an earlier pseudonymization gave the subject: its events are
// stored under it, so an erasure must find them by it too.
type alias struct {
	mappingID int64
	pseudonym string
	subject   Subject // the pseudonym in place of the subject's identifiers it replaced
}

// aliases returns the pseudonyms of org's pseudonym_mapping whose original (decrypted with
// the key: the mapping holds ciphertext only) names the subject's principal or resource. A
// pseudonymization's original is its subject as Subject.String writes it ("principal p",
// "resource t/id", or both joined by "; ").
func (e *Engine) aliases(ctx context.Context, org string, s Subject) ([]alias, error) {
	var out []alias
	err := models.WithPgx(ctx, e.db, func(conn *pgx.Conn) error {
		rows, _ := conn.Query(ctx, `SELECT id, pseudonym_id, original_ciphertext FROM pseudonym_mapping
			WHERE organization_id = $1 AND original_ciphertext IS NOT NULL ORDER BY id`, org)
		var id int64
		var pseudonym string
		var ct []byte
		_, err := pgx.ForEachRow(rows, []any{&id, &pseudonym, &ct}, func() error {
			original, err := e.crypto.open(org, ct)
			if err != nil {
				return nil // written under another key: not this key's to read
			}
			a := alias{mappingID: id, pseudonym: pseudonym}
			if p := s.PrincipalID; p != "" && (original == "principal "+p || strings.HasPrefix(original, "principal "+p+"; resource ")) {
				a.subject.PrincipalID = pseudonym
			}
			if s.hasResource() {
				res := "resource " + s.ResourceType + "/" + s.ResourceID
				if original == res || strings.HasSuffix(original, "; "+res) {
					a.subject.ResourceType, a.subject.ResourceID = s.ResourceType, pseudonym
				}
			}
			if a.subject != (Subject{}) && a.subject != s {
				out = append(out, a)
			}
			return nil
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("erasure: pseudonyms of the subject: %w", err)
	}
	return out, nil
}

// forgetAliases deletes the mapping rows of the subject's pseudonyms, so Lookup no longer
// answers them; it runs in the scrub's transaction, after their events are done.
func (r *run) forgetAliases(ctx context.Context, tx pgx.Tx) error {
	if r.op != opErase || len(r.aliases) == 0 {
		return nil
	}
	ids := make([]int64, len(r.aliases))
	for i, a := range r.aliases {
		ids[i] = a.mappingID
	}
	_, err := tx.Exec(ctx, `DELETE FROM pseudonym_mapping WHERE organization_id = $1 AND id = ANY($2)`, r.org, ids)
	return err
}
