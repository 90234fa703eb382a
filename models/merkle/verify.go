package merkle

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/transparency-dev/merkle/compact"
	"gorm.io/gorm"

	"auditdb/models"
)

// Verification outcomes, as written to audit_integrity_log.verification_status.
const (
	IntegritySuccess  = "success"  // hash, signature and log entry all match
	IntegrityTampered = "tampered" // the stored event no longer matches its hash, signature or log entry
	IntegrityFailure  = "failure"  // the event could not be checked (unknown scheme, unreadable details)
)

// EventCheck is the outcome of verifying one event.
type EventCheck struct {
	EventID      int64
	Status       string
	Reason       string
	ExpectedHash string // the hash stored with the event
	ComputedHash string // the hash recomputed from its fields
	HashOK       bool
	SignatureOK  bool
	LeafIndex    *int64 // the event's position in the organization's log, when sequenced
	LogMatches   bool   // the log entry holds the event's hash
	Checkpoint   *int64 // the first checkpoint that includes the event
	VerifiedBy   string
	VerifiedAt   time.Time
	// Fields is the state of each personal field of a sha256-jcs-v2 event (nil for v1).
	Fields []models.FieldCheck
}

// mismatched describes the personal fields that contradict their commitments, or "" when none does.
func mismatched(fields []models.FieldCheck) string {
	var out string
	for _, f := range fields {
		if f.State == models.FieldMismatch {
			if out != "" {
				out += "; "
			}
			out += "field " + f.Name + ": " + f.Reason
		}
	}
	return out
}

// Verifier verifies events and whole organizations against their hashes, signatures and
// Merkle log.
type Verifier struct {
	db     *gorm.DB
	events *models.EventStore
	sealer *models.Sealer
	log    *Log
	now    func() time.Time
}

// NewVerifier returns the verifier.
func NewVerifier(db *gorm.DB, sealer *models.Sealer, log *Log) *Verifier {
	return &Verifier{db: db, events: models.NewEventStore(db), sealer: sealer, log: log, now: time.Now}
}

