package models

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"gorm.io/gorm"
)

// The selection rules of retention, one definition shared by the retention run, its dry
// run, the console's preview and the policies page's counts.
//
// The policy governing an event is, among the active policies: the organization's own
// policy named e.retention_policy; else the organization's own policy of e's data
// classification (the oldest, when it has several); else the global policy named
// e.retention_policy. An event with no governing policy is due for nothing. Days count in
// UTC calendar days: an event is due for the archive from the day date(event) +
// archive_after_days (UTC) on, and due for deletion from the day date(event) +
// delete_after_days (or retention_days when delete_after_days is empty). An event under an
// active legal hold (HeldPredicate, the one definition of "held") is never deleted, from
// audit_log or from an archive; archiving alone is allowed.
//
// retentionRules holds one organization's rules at one instant. Its SQL side is written per
// governing policy (governsSQL), so that every query narrows by the organization, the
// policy's cutoff (a range of the (organization_id, timestamp) index, which also prunes
// partitions) and two plain column tests before it asks, row by row, whether a hold keeps
// the event; its Go side (governing) decides the same for archived lines. A test holds the
// two to each other.

// retentionPolicy is one active policy that governs some of an organization's events.
type retentionPolicy struct {
	ID             int64
	Name           string
	Classification string
	Own            bool // the organization's own (else global)
	RetentionDays  int
	ArchiveAfter   *int
	DeleteAfter    *int
	ArchiveCutoff  time.Time // events before it are due for the archive (zero: never)
	DeleteCutoff   time.Time // events before it are due for deletion
}

// dueCutoff is the instant before which an event is due after days at now: the event
// becomes due on the UTC calendar day date(event)+days, at midnight.
func dueCutoff(now time.Time, days int) time.Time {
	y, m, d := now.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC).AddDate(0, 0, 1-days)
}

// bound is the latest of p's cutoffs: nothing at or after it is due for anything.
func (p *retentionPolicy) bound() time.Time {
	if p.ArchiveCutoff.After(p.DeleteCutoff) {
		return p.ArchiveCutoff
	}
	return p.DeleteCutoff
}

type retentionRules struct {
	org        string
	now        time.Time
	policies   []*retentionPolicy // the governing policies, by name
	own        map[string]*retentionPolicy
	global     map[string]*retentionPolicy
	classOwner map[string]*retentionPolicy // the organization's own policy of a classification
	ownNames   []string
	ownClasses []string
	holds      int64  // active legal holds of the organization
	policySet  string // policiesSQL's answer when the rules were read
}

// policiesSQL describes organization $1's active policies (its own and the global ones) in one
// string that any change to what they decide changes.
const policiesSQL = `SELECT coalesce(string_agg(id || ':' || organization_id || ':' || policy_name || ':' || data_classification
	|| ':' || retention_days || ':' || coalesce(archive_after_days, -1) || ':' || coalesce(delete_after_days, -1), ',' ORDER BY id), '')
	FROM audit_retention_policy WHERE is_active AND organization_id IN ('*', $1)`

// ErrPoliciesChanged stops an organization's part of a retention run whose policies changed
// after the run read them: nothing more is deleted under the old rules; the next run
// applies the new ones.
var ErrPoliciesChanged = errors.New("models: the retention policies changed during the run; the next run applies them")

// rulesStateSQL is organization $1's active legal holds and policiesSQL's description of
// its active policies.
const rulesStateSQL = `SELECT (SELECT count(*) FROM legal_holds WHERE organization_id = $1 AND released_at IS NULL), (` +
	policiesSQL + `)`

// recheck makes tx see every legal hold of the organization placed before it, keeps any new
// hold or release from committing until tx ends, and returns the organization's active holds;
// it returns ErrPoliciesChanged when the active policies, as tx sees them, are not the ones r
// was read from. Every deletion batch starts with it, so a hold placed or a policy changed
// while a run goes on counts from the next batch on (counted once at the run's start, a hold
// placed meanwhile did not stop the run's deletions). It must come before tx's first query: a
// SHARE lock on legal_holds takes no snapshot (an advisory lock taken by a SELECT would fix a
// REPEATABLE READ snapshot before it waited), and PlaceHold's insert waits for it.
func (r *retentionRules) recheck(ctx context.Context, tx pgx.Tx) (int64, error) {
	if _, err := tx.Exec(ctx, `LOCK TABLE legal_holds IN SHARE MODE`); err != nil {
		return 0, fmt.Errorf("lock legal holds: %w", err)
	}
	var holds int64
	var policies string
	if err := tx.QueryRow(ctx, rulesStateSQL, r.org).Scan(&holds, &policies); err != nil {
		return 0, fmt.Errorf("legal holds and retention policies: %w", err)
	}
	if policies != r.policySet {
		return 0, ErrPoliciesChanged
	}
	return holds, nil
}

