package erasure

import (
	"encoding/json"
	"fmt"

	"auditdb/models"
)

// How each scheme's events lose a field (docs/integrity.md):
//   - sha256-jcs-v1: the principal and the personal details keys are outside the content
//     hash (covered by subject_digest); the target resource id is inside it, in clear.
//   - sha256-jcs-v2: each personal field (principalId, targetResourceId, details.<key>) has
//     its own commitment; removing or replacing the value, dropping its salt and marking it
//     "erased" or "pseudonymized" keeps the digest, and the content hash only covers digests.
//   - sha256-jcs-v3: as v2, and the outcome description and every details key are committed
//     the same way, so free text mentioning the subject is pseudonymized too (mentions.go).
//     A never-redacted v3 event stores only its event salt (the compact form); the first
//     redaction expands it to v2's explicit form and drops the event salt.

// commitmentsColumn is the batch's select of field commitments.
const commitmentsColumn = `e.field_commitments::text`

// commitmentsSet is the batch's update of field commitments (v1 events have none and keep
// NULL).
const commitmentsSet = `field_commitments = coalesce(u.c::jsonb, e.field_commitments), `

// perFieldScheme reports whether events of alg commit to each personal field on its own.
func perFieldScheme(alg string) bool { return models.PerFieldScheme(alg) }

// transformV2 pseudonymizes a v2 event's fields: the principal and/or target id become the
// pseudonym (state "pseudonymized"); where the subject is the principal, the personal
// details keys present are removed (state "erased"). Every changed field loses its salt and
// gets the server's redaction MAC over hash (the event's) and its new value.
func (r *run) transformV2(f *fields, hash string, byPrincipal, byTarget bool) error {
	sealer := r.e.sealer()
	if sealer == nil {
		return fmt.Errorf("erasure: no signing key to vouch for the redaction of %s events", f.HashAlgorithm)
	}
	// A never-redacted sha256-jcs-v3 event stores its commitments compact (one event salt);
	// they are expanded from the values as sealed, before any of them changes, and the event
	// salt goes (docs/integrity.md §10).
	c, err := models.ExpandFieldCommitments(&models.Event{HashAlgorithm: f.HashAlgorithm, PrincipalID: f.PrincipalID,
		TargetResourceID: f.TargetResourceID, OutcomeDescription: f.OutcomeDescription, Details: f.Details,
		FieldCommitments: f.Commitments})
	if err != nil {
		return fmt.Errorf("erasure: %w", err)
	}
	fc, err := models.ParseFieldCommitments(c, f.HashAlgorithm)
	if err != nil {
		return fmt.Errorf("erasure: %w", err)
	}
	mark := func(name, state string, value json.RawMessage) error {
		if _, ok := fc[name]; !ok {
			return nil // an uncommitted value: verification reports it; nothing to mark
		}
		c, err = sealer.MarkField(c, f.HashAlgorithm, hash, name, state, value)
		return err
	}
	if byPrincipal {
		p := r.pseudonym
		f.PrincipalID = &p
		if err := mark(models.FieldPrincipalID, models.FieldPseudonymized, models.JSONString(p)); err != nil {
			return err
		}
		var details map[string]json.RawMessage
		if len(f.Details) > 0 && string(f.Details) != "null" {
			if err := json.Unmarshal(f.Details, &details); err != nil {
				return fmt.Errorf("erasure: details are not a JSON object: %w", err)
			}
		}
		removed := false
		for _, k := range models.DefaultPersonalKeys {
			if _, ok := details[k]; ok {
				delete(details, k)
				removed = true
				if err := mark(models.DetailsFieldPrefix+k, models.FieldErased, nil); err != nil {
					return err
				}
			}
		}
		if removed {
			if f.Details, err = json.Marshal(details); err != nil {
				return err
			}
		}
		f.changed = true
	}
	if byTarget {
		t := r.pseudonym
		f.TargetResourceID = &t
		if err := mark(models.FieldTargetResourceID, models.FieldPseudonymized, models.JSONString(t)); err != nil {
			return err
		}
		f.changed = true
	}
	if f.changed {
		f.Commitments = c
	}
	return nil
}

func lineCommitments(l *models.ArchiveLine) []byte { return l.FieldCommitments }

func setLineCommitments(l *models.ArchiveLine, c []byte) {
	if c != nil {
		l.FieldCommitments = c
	}
}