// VerifyEvent recomputes event id's hash and signature, compares them with its log entry,
// records the outcome in audit_integrity_log (who asked, expected and computed hash) and
// returns it. It returns KindNotFound for another organization's event.
func (v *Verifier) VerifyEvent(ctx context.Context, org string, id int64, by string) (*EventCheck, error) {
	ev, err := v.events.Get(ctx, org, id)
	if err != nil {
		return nil, err
	}
	c := &EventCheck{EventID: id, ExpectedHash: ev.Hash, VerifiedBy: by, VerifiedAt: v.now().UTC()}
	switch res, err := v.sealer.Verify(ev); {
	case !models.KnownHashAlgorithm(ev.HashAlgorithm):
		c.Status, c.Reason = IntegrityFailure, fmt.Sprintf("unknown hash algorithm %q", ev.HashAlgorithm)
	case err != nil:
		c.Status, c.Reason = IntegrityFailure, "the stored details cannot be read: "+models.MessageOf(err)
	default:
		c.ComputedHash, c.HashOK, c.SignatureOK, c.Fields = res.ComputedHash, res.HashOK, res.SignatureOK, res.Fields
	}
	lf, err := v.log.Leaf(ctx, org, id)
	if err != nil && models.KindOf(err) != models.KindNotFound {
		return nil, err
	}
	if lf != nil {
		c.LeafIndex, c.LogMatches = &lf.LeafIndex, lf.EventHash == ev.Hash
		if cp, err := v.log.FirstCovering(ctx, org, lf.LeafIndex); err == nil {
			c.Checkpoint = &cp.Number
		}
	}
	if c.Status == "" {
		switch {
		case !c.HashOK && mismatched(c.Fields) != "":
			c.Status, c.Reason = IntegrityTampered, mismatched(c.Fields)
		case !c.HashOK:
			c.Status, c.Reason = IntegrityTampered, "the event's fields no longer match its hash"
		case !c.SignatureOK:
			c.Status, c.Reason = IntegrityTampered, "the hash's signature does not verify: the hash was rewritten"
		case lf != nil && !c.LogMatches:
			c.Status, c.Reason = IntegrityTampered, "the hash differs from the one in the Merkle log"
		default:
			c.Status = IntegritySuccess
			c.Reason = "hash and signature match"
			if lf != nil {
				c.Reason += "; the Merkle log holds the same hash"
			}
		}
	}
	details, _ := json.Marshal(map[string]any{"reason": c.Reason, "hashOk": c.HashOK, "signatureOk": c.SignatureOK,
		"leafIndex": c.LeafIndex, "logMatches": c.LogMatches, "checkpoint": c.Checkpoint, "hashAlgorithm": ev.HashAlgorithm, "fields": c.Fields})
	err = v.db.WithContext(ctx).Exec(`INSERT INTO audit_integrity_log (organization_id, audit_log_id, verification_timestamp,
		verification_status, verification_details, verified_by, hash_verified, expected_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		org, id, c.VerifiedAt, c.Status, string(details), by, c.ComputedHash, c.ExpectedHash).Error
	if err != nil {
		return nil, fmt.Errorf("merkle: record verification: %w", err)
	}
	return c, nil
}

// CheckRecord is a row of audit_integrity_log.
type CheckRecord struct {
	Status     string    `gorm:"column:verification_status"`
	VerifiedAt time.Time `gorm:"column:verification_timestamp"`
	VerifiedBy *string   `gorm:"column:verified_by"`
	Computed   *string   `gorm:"column:hash_verified"`
	Expected   *string   `gorm:"column:expected_hash"`
	Details    []byte    `gorm:"column:verification_details"`
}

// CheckFields checks the personal fields of a sha256-jcs-v2 event against their
// commitments with the server key (see models.Sealer.CheckFieldCommitments).
func (v *Verifier) CheckFields(ev *models.Event) ([]models.FieldCheck, error) {
	return v.sealer.CheckFieldCommitments(ev)
}

// LastCheck returns the newest verification of event id of org, or nil when it was never
// verified.
func (v *Verifier) LastCheck(ctx context.Context, org string, id int64) (*CheckRecord, error) {
	var rows []CheckRecord
	err := v.db.WithContext(ctx).Table("audit_integrity_log").Where("organization_id = ? AND audit_log_id = ?", org, id).
		Order("verification_timestamp DESC, id DESC").Limit(1).Find(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("merkle: last verification: %w", err)
	}
	if len(rows) == 0 {
		return nil, nil
	}
	return &rows[0], nil
}

// LogPosition is where an event stands in its organization's Merkle log.
type LogPosition struct {
	LeafIndex  *int64 // nil until the sequencer has appended the event
	Checkpoint *int64 // the first checkpoint that includes it, nil until one does
}

// Position returns event id's place in org's log.
func (v *Verifier) Position(ctx context.Context, org string, id int64) (LogPosition, error) {
	var pos LogPosition
	lf, err := v.log.Leaf(ctx, org, id)
	if models.KindOf(err) == models.KindNotFound {
		return pos, nil
	}
	if err != nil {
		return pos, err
	}
	pos.LeafIndex = &lf.LeafIndex
	cp, err := v.log.FirstCovering(ctx, org, lf.LeafIndex)
	if models.KindOf(err) == models.KindNotFound {
		return pos, nil
	}
	if err != nil {
		return pos, err
	}
	pos.Checkpoint = &cp.Number
	return pos, nil
}

// Finding kinds of an organization check.
const (
	FindingTampered   = "tampered"   // an event's fields, hash or signature were changed
	FindingMissing    = "missing"    // the log (or the sequencer queue) names an event the table lacks
	FindingInserted   = "inserted"   // an event is in the table but was never logged
	FindingLog        = "log"        // the leaf or node tables are inconsistent
	FindingCheckpoint = "checkpoint" // a checkpoint's signature, chain, root or consistency fails
	FindingArchive    = "archive"    // an archive's bytes or an archived event no longer match their checksums or log entry
)

// Finding is one problem an organization check found.
type Finding struct {
	Kind      string
	EventID   int64 // 0 when the finding is not about one event
	LeafIndex int64 // -1 when not about one leaf
	Detail    string
}

// maxFindings bounds how many findings a report keeps; Problems counts them all.
const maxFindings = 1000

// OrgReport is the outcome of checking one organization end to end.
type OrgReport struct {
	Org         string
	Events      int64 // events in the table
	Leaves      int64 // entries in the log
	Pending     int64 // events committed but not yet sequenced
	Checkpoints int64
	Archives    int64 // archives checked
	Archived    int64 // events verified from an archive
	Removed     int64 // log entries whose event retention (or an erasure) removed, by record
	// RemovedBy says what removed them, one line per policy and run, e.g.
	// "12 events removed by retention policy standard in run 3".
	RemovedBy []string
	// V2Events counts the per-field (sha256-jcs-v2 and -v3) events checked (live and
	// archived); ErasedFields and PseudonymizedFields count their committed fields an erasure or pseudonymization changed
	// (digest kept, so the event still verifies).
	V2Events            int64
	ErasedFields        int64
	PseudonymizedFields int64
	Problems            int64
	Findings            []Finding
}

// countFields adds a checked event's field states to the report.
func (r *OrgReport) countFields(ev *models.Event, res models.Verification) {
	if !models.PerFieldScheme(ev.HashAlgorithm) {
		return
	}
	r.V2Events++
	for _, f := range res.Fields {
		switch f.State {
		case models.FieldErased:
			r.ErasedFields++
		case models.FieldPseudonymized:
			r.PseudonymizedFields++
		}
	}
}

// OK reports whether the check found nothing wrong.
func (r *OrgReport) OK() bool { return r.Problems == 0 }

func (r *OrgReport) add(f Finding) {
	r.Problems++
	if len(r.Findings) < maxFindings {
		r.Findings = append(r.Findings, f)
	}
}

// CheckOrg verifies everything about org: every event's hash and signature, that every
// event is in the log (or queued for it) with the same hash, that every log entry still has
// its event, every checkpoint's signature, number and chain, that each checkpoint's root is
// the root of the first tree_size leaves, the stored interior nodes, and an RFC 6962
// consistency proof between each pair of consecutive checkpoints. It names each tampered,
// missing or inserted event. The error is for a check that could not run.
func (v *Verifier) CheckOrg(ctx context.Context, org string) (*OrgReport, error) {
	r := &OrgReport{Org: org}
	err := models.WithPgx(ctx, v.db, func(conn *pgx.Conn) error {
		cps, err := v.checkCheckpoints(ctx, conn, org, r)
		if err != nil {
			return err
		}
		if err := v.checkEvents(ctx, conn, org, r); err != nil {
			return err
		}
		if err := v.checkLeaves(ctx, conn, org, cps, r); err != nil {
			return err
		}
		if err := v.checkArchives(ctx, conn, org, r); err != nil {
			return err
		}
		if err := v.checkRemoved(ctx, conn, org, r); err != nil {
			return err
		}
		return v.checkMissing(ctx, conn, org, r)
	})
	if err != nil {
		return nil, fmt.Errorf("merkle: check %s: %w", org, err)
	}
	return r, nil
}

// checkCheckpoints verifies signatures, numbering and the chain, and returns the
// checkpoints in order.
func (v *Verifier) checkCheckpoints(ctx context.Context, conn *pgx.Conn, org string, r *OrgReport) ([]Checkpoint, error) {
	rows, _ := conn.Query(ctx, `SELECT number, tree_size, root_hash, note FROM audit_checkpoint
		WHERE organization_id = $1 ORDER BY number`, org)
	cps, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Checkpoint, error) {
		cp := Checkpoint{OrganizationID: org}
		err := row.Scan(&cp.Number, &cp.TreeSize, &cp.RootHash, &cp.Note)
		return cp, err
	})
	if err != nil {
		return nil, err
	}
	r.Checkpoints = int64(len(cps))
	prev := ""
	for i, cp := range cps {
		if cp.Number != int64(i+1) {
			r.add(Finding{Kind: FindingCheckpoint, LeafIndex: -1,
				Detail: fmt.Sprintf("checkpoint %d is numbered out of sequence (expected %d): one was removed or added", cp.Number, i+1)})
		}
		if err := OpenCheckpoint(v.log.key.Verifier(), org, cp, prev); err != nil {
			r.add(Finding{Kind: FindingCheckpoint, LeafIndex: -1, Detail: fmt.Sprintf("checkpoint %d %v", cp.Number, err)})
		}
		if i > 0 && cp.TreeSize <= cps[i-1].TreeSize {
			r.add(Finding{Kind: FindingCheckpoint, LeafIndex: -1,
				Detail: fmt.Sprintf("checkpoint %d does not grow the log (%d after %d leaves)", cp.Number, cp.TreeSize, cps[i-1].TreeSize)})
		}
		prev = cp.Note
	}
	return cps, nil
}

// checkEvents verifies each event of org and that the log (or the queue) holds it.
func (v *Verifier) checkEvents(ctx context.Context, conn *pgx.Conn, org string, r *OrgReport) error {
	rows, _ := conn.Query(ctx, `SELECT unnest(audit_log_ids) FROM audit_leaf_queue WHERE organization_id = $1`, org)
	queuedIDs, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return err
	}
	queued := make(map[int64]bool, len(queuedIDs))
	for _, id := range queuedIDs {
		queued[id] = true
	}
	rows, _ = conn.Query(ctx, `SELECT e.id, e."timestamp", e.ttl, e.principal_id, e.action, e.target_resource_type,
			e.target_resource_id, e.status, e.outcome_description, e.hash, e.hash_algorithm, e.event_version,
			e.correlation_id, e.data_classification, e.retention_policy, e.details, e.subject_salt, e.subject_digest,
			e.signature, e.field_commitments, l.leaf_index, l.event_hash
		FROM audit_log e
		LEFT JOIN audit_leaf l ON l.organization_id = e.organization_id AND l.audit_log_id = e.id
		WHERE e.organization_id = $1`, org)
	var ev models.Event
	var hash, digest, sig, leafHash *string
	var leafIndex *int64
	_, err = pgx.ForEachRow(rows, []any{&ev.ID, &ev.Timestamp, &ev.TTL, &ev.PrincipalID, &ev.Action, &ev.TargetResourceType,
		&ev.TargetResourceID, &ev.Status, &ev.OutcomeDescription, &hash, &ev.HashAlgorithm, &ev.EventVersion,
		&ev.CorrelationID, &ev.DataClassification, &ev.RetentionPolicy, &ev.Details, &ev.SubjectSalt, &digest,
		&sig, &ev.FieldCommitments, &leafIndex, &leafHash}, func() error {
		r.Events++
		ev.OrganizationID = org
		ev.Hash, ev.SubjectDigest, ev.Signature = deref(hash), deref(digest), deref(sig)
		li := int64(-1)
		if leafIndex != nil {
			li = *leafIndex
		}
		res, err := v.sealer.Verify(&ev)
		r.countFields(&ev, res)
		switch {
		case !models.KnownHashAlgorithm(ev.HashAlgorithm) || err != nil:
			r.add(Finding{Kind: FindingTampered, EventID: ev.ID, LeafIndex: li, Detail: "its hash cannot be recomputed (scheme, details or field commitments unreadable)"})
		case !res.HashOK && mismatched(res.Fields) != "":
			r.add(Finding{Kind: FindingTampered, EventID: ev.ID, LeafIndex: li, Detail: mismatched(res.Fields)})
		case !res.HashOK:
			r.add(Finding{Kind: FindingTampered, EventID: ev.ID, LeafIndex: li, Detail: "its fields no longer match its hash"})
		case !res.SignatureOK:
			r.add(Finding{Kind: FindingTampered, EventID: ev.ID, LeafIndex: li, Detail: "the signature of its hash does not verify"})
		}
		switch {
		case leafIndex != nil && deref(leafHash) != ev.Hash:
			r.add(Finding{Kind: FindingTampered, EventID: ev.ID, LeafIndex: li, Detail: "its hash differs from its entry in the Merkle log"})
		case leafIndex == nil && queued[ev.ID]:
			r.Pending++
		case leafIndex == nil:
			r.add(Finding{Kind: FindingInserted, EventID: ev.ID, LeafIndex: -1, Detail: "it is in no log entry: written outside the ingest path"})
		}
		return nil
	})
	return err
}

// checkLeaves recomputes the tree from the leaves, compares every checkpoint root and every
// stored interior node, and verifies consistency proofs between consecutive checkpoints.
func (v *Verifier) checkLeaves(ctx context.Context, conn *pgx.Conn, org string, cps []Checkpoint, r *OrgReport) error {
	rows, _ := conn.Query(ctx, `SELECT level, node_index, hash FROM audit_merkle_node WHERE organization_id = $1`, org)
	stored := map[compact.NodeID][]byte{}
	var level int16
	var index int64
	var hash []byte
	if _, err := pgx.ForEachRow(rows, []any{&level, &index, &hash}, func() error {
		stored[compact.NewNodeID(uint(level), uint64(index))] = bytes.Clone(hash)
		return nil
	}); err != nil {
		return err
	}
	tree := rangeFactory.NewEmptyRange(0)
	visit := func(id compact.NodeID, h []byte) {
		if id.Level < StoredLevel {
			return
		}
		s, ok := stored[id]
		switch {
		case !ok:
			r.add(Finding{Kind: FindingLog, LeafIndex: -1, Detail: fmt.Sprintf("interior node %d/%d is missing", id.Level, id.Index)})
		case !bytes.Equal(s, h):
			r.add(Finding{Kind: FindingLog, LeafIndex: -1, Detail: fmt.Sprintf("interior node %d/%d differs from the leaves", id.Level, id.Index)})
		}
		delete(stored, id)
	}
	next := 0 // the next checkpoint to compare
	rows, _ = conn.Query(ctx, `SELECT leaf_index, event_hash FROM audit_leaf WHERE organization_id = $1 ORDER BY leaf_index`, org)
	var eventHash string
	_, err := pgx.ForEachRow(rows, []any{&index, &eventHash}, func() error {
		if index != r.Leaves {
			r.add(Finding{Kind: FindingLog, LeafIndex: index, Detail: fmt.Sprintf("leaf %d follows leaf %d: entries were removed", index, r.Leaves-1)})
		}
		lh, err := LeafHash(eventHash)
		if err != nil {
			r.add(Finding{Kind: FindingLog, LeafIndex: index, Detail: "the leaf's hash is not a SHA-256"})
			lh = make([]byte, 32)
		}
		if err := tree.Append(lh, visit); err != nil {
			return err
		}
		r.Leaves++
		for next < len(cps) && cps[next].TreeSize == r.Leaves {
			root, err := tree.GetRootHash(nil)
			if err != nil {
				return err
			}
			if !bytes.Equal(root, cps[next].RootHash) {
				r.add(Finding{Kind: FindingCheckpoint, LeafIndex: -1, Detail: fmt.Sprintf(
					"checkpoint %d's root is not the root of the first %d leaves: the log was rewritten", cps[next].Number, cps[next].TreeSize)})
			}
			next++
		}
		return nil
	})
	if err != nil {
		return err
	}
	for ; next < len(cps); next++ {
		r.add(Finding{Kind: FindingCheckpoint, LeafIndex: -1, Detail: fmt.Sprintf(
			"checkpoint %d covers %d leaves but the log holds %d: entries were removed", cps[next].Number, cps[next].TreeSize, r.Leaves)})
	}
	for id := range stored {
		r.add(Finding{Kind: FindingLog, LeafIndex: -1, Detail: fmt.Sprintf("interior node %d/%d belongs to no leaves", id.Level, id.Index)})
	}
	for i := 1; i < len(cps); i++ {
		a, b := cps[i-1], cps[i]
		if b.TreeSize > r.Leaves || a.TreeSize >= b.TreeSize {
			continue // already reported
		}
		hashes, err := v.log.ConsistencyProof(ctx, org, a.TreeSize, b.TreeSize)
		if err == nil {
			err = VerifyConsistency(a.TreeSize, b.TreeSize, hashes, a.RootHash, b.RootHash)
		}
		if err != nil {
			r.add(Finding{Kind: FindingCheckpoint, LeafIndex: -1, Detail: fmt.Sprintf(
				"checkpoints %d and %d are not consistent: %v", a.Number, b.Number, err)})
		}
	}
	return nil
}

// checkMissing names the events the log or the sequencer queue holds but the table lacks,
// unless an archive holds them or a record says retention (or an erasure) removed them.
func (v *Verifier) checkMissing(ctx context.Context, conn *pgx.Conn, org string, r *OrgReport) error {
	rows, _ := conn.Query(ctx, `
		SELECT l.leaf_index, l.audit_log_id FROM audit_leaf l
		WHERE l.organization_id = $1 AND NOT EXISTS (SELECT 1 FROM audit_log e
			WHERE e.organization_id = l.organization_id AND e.id = l.audit_log_id AND e."timestamp" = l.event_timestamp)
		AND NOT EXISTS (SELECT 1 FROM archived_events a JOIN archive_storage s ON s.id = a.archive_id AND s.deleted_at IS NULL
				AND a.audit_log_id BETWEEN s.min_event_id AND s.max_event_id
			WHERE a.organization_id = l.organization_id AND a.audit_log_id = l.audit_log_id)
		AND NOT EXISTS (SELECT 1 FROM removed_events d
			WHERE d.organization_id = l.organization_id AND d.audit_log_id = l.audit_log_id)
		UNION ALL
		SELECT -1, q.id FROM audit_leaf_queue w, unnest(w.audit_log_ids, w.event_timestamps) AS q(id, ts)
		WHERE w.organization_id = $1 AND NOT EXISTS (SELECT 1 FROM audit_log e
			WHERE e.organization_id = w.organization_id AND e.id = q.id AND e."timestamp" = q.ts)
		ORDER BY 1, 2`, org)
	var leaf, id int64
	_, err := pgx.ForEachRow(rows, []any{&leaf, &id}, func() error {
		detail := fmt.Sprintf("log entry %d names it, but it is gone (deleted, or its time was changed)", leaf)
		if leaf < 0 {
			detail = "it was committed and queued for the log, but it is gone"
		}
		r.add(Finding{Kind: FindingMissing, EventID: id, LeafIndex: leaf, Detail: detail})
		return nil
	})
	return err
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// checkArchives opens each of org's archives, checks the SHA-256 of its compressed and
// decompressed bytes, recomputes each archived event's hash and signature from its line and
// compares the hash with the event's Merkle leaf. Every event archived_events places in an
// archive must be in its content.
func (v *Verifier) checkArchives(ctx context.Context, conn *pgx.Conn, org string, r *OrgReport) error {
	rows, _ := conn.Query(ctx, `SELECT id FROM archive_storage WHERE organization_id = $1 AND deleted_at IS NULL
		AND content IS NOT NULL ORDER BY month, part`, org)
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	for _, id := range ids {
		r.Archives++
		if err := v.checkArchive(ctx, conn, org, id, r); err != nil {
			return err
		}
	}
	return nil
}

type archivedLeaf struct {
	leafIndex int64
	leafHash  string
	seen      bool
}

func (v *Verifier) checkArchive(ctx context.Context, conn *pgx.Conn, org, id string, r *OrgReport) error {
	// The archive's rows through the primary key over its id range (archived_events has no
	// index on archive_id); checkMissing counts a row only inside that range too, so a row
	// placed outside its archive's range can hide no event.
	rows, _ := conn.Query(ctx, `SELECT a.audit_log_id, coalesce(l.leaf_index, -1), coalesce(l.event_hash, '')
		FROM archive_storage s JOIN archived_events a ON a.organization_id = s.organization_id
			AND a.audit_log_id BETWEEN s.min_event_id AND s.max_event_id AND a.archive_id = s.id
		LEFT JOIN audit_leaf l ON l.organization_id = a.organization_id AND l.audit_log_id = a.audit_log_id
		WHERE s.organization_id = $1 AND s.id = $2`, org, id)
	listed := map[int64]*archivedLeaf{}
	var eid, li int64
	var lh string
	if _, err := pgx.ForEachRow(rows, []any{&eid, &li, &lh}, func() error {
		listed[eid] = &archivedLeaf{leafIndex: li, leafHash: lh}
		return nil
	}); err != nil {
		return err
	}
	var meta models.Archive
	var content []byte
	err := conn.QueryRow(ctx, `SELECT id, event_count, original_size, compressed_size, sha256_original, sha256_compressed, content
		FROM archive_storage WHERE id = $1`, id).Scan(&meta.ID, &meta.EventCount, &meta.OriginalSize, &meta.CompressedSize,
		&meta.SHA256Original, &meta.SHA256Compressed, &content)
	if err != nil {
		return err
	}
	ar, err := models.OpenArchiveContent(meta, content)
	if err != nil {
		r.add(Finding{Kind: FindingArchive, LeafIndex: -1, Detail: models.ArchiveProblem(err)})
		return nil
	}
	defer ar.Close()
	for {
		line, err := ar.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			r.add(Finding{Kind: FindingArchive, LeafIndex: -1, Detail: models.ArchiveProblem(err)})
			return nil
		}
		r.Archived++
		ev := line.Event()
		res, verr := v.sealer.Verify(ev)
		r.countFields(ev, res)
		lf := listed[ev.ID]
		li := int64(-1)
		if lf != nil {
			li = lf.leafIndex
		}
		switch {
		case ev.OrganizationID != org || lf == nil:
			r.add(Finding{Kind: FindingArchive, EventID: ev.ID, LeafIndex: li, Detail: fmt.Sprintf("archive %s holds it, but no record places it there", id)})
			continue
		case !models.KnownHashAlgorithm(ev.HashAlgorithm) || verr != nil:
			r.add(Finding{Kind: FindingTampered, EventID: ev.ID, LeafIndex: li, Detail: fmt.Sprintf("in archive %s: its hash cannot be recomputed", id)})
		case !res.HashOK && mismatched(res.Fields) != "":
			r.add(Finding{Kind: FindingTampered, EventID: ev.ID, LeafIndex: li, Detail: fmt.Sprintf("in archive %s: %s", id, mismatched(res.Fields))})
		case !res.HashOK:
			r.add(Finding{Kind: FindingTampered, EventID: ev.ID, LeafIndex: li, Detail: fmt.Sprintf("in archive %s: its fields no longer match its hash", id)})
		case !res.SignatureOK:
			r.add(Finding{Kind: FindingTampered, EventID: ev.ID, LeafIndex: li, Detail: fmt.Sprintf("in archive %s: the signature of its hash does not verify", id)})
		case lf.leafIndex < 0:
			r.add(Finding{Kind: FindingInserted, EventID: ev.ID, LeafIndex: -1, Detail: fmt.Sprintf("in archive %s: it is in no log entry", id)})
		case lf.leafHash != ev.Hash:
			r.add(Finding{Kind: FindingTampered, EventID: ev.ID, LeafIndex: li, Detail: fmt.Sprintf("in archive %s: its hash differs from its entry in the Merkle log", id)})
		}
		lf.seen = true
	}
	for id2, lf := range listed {
		if !lf.seen {
			r.add(Finding{Kind: FindingMissing, EventID: id2, LeafIndex: lf.leafIndex, Detail: fmt.Sprintf("archive %s should hold it, but does not", id)})
		}
	}
	return nil
}

// checkRemoved counts the log entries whose event was removed by record, says by which
// policy and run, and checks that each record holds the hash of its log entry.
func (v *Verifier) checkRemoved(ctx context.Context, conn *pgx.Conn, org string, r *OrgReport) error {
	rows, _ := conn.Query(ctx, `SELECT d.reason, coalesce(d.policy, ''), coalesce(d.run_id, 0), coalesce(d.request_id, ''), count(*),
			count(*) FILTER (WHERE l.event_hash IS DISTINCT FROM d.event_hash)
		FROM removed_events d LEFT JOIN audit_leaf l ON l.organization_id = d.organization_id AND l.audit_log_id = d.audit_log_id
		WHERE d.organization_id = $1 GROUP BY 1, 2, 3, 4 ORDER BY 3, 2`, org)
	var reason, policy, request string
	var run, n, mismatched int64
	_, err := pgx.ForEachRow(rows, []any{&reason, &policy, &run, &request, &n, &mismatched}, func() error {
		r.Removed += n
		what := fmt.Sprintf("%d events removed by retention policy %s in run %d", n, policy, run)
		if reason == "gdpr" {
			what = fmt.Sprintf("%d events erased by request %s", n, request)
		}
		r.RemovedBy = append(r.RemovedBy, what)
		if mismatched > 0 {
			r.add(Finding{Kind: FindingLog, LeafIndex: -1, Detail: fmt.Sprintf("%d removal records of run %d name a hash their log entry does not hold", mismatched, run)})
		}
		return nil
	})
	return err
}