// loadRetentionRules reads org's active policies (its own and the global ones) and counts
// its active legal holds.
func loadRetentionRules(ctx context.Context, db *gorm.DB, org string, now time.Time) (*retentionRules, error) {
	var rows []struct {
		ID                 int64
		OrganizationID     string
		PolicyName         string
		DataClassification string
		RetentionDays      int
		ArchiveAfterDays   *int
		DeleteAfterDays    *int
	}
	err := db.WithContext(ctx).Raw(`SELECT id, organization_id, policy_name, data_classification, retention_days,
		archive_after_days, delete_after_days FROM audit_retention_policy
		WHERE is_active AND organization_id IN ('*', ?) ORDER BY id`, org).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("models: retention policies: %w", err)
	}
	r := &retentionRules{org: org, now: now.UTC(), own: map[string]*retentionPolicy{}, global: map[string]*retentionPolicy{},
		classOwner: map[string]*retentionPolicy{}}
	for _, row := range rows {
		p := &retentionPolicy{ID: row.ID, Name: row.PolicyName, Classification: row.DataClassification,
			Own: row.OrganizationID != GlobalOrg, RetentionDays: row.RetentionDays, ArchiveAfter: row.ArchiveAfterDays,
			DeleteAfter: row.DeleteAfterDays}
		del := row.RetentionDays
		if row.DeleteAfterDays != nil {
			del = *row.DeleteAfterDays
		}
		p.DeleteCutoff = dueCutoff(now, del)
		if row.ArchiveAfterDays != nil {
			p.ArchiveCutoff = dueCutoff(now, *row.ArchiveAfterDays)
		}
		if !p.Own {
			r.global[p.Name] = p
			continue
		}
		r.own[p.Name] = p
		r.ownNames = append(r.ownNames, p.Name)
		if r.classOwner[p.Classification] == nil { // rows come oldest first
			r.classOwner[p.Classification] = p
			r.ownClasses = append(r.ownClasses, p.Classification)
		}
	}
	for _, p := range r.own {
		r.policies = append(r.policies, p)
	}
	for name, p := range r.global {
		if r.own[name] == nil { // an organization's policy of the same name wins
			r.policies = append(r.policies, p)
		}
	}
	sort.Slice(r.policies, func(i, j int) bool { return r.policies[i].Name < r.policies[j].Name })
	if r.ownNames == nil {
		r.ownNames = []string{}
	}
	if r.ownClasses == nil {
		r.ownClasses = []string{}
	}
	if err := WithPgx(ctx, db, func(conn *pgx.Conn) error {
		return conn.QueryRow(ctx, rulesStateSQL, org).Scan(&r.holds, &r.policySet)
	}); err != nil {
		return nil, fmt.Errorf("models: legal holds and retention policies: %w", err)
	}
	return r, nil
}

// governing returns the policy governing an event of retention policy name and data
// classification class, or nil.
func (r *retentionRules) governing(name, class string) *retentionPolicy {
	if p := r.own[name]; p != nil {
		return p
	}
	if p := r.classOwner[class]; p != nil {
		return p
	}
	if p := r.global[name]; p != nil {
		return p
	}
	return nil
}

// governsSQL returns the SQL condition (with ? placeholders) "policy p governs the event of
// alias e": tests of e.retention_policy and e.data_classification only.
func (r *retentionRules) governsSQL(p *retentionPolicy, e string) (string, []any) {
	if p.Own {
		if r.classOwner[p.Classification] == p {
			return `(` + e + `.retention_policy = ? OR (` + e + `.data_classification = ? AND NOT (` + e + `.retention_policy = ANY (?::text[]))))`,
				[]any{p.Name, p.Classification, r.ownNames}
		}
		return `(` + e + `.retention_policy = ?)`, []any{p.Name}
	}
	return `(` + e + `.retention_policy = ? AND NOT (` + e + `.data_classification = ANY (?::text[])))`, []any{p.Name, r.ownClasses}
}

// heldSQL returns HeldPredicate for the event of alias e, or "false" when the organization
// has no active hold (the same answer without a lookup per row).
func (r *retentionRules) heldSQL(e string) (string, []any) {
	if r.holds == 0 {
		return `false`, nil
	}
	return HeldPredicate(e, r.org)
}

// pgxSQL numbers the ? placeholders of q (built from conditions written for gorm) as pgx's
// $1, $2, …; q holds no other question mark.
func pgxSQL(q string) string {
	var b strings.Builder
	b.Grow(len(q) + 16)
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(q[i])
	}
	return b.String()
}

