package erasure

import (
	"context"
	"fmt"

	"gorm.io/gorm"
)

// Summaries returns one line per GDPR request that erased or pseudonymized events of org,
// oldest first, e.g. "request req-1 (erase, completed): 120 events deleted (20 from
// archives), 8 kept pseudonymized as ers_…, 2 archives rewritten", for `auditdb verify`
// beside the removals verification accepts. It names no subject.
func Summaries(ctx context.Context, db *gorm.DB, org string) ([]string, error) {
	var rows []struct {
		RequestID, Operation, Status, Pseudonym                                  string
		Deleted, Pseudonymized, ArchivedDeleted, ArchivedPseudonymized, Archives int64
	}
	err := db.WithContext(ctx).Raw(`SELECT request_id, operation, status, pseudonym, deleted, pseudonymized, archived_deleted,
		archived_pseudonymized, archives_rewritten AS archives FROM gdpr_erasure_runs WHERE organization_id = ?
		ORDER BY started_at, request_id, operation`, org).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("erasure: runs of %s: %w", org, err)
	}
	out := make([]string, 0, len(rows))
	for _, r := range rows {
		out = append(out, fmt.Sprintf("request %s (%s, %s): %d events deleted (%d from archives), %d kept pseudonymized as %s (%d in archives), %d archives rewritten",
			r.RequestID, r.Operation, r.Status, r.Deleted+r.ArchivedDeleted, r.ArchivedDeleted, r.Pseudonymized+r.ArchivedPseudonymized,
			r.Pseudonym, r.ArchivedPseudonymized, r.Archives))
	}
	return out, nil
}
