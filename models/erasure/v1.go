package erasure

import (
	"errors"

	"auditdb/models"
)

// Scheme hooks: under sha256-jcs-v1 no event commits to its fields one by one.

// commitmentsColumn is the batch's select of field commitments.
const commitmentsColumn = `NULL::text`

// commitmentsSet is the batch's update of field commitments.
const commitmentsSet = ``

// perFieldScheme reports whether events of alg commit to each personal field on its own.
func perFieldScheme(alg string) bool { return false }

func (r *run) transformV2(f *fields, byPrincipal, byTarget bool) error {
	return errors.New("erasure: per-field scheme not supported")
}

func lineCommitments(l *models.ArchiveLine) []byte { return nil }

func setLineCommitments(l *models.ArchiveLine, c []byte) {}