// retentionPlanRow is what is due, in one month, among the events one policy governs.
type retentionPlanRow struct {
	Policy  *retentionPolicy
	Month   time.Time
	Archive int64 // due for the archive and staying (not deleted by the same run)
	Delete  int64 // due for deletion and not held
	Kept    int64 // due for deletion and held
}

// plan counts, per governing policy and month, what a run at r.now would archive, delete
// and keep because of holds, in audit_log: one scan of the organization's range of the
// (organization_id, timestamp) index older than the latest cutoff.
func (r *retentionRules) plan(ctx context.Context, db *gorm.DB) ([]retentionPlanRow, error) {
	if len(r.policies) == 0 {
		return nil, nil
	}
	if r.holds == 0 {
		return r.planByDay(ctx, db)
	}
	return r.planByCase(ctx, db)
}

// planByCase is plan with holds: each row assigned to its governing policy by governsSQL, and
// the hold lookup only for rows due for deletion.
func (r *retentionRules) planByCase(ctx context.Context, db *gorm.DB) ([]retentionPlanRow, error) {
	var which, delCut, archCut strings.Builder
	var whichArgs, delArgs, archArgs []any
	var bound time.Time
	which.WriteString(`CASE`)
	delCut.WriteString(`CASE pi`)
	archCut.WriteString(`CASE pi`)
	for i, p := range r.policies {
		gov, gArgs := r.governsSQL(p, "e")
		fmt.Fprintf(&which, ` WHEN %s THEN %d`, gov, i)
		whichArgs = append(whichArgs, gArgs...)
		fmt.Fprintf(&delCut, ` WHEN %d THEN ?::timestamptz`, i)
		delArgs = append(delArgs, p.DeleteCutoff)
		fmt.Fprintf(&archCut, ` WHEN %d THEN ?::timestamptz`, i)
		archArgs = append(archArgs, p.ArchiveCutoff)
		if p.bound().After(bound) {
			bound = p.bound()
		}
	}
	which.WriteString(` END`)
	delCut.WriteString(` END`)
	archCut.WriteString(` END`)
	held, hArgs := r.heldSQL("e")
	q := `SELECT pi, date_trunc('month', e."timestamp" AT TIME ZONE 'UTC') AS m,
			count(*) FILTER (WHERE arch AND NOT (del AND NOT held)), count(*) FILTER (WHERE del AND NOT held),
			count(*) FILTER (WHERE del AND held)
		FROM (SELECT e.*, CASE WHEN del THEN ` + held + ` ELSE false END AS held
			FROM (SELECT e.*, e."timestamp" < ` + delCut.String() + ` AS del, e."timestamp" < ` + archCut.String() + ` AS arch
				FROM (SELECT ` + which.String() + ` AS pi, e.organization_id, e."timestamp", e.principal_id,
						e.target_resource_type, e.target_resource_id, e.correlation_id
					FROM audit_log e WHERE e.organization_id = ? AND e."timestamp" < ?) e
				WHERE pi IS NOT NULL) e
			WHERE del OR arch) e
		GROUP BY 1, 2 ORDER BY 1, 2`
	args := append(append([]any{}, hArgs...), delArgs...)
	args = append(append(args, archArgs...), whichArgs...)
	args = append(args, r.org, bound)
	var out []retentionPlanRow
	err := WithPgx(ctx, db, func(conn *pgx.Conn) error {
		return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			return r.scanPlan(ctx, tx, pgxSQL(q), args, &out)
		})
	})
	if err != nil {
		return nil, fmt.Errorf("models: plan retention: %w", err)
	}
	return out, nil
}

// planByDay is plan for an organization without active holds: nothing is held, and every
// cutoff is a UTC midnight, so an event's fate follows from its policy, classification and
// UTC day alone. PostgreSQL counts the events per (policy, classification, day) — a hash of
// a few hundred groups — and the governing policy and cutoffs are applied here to each group
// with the Go side of the rules (governing), which a test holds to the SQL side. The CASE
// over every row took twice as long at 1,000,000 events.
func (r *retentionRules) planByDay(ctx context.Context, db *gorm.DB) ([]retentionPlanRow, error) {
	var bound time.Time
	index := map[*retentionPolicy]int{}
	for i, p := range r.policies {
		index[p] = i
		if p.bound().After(bound) {
			bound = p.bound()
		}
	}
	type key struct {
		pi    int
		month time.Time
	}
	rows := map[key]*retentionPlanRow{}
	err := WithPgx(ctx, db, func(conn *pgx.Conn) error {
		return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `SET LOCAL jit = off; SET LOCAL work_mem = '64MB'`); err != nil {
				return err
			}
			res, _ := tx.Query(ctx, `SELECT e.retention_policy, e.data_classification, (e."timestamp" AT TIME ZONE 'UTC')::date, count(*)
				FROM audit_log e WHERE e.organization_id = $1 AND e."timestamp" < $2 GROUP BY 1, 2, 3`, r.org, bound)
			var name, class string
			var day time.Time
			var n int64
			_, err := pgx.ForEachRow(res, []any{&name, &class, &day, &n}, func() error {
				p := r.governing(name, class)
				if p == nil {
					return nil
				}
				day = time.Date(day.Year(), day.Month(), day.Day(), 0, 0, 0, 0, time.UTC)
				del, arch := day.Before(p.DeleteCutoff), day.Before(p.ArchiveCutoff)
				if !del && !arch {
					return nil
				}
				k := key{index[p], time.Date(day.Year(), day.Month(), 1, 0, 0, 0, 0, time.UTC)}
				row := rows[k]
				if row == nil {
					row = &retentionPlanRow{Policy: p, Month: k.month}
					rows[k] = row
				}
				if del {
					row.Delete += n
				} else {
					row.Archive += n
				}
				return nil
			})
			return err
		})
	})
	if err != nil {
		return nil, fmt.Errorf("models: plan retention: %w", err)
	}
	out := make([]retentionPlanRow, 0, len(rows))
	for _, row := range rows {
		out = append(out, *row)
	}
	sort.Slice(out, func(i, j int) bool {
		if pi, pj := index[out[i].Policy], index[out[j].Policy]; pi != pj {
			return pi < pj
		}
		return out[i].Month.Before(out[j].Month)
	})
	return out, nil
}

// scanPlan runs plan's query q in tx. PostgreSQL cannot estimate how few (policy, month)
// groups the CASE over every row yields, so it planned a sort spilling to disk and compiled
// the expressions (JIT, a third of the time at 1,000,000 events); with the work memory for a
// hash of the groups and without JIT the same scan took 40 % less (docs/benchmarks.md).
func (r *retentionRules) scanPlan(ctx context.Context, tx pgx.Tx, q string, args []any, out *[]retentionPlanRow) error {
	if _, err := tx.Exec(ctx, `SET LOCAL jit = off; SET LOCAL work_mem = '64MB'`); err != nil {
		return err
	}
	rows, _ := tx.Query(ctx, q, args...)
	var pi int
	var m time.Time
	var a, d, k int64
	_, err := pgx.ForEachRow(rows, []any{&pi, &m, &a, &d, &k}, func() error {
		*out = append(*out, retentionPlanRow{Policy: r.policies[pi], Month: time.Date(m.Year(), m.Month(), 1, 0, 0, 0, 0, time.UTC),
			Archive: a, Delete: d, Kept: k})
		return nil
	})
	return err
}

// heldByHold counts, per active hold, the events due for deletion it keeps (an event may be
// kept by several holds).
func (r *retentionRules) heldByHold(ctx context.Context, db *gorm.DB) ([]HoldKeeps, error) {
	if r.holds == 0 {
		return nil, nil
	}
	byID := map[int64]*HoldKeeps{}
	var order []int64
	for _, p := range r.policies {
		gov, gArgs := r.governsSQL(p, "e")
		one, oArgs := holdMatches("h", "e")
		q := `SELECT h.id AS hold_id, h.name, count(*) AS events FROM legal_holds h
			JOIN audit_log e ON e.organization_id = h.organization_id AND ` + one + `
			WHERE h.organization_id = ? AND h.released_at IS NULL AND e.organization_id = ? AND e."timestamp" < ? AND ` + gov + `
			GROUP BY h.id, h.name ORDER BY h.id`
		var rows []HoldKeeps
		args := append(append(oArgs, r.org, r.org, p.DeleteCutoff), gArgs...)
		if err := WithPgx(ctx, db, func(conn *pgx.Conn) error {
			res, _ := conn.Query(ctx, pgxSQL(q), args...)
			var k HoldKeeps
			_, err := pgx.ForEachRow(res, []any{&k.HoldID, &k.Name, &k.Events}, func() error {
				rows = append(rows, k)
				return nil
			})
			return err
		}); err != nil {
			return nil, fmt.Errorf("models: preview legal holds: %w", err)
		}
		for _, k := range rows {
			if byID[k.HoldID] == nil {
				byID[k.HoldID] = &HoldKeeps{HoldID: k.HoldID, Name: k.Name}
				order = append(order, k.HoldID)
			}
			byID[k.HoldID].Events += k.Events
		}
	}
	sort.Slice(order, func(i, j int) bool { return order[i] < order[j] })
	out := make([]HoldKeeps, 0, len(order))
	for _, id := range order {
		out = append(out, *byID[id])
	}
	return out, nil
}
