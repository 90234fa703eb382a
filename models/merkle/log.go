// Package merkle keeps each organization's append-only Merkle log of event hashes (RFC 6962
// tree, signed checkpoints chained to one another), sequences queued events into it and
// verifies events and whole organizations against their hashes, signatures and the log.
package merkle

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	tlog "github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
	"gorm.io/gorm"

	"auditdb/models"
)

// StoredLevel is the lowest tree level whose complete nodes are kept in audit_merkle_node:
// a proof reads those few rows plus at most two runs of 2^StoredLevel leaves, while the
// node table stays about 1/32 the size of the leaf table.
const StoredLevel = 6

// sequencerLockKey serializes Sequence calls across instances (the job runs on one leader
// anyway; this also covers tests and the CLI).
const sequencerLockKey = 72_000_004

// logHasher is the RFC 6962 tree hash.
var logHasher = rfc6962.DefaultHasher

var rangeFactory = compact.RangeFactory{Hash: logHasher.HashChildren}

// LogKeyName is the name of the checkpoint signing key in signed notes.
const LogKeyName = "auditdb"

// Origin is the C2SP checkpoint origin of org's log.
func Origin(org string) string { return "auditdb/" + org }

// CheckpointKey signs checkpoints with an Ed25519 key kept outside the database. It
// implements note.Signer.
type CheckpointKey struct {
	priv     ed25519.PrivateKey
	verifier note.Verifier
	vkey     string
}

// NewCheckpointKey returns the signer for a 32-byte Ed25519 seed. It returns an error for
// any other length.
func NewCheckpointKey(seed []byte) (*CheckpointKey, error) {
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("merkle: checkpoint key must be a %d-byte Ed25519 seed, got %d bytes", ed25519.SeedSize, len(seed))
	}
	priv := ed25519.NewKeyFromSeed(seed)
	vkey, err := note.NewEd25519VerifierKey(LogKeyName, priv.Public().(ed25519.PublicKey))
	if err != nil {
		return nil, fmt.Errorf("merkle: checkpoint verifier key: %w", err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, fmt.Errorf("merkle: checkpoint verifier: %w", err)
	}
	return &CheckpointKey{priv: priv, verifier: v, vkey: vkey}, nil
}

// Name is the key name in signature lines.
func (k *CheckpointKey) Name() string { return LogKeyName }

// KeyHash identifies the key in signature lines.
func (k *CheckpointKey) KeyHash() uint32 { return k.verifier.KeyHash() }

// Sign signs msg with Ed25519.
func (k *CheckpointKey) Sign(msg []byte) ([]byte, error) { return ed25519.Sign(k.priv, msg), nil }

// VerifierKey returns the public verifier key ("auditdb+<hash>+<key>") that anyone can use
// to check checkpoints.
func (k *CheckpointKey) VerifierKey() string { return k.vkey }

// Verifier returns the note verifier of the key.
func (k *CheckpointKey) Verifier() note.Verifier { return k.verifier }

// Leaf is a row of audit_leaf: leaf LeafIndex of an organization's log is the hash of one
// event.
type Leaf struct {
	OrganizationID string    `gorm:"column:organization_id;primaryKey"`
	LeafIndex      int64     `gorm:"column:leaf_index;primaryKey"`
	AuditLogID     int64     `gorm:"column:audit_log_id"`
	EventTimestamp time.Time `gorm:"column:event_timestamp"`
	EventHash      string    `gorm:"column:event_hash"`
	SequencedAt    time.Time `gorm:"column:sequenced_at"`
}

// TableName maps Leaf to audit_leaf.
func (Leaf) TableName() string { return "audit_leaf" }

// Checkpoint is a row of audit_checkpoint: the signed tree head after TreeSize leaves.
type Checkpoint struct {
	OrganizationID string    `gorm:"column:organization_id;primaryKey"`
	Number         int64     `gorm:"column:number;primaryKey"`
	TreeSize       int64     `gorm:"column:tree_size"`
	RootHash       []byte    `gorm:"column:root_hash"`
	Note           string    `gorm:"column:note"`
	CreatedAt      time.Time `gorm:"column:created_at"`
}

// TableName maps Checkpoint to audit_checkpoint.
func (Checkpoint) TableName() string { return "audit_checkpoint" }

// LeafHash returns the RFC 6962 leaf hash of a hex event hash: SHA-256(0x00 ‖ hash bytes).
func LeafHash(eventHash string) ([]byte, error) {
	raw, err := hex.DecodeString(eventHash)
	if err != nil || len(raw) != sha256.Size {
		return nil, fmt.Errorf("merkle: %q is not a hex SHA-256 event hash", eventHash)
	}
	return logHasher.HashLeaf(raw), nil
}

// Log is the append-only, signed log of event hashes per organization.
type Log struct {
	db  *gorm.DB
	key *CheckpointKey
	now func() time.Time
	// CheckpointEvery is the least time between two checkpoints of one organization; leaves
	// appended meanwhile wait for the next one. Zero publishes on every Sequence.
	CheckpointEvery time.Duration
}

// NewLog returns the log over db, signing with key.
func NewLog(db *gorm.DB, key *CheckpointKey) *Log {
	return &Log{db: db, key: key, now: time.Now, CheckpointEvery: 10 * time.Second}
}

// Key returns the checkpoint key.
func (l *Log) Key() *CheckpointKey { return l.key }

// SequenceResult reports one Sequence call.
type SequenceResult struct {
	Leaves      int      // leaves appended
	Checkpoints int      // checkpoints published
	Orgs        []string // organizations that got a checkpoint
}

type queuedLeaf struct {
	id   int64
	org  string
	ts   time.Time
	hash string
}

// Sequence moves queued events into their organizations' logs, whole queue rows (writes)
// until at least limit events or the queue's end, and publishes a checkpoint for every
// organization whose log grew past its latest checkpoint (and whose latest checkpoint is at
// least CheckpointEvery old), all in one transaction.
func (l *Log) Sequence(ctx context.Context, limit int) (SequenceResult, error) {
	var res SequenceResult
	err := models.WithPgx(ctx, l.db, func(conn *pgx.Conn) error {
		res = SequenceResult{}
		return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, sequencerLockKey); err != nil {
				return err
			}
			// Whole queue rows (one per write and organization), in physical order, until
			// they hold limit events; always at least one.
			rows, _ := tx.Query(ctx, `DELETE FROM audit_leaf_queue WHERE ctid = ANY(ARRAY(
					SELECT ctid FROM (SELECT ctid, sum(cardinality(audit_log_ids)) OVER (ROWS UNBOUNDED PRECEDING)
						- cardinality(audit_log_ids) AS before FROM audit_leaf_queue) w
					WHERE before < $1))
				RETURNING organization_id, audit_log_ids, event_timestamps, hashes`, limit)
			var queued []queuedLeaf
			lasts := map[string][]int64{} // per organization, the last id of each queue row
			var org string
			var ids []int64
			var times []time.Time
			var hashes []string
			_, err := pgx.ForEachRow(rows, []any{&org, &ids, &times, &hashes}, func() error {
				if len(times) != len(ids) || len(hashes) != len(ids) {
					return fmt.Errorf("merkle: a leaf queue row of %s has arrays of unequal length", org)
				}
				for i := range ids {
					queued = append(queued, queuedLeaf{id: ids[i], org: org, ts: times[i], hash: hashes[i]})
				}
				if len(ids) > 0 {
					lasts[org] = append(lasts[org], slices.Max(ids))
				}
				return nil
			})
			if err != nil {
				return err
			}
			byOrg := map[string][]queuedLeaf{}
			for _, q := range queued {
				byOrg[q.org] = append(byOrg[q.org], q)
			}
			for org, qs := range byOrg {
				sort.Slice(qs, func(i, j int) bool { return qs[i].id < qs[j].id })
				first, err := l.appendLeaves(ctx, tx, org, qs)
				if err != nil {
					return err
				}
				if err := recordDetectionRun(ctx, tx, org, first, qs, lasts[org]); err != nil {
					return err
				}
				res.Leaves += len(qs)
			}
			due, err := l.dueForCheckpoint(ctx, tx)
			if err != nil {
				return err
			}
			for _, org := range due {
				if err := l.publish(ctx, tx, org); err != nil {
					return err
				}
				res.Checkpoints++
				res.Orgs = append(res.Orgs, org)
			}
			return nil
		})
	})
	if err != nil {
		return SequenceResult{}, fmt.Errorf("merkle: sequence: %w", err)
	}
	return res, nil
}

// VacuumQueue reclaims the space of sequenced queue rows. The queue is written and emptied
// continuously, so without a vacuum its dead rows pile up and every Sequence call would scan
// them; autovacuum may be slow to notice, or switched off.
func (l *Log) VacuumQueue(ctx context.Context) error {
	if err := l.db.WithContext(ctx).Exec(`VACUUM (SKIP_LOCKED) audit_leaf_queue`).Error; err != nil {
		return fmt.Errorf("merkle: vacuum the leaf queue: %w", err)
	}
	return nil
}

// recordDetectionRun tells detection which writes' events the leaves from first on are:
// the last ids of their queue rows (lasts), which are those of their detection feed rows,
// and the sum of the events' ids (wrapping), when a feed row of them exists
// (models/detectfeed.go, migration 0060). One small row per organization and call.
func recordDetectionRun(ctx context.Context, tx pgx.Tx, org string, first int64, qs []queuedLeaf, lasts []int64) error {
	var sum int64
	for _, q := range qs {
		sum += q.id
	}
	_, err := tx.Exec(ctx, `INSERT INTO detection_run (organization_id, first_leaf, leaves, feed_last_ids, id_sum)
		SELECT $1::text, $2::bigint, $3::integer, $4::bigint[], $5::bigint
		WHERE EXISTS (SELECT 1 FROM detection_feed WHERE organization_id = $1::text AND last_id = ANY($4::bigint[]))
		ON CONFLICT DO NOTHING`, org, first, len(qs), lasts, sum)
	return err
}

// appendLeaves appends qs to org's log with their complete interior nodes and returns the
// index of the first.
func (l *Log) appendLeaves(ctx context.Context, tx pgx.Tx, org string, qs []queuedLeaf) (int64, error) {
	size, err := logSize(ctx, tx, org)
	if err != nil {
		return 0, err
	}
	r, err := l.rangeAt(ctx, tx, org, size)
	if err != nil {
		return 0, err
	}
	type nodeRow struct {
		level int16
		index int64
		hash  []byte
	}
	var nodes []nodeRow
	visit := func(id compact.NodeID, hash []byte) {
		if id.Level >= StoredLevel {
			nodes = append(nodes, nodeRow{int16(id.Level), int64(id.Index), bytes.Clone(hash)})
		}
	}
	for _, q := range qs {
		lh, err := LeafHash(q.hash)
		if err != nil {
			return 0, err
		}
		if err := r.Append(lh, visit); err != nil {
			return 0, err
		}
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"audit_leaf"},
		[]string{"organization_id", "leaf_index", "audit_log_id", "event_timestamp", "event_hash"},
		pgx.CopyFromSlice(len(qs), func(i int) ([]any, error) {
			return []any{org, size + int64(i), qs[i].id, qs[i].ts, qs[i].hash}, nil
		})); err != nil {
		return 0, err
	}
	if len(nodes) > 0 {
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"audit_merkle_node"},
			[]string{"organization_id", "level", "node_index", "hash"},
			pgx.CopyFromSlice(len(nodes), func(i int) ([]any, error) {
				return []any{org, nodes[i].level, nodes[i].index, nodes[i].hash}, nil
			})); err != nil {
			return 0, err
		}
	}
	return size, nil
}

// dueForCheckpoint lists the organizations whose log holds leaves past their latest
// checkpoint, latest checkpoint older than CheckpointEvery.
func (l *Log) dueForCheckpoint(ctx context.Context, tx pgx.Tx) ([]string, error) {
	rows, _ := tx.Query(ctx, `
		SELECT o.id FROM organizations o
		CROSS JOIN LATERAL (SELECT leaf_index + 1 AS size FROM audit_leaf
			WHERE organization_id = o.id ORDER BY leaf_index DESC LIMIT 1) leaves
		LEFT JOIN LATERAL (SELECT tree_size, created_at FROM audit_checkpoint
			WHERE organization_id = o.id ORDER BY number DESC LIMIT 1) cp ON true
		WHERE leaves.size > coalesce(cp.tree_size, 0)
		  AND (cp.created_at IS NULL OR cp.created_at <= $1)
		ORDER BY o.id`, l.now().Add(-l.CheckpointEvery).UTC())
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// publish signs and stores the next checkpoint of org over its whole log.
func (l *Log) publish(ctx context.Context, tx pgx.Tx, org string) error {
	size, err := logSize(ctx, tx, org)
	if err != nil {
		return err
	}
	r, err := l.rangeAt(ctx, tx, org, size)
	if err != nil {
		return err
	}
	root, err := r.GetRootHash(nil)
	if err != nil {
		return err
	}
	var number int64
	var prevNote string
	err = tx.QueryRow(ctx, `SELECT number, note FROM audit_checkpoint WHERE organization_id = $1
		ORDER BY number DESC LIMIT 1`, org).Scan(&number, &prevNote)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return err
	}
	number++
	signed, err := l.sign(org, number, uint64(size), root, prevNote)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `INSERT INTO audit_checkpoint (organization_id, number, tree_size, root_hash, note, created_at)
		VALUES ($1, $2, $3, $4, $5, $6)`, org, number, size, root, signed, l.now().UTC())
	return err
}

// sign builds the C2SP checkpoint body (origin, size, root) with two extension lines —
// "seq N" and, after the first, "prev <base64 SHA-256 of the previous signed checkpoint>"
// — and signs it as a note.
func (l *Log) sign(org string, number int64, size uint64, root []byte, prevNote string) (string, error) {
	var body strings.Builder
	body.Write(tlog.Checkpoint{Origin: Origin(org), Size: size, Hash: root}.Marshal())
	fmt.Fprintf(&body, "seq %d\n", number)
	if prevNote != "" {
		sum := sha256.Sum256([]byte(prevNote))
		fmt.Fprintf(&body, "prev %s\n", base64.StdEncoding.EncodeToString(sum[:]))
	}
	msg, err := note.Sign(&note.Note{Text: body.String()}, l.key)
	if err != nil {
		return "", fmt.Errorf("merkle: sign checkpoint: %w", err)
	}
	return string(msg), nil
}

// OpenCheckpoint checks cp's signature and contents against org, its number and the
// previous checkpoint's signed text ("" for the first). It returns an error saying what is
// wrong.
func OpenCheckpoint(v note.Verifier, org string, cp Checkpoint, prevNote string) error {
	parsed, ext, _, err := tlog.ParseCheckpoint([]byte(cp.Note), Origin(org), v)
	if err != nil {
		return fmt.Errorf("signature or format does not verify: %v", err)
	}
	if int64(parsed.Size) != cp.TreeSize || !bytes.Equal(parsed.Hash, cp.RootHash) {
		return fmt.Errorf("signed size and root differ from the stored ones")
	}
	want := fmt.Sprintf("seq %d\n", cp.Number)
	if prevNote != "" {
		sum := sha256.Sum256([]byte(prevNote))
		want += "prev " + base64.StdEncoding.EncodeToString(sum[:]) + "\n"
	}
	if string(ext) != want {
		return fmt.Errorf("is not chained to checkpoint %d", cp.Number-1)
	}
	return nil
}

type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func logSize(ctx context.Context, q querier, org string) (int64, error) {
	var size int64
	err := q.QueryRow(ctx, models.LogSizeSQL, org).Scan(&size)
	return size, err
}

// rangeAt rebuilds the compact range [0, size) of org's log from stored nodes and leaves.
func (l *Log) rangeAt(ctx context.Context, q querier, org string, size int64) (*compact.Range, error) {
	ids := compact.RangeNodes(0, uint64(size), nil)
	hashes, err := nodeHashes(ctx, q, org, ids)
	if err != nil {
		return nil, err
	}
	return rangeFactory.NewRange(0, uint64(size), hashes)
}

// nodeHashes returns the hashes of complete tree nodes: stored ones from audit_merkle_node,
// lower ones computed from their leaves.
func nodeHashes(ctx context.Context, q querier, org string, ids []compact.NodeID) ([][]byte, error) {
	out := make([][]byte, len(ids))
	var levels []int16
	var indexes []int64
	at := map[compact.NodeID]int{}
	blocks := map[uint64]bool{} // leaf blocks of 2^StoredLevel holding the lower nodes
	for i, id := range ids {
		at[id] = i
		if id.Level >= StoredLevel {
			levels, indexes = append(levels, int16(id.Level)), append(indexes, int64(id.Index))
		} else {
			begin, _ := id.Coverage()
			blocks[begin>>StoredLevel] = true
		}
	}
	if len(levels) > 0 {
		rows, _ := q.Query(ctx, `SELECT level, node_index, hash FROM audit_merkle_node
			WHERE organization_id = $1 AND (level, node_index) IN (SELECT * FROM unnest($2::smallint[], $3::bigint[]))`,
			org, levels, indexes)
		var level int16
		var index int64
		var hash []byte
		_, err := pgx.ForEachRow(rows, []any{&level, &index, &hash}, func() error {
			out[at[compact.NewNodeID(uint(level), uint64(index))]] = bytes.Clone(hash)
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	if len(blocks) > 0 {
		// Every block's leaves in one query, however many blocks: a batch of proofs over
		// neighbouring events needs many.
		starts := make([]int64, 0, len(blocks))
		for block := range blocks {
			starts = append(starts, int64(block<<StoredLevel))
		}
		rows, _ := q.Query(ctx, `SELECT l.leaf_index, l.event_hash FROM unnest($2::bigint[]) AS b(start)
			JOIN audit_leaf l ON l.organization_id = $1 AND l.leaf_index >= b.start AND l.leaf_index < b.start + $3
			ORDER BY l.leaf_index`, org, starts, int64(1)<<StoredLevel)
		leaves := map[uint64][][]byte{} // per block, its leaf hashes from its start, without gaps
		var index int64
		var h string
		_, err := pgx.ForEachRow(rows, []any{&index, &h}, func() error {
			block := uint64(index) >> StoredLevel
			if uint64(index)-block<<StoredLevel != uint64(len(leaves[block])) {
				return fmt.Errorf("merkle: log of %s lacks leaf %d", org, block<<StoredLevel+uint64(len(leaves[block])))
			}
			lh, err := LeafHash(h)
			if err != nil {
				return err
			}
			leaves[block] = append(leaves[block], lh)
			return nil
		})
		if err != nil {
			return nil, err
		}
		for i, id := range ids {
			if id.Level >= StoredLevel {
				continue
			}
			b, e := id.Coverage()
			block := b >> StoredLevel
			begin := block << StoredLevel
			if e-begin > uint64(len(leaves[block])) {
				return nil, fmt.Errorf("merkle: log of %s lacks leaves %d..%d", org, b, e-1)
			}
			out[i] = perfectRoot(leaves[block][b-begin : e-begin])
		}
	}
	for i, h := range out {
		if h == nil {
			return nil, fmt.Errorf("merkle: log of %s lacks node %d/%d", org, ids[i].Level, ids[i].Index)
		}
	}
	return out, nil
}

// perfectRoot returns the root of a perfect subtree over leaf hashes (a power of two).
func perfectRoot(leaves [][]byte) []byte {
	if len(leaves) == 1 {
		return leaves[0]
	}
	half := len(leaves) / 2
	return logHasher.HashChildren(perfectRoot(leaves[:half]), perfectRoot(leaves[half:]))
}

// InclusionProof proves that one event's hash is leaf LeafIndex of the tree a signed
// checkpoint commits to.
type InclusionProof struct {
	EventID    int64
	EventHash  string
	LeafIndex  int64
	LeafHash   []byte
	Hashes     [][]byte
	Checkpoint Checkpoint
}

// Leaf returns the log entry of event id of org, or KindNotFound when the event is not
// (yet) in the log.
func (l *Log) Leaf(ctx context.Context, org string, eventID int64) (*Leaf, error) {
	var lf Leaf
	err := l.db.WithContext(ctx).Where("organization_id = ? AND audit_log_id = ?", org, eventID).Take(&lf).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, models.NotFound("log entry")
	}
	if err != nil {
		return nil, fmt.Errorf("merkle: log entry: %w", err)
	}
	return &lf, nil
}

// Latest returns org's newest checkpoint, or KindNotFound when it has none.
func (l *Log) Latest(ctx context.Context, org string) (*Checkpoint, error) {
	var cp Checkpoint
	err := l.db.WithContext(ctx).Where("organization_id = ?", org).Order("number DESC").Take(&cp).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, models.NotFound("checkpoint")
	}
	if err != nil {
		return nil, fmt.Errorf("merkle: latest checkpoint: %w", err)
	}
	return &cp, nil
}

// FirstCovering returns the first checkpoint of org that includes leaf index, or
// KindNotFound when none does yet.
func (l *Log) FirstCovering(ctx context.Context, org string, index int64) (*Checkpoint, error) {
	var cp Checkpoint
	err := l.db.WithContext(ctx).Where("organization_id = ? AND tree_size > ?", org, index).
		Order("tree_size, number").Take(&cp).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, models.NotFound("checkpoint")
	}
	if err != nil {
		return nil, fmt.Errorf("merkle: covering checkpoint: %w", err)
	}
	return &cp, nil
}

// ErrNotYetLogged is returned for an event not yet covered by a checkpoint.
var ErrNotYetLogged = &models.Error{Kind: models.KindNotFound, Message: "the event is not in a signed checkpoint yet; retry in a few seconds",
	RetryAfter: 10 * time.Second}

// Prove returns the inclusion proof of event id of org in org's latest checkpoint. It
// returns KindNotFound (ErrNotYetLogged) until a checkpoint covers the event, and for an
// event of another organization.
func (l *Log) Prove(ctx context.Context, org string, eventID int64) (*InclusionProof, error) {
	lf, err := l.Leaf(ctx, org, eventID)
	if err != nil {
		return nil, ErrNotYetLogged
	}
	cp, err := l.Latest(ctx, org)
	if err != nil || cp.TreeSize <= lf.LeafIndex {
		return nil, ErrNotYetLogged
	}
	return l.proveIn(ctx, org, lf, cp)
}

// proveIn returns the inclusion proof of the leaf lf in checkpoint cp, which covers it.
func (l *Log) proveIn(ctx context.Context, org string, lf *Leaf, cp *Checkpoint) (*InclusionProof, error) {
	nodes, err := proof.Inclusion(uint64(lf.LeafIndex), uint64(cp.TreeSize))
	if err != nil {
		return nil, fmt.Errorf("merkle: inclusion proof: %w", err)
	}
	hashes, err := l.fetch(ctx, org, nodes)
	if err != nil {
		return nil, err
	}
	lh, err := LeafHash(lf.EventHash)
	if err != nil {
		return nil, err
	}
	return &InclusionProof{EventID: lf.AuditLogID, EventHash: lf.EventHash, LeafIndex: lf.LeafIndex, LeafHash: lh,
		Hashes: hashes, Checkpoint: *cp}, nil
}

// ConsistencyProof returns the RFC 6962 proof that org's tree of size2 extends its tree of
// size1.
func (l *Log) ConsistencyProof(ctx context.Context, org string, size1, size2 int64) ([][]byte, error) {
	nodes, err := proof.Consistency(uint64(size1), uint64(size2))
	if err != nil {
		return nil, fmt.Errorf("merkle: consistency proof: %w", err)
	}
	return l.fetch(ctx, org, nodes)
}

// fetch reads the nodes a proof needs and assembles the proof.
func (l *Log) fetch(ctx context.Context, org string, nodes proof.Nodes) ([][]byte, error) {
	var hashes [][]byte
	err := models.WithPgx(ctx, l.db, func(conn *pgx.Conn) error {
		var err error
		hashes, err = nodeHashes(ctx, conn, org, nodes.IDs)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("merkle: proof nodes: %w", err)
	}
	return nodes.Rehash(hashes, logHasher.HashChildren)
}

// VerifyInclusion checks an inclusion proof against its checkpoint's root.
func VerifyInclusion(p *InclusionProof) error {
	return proof.VerifyInclusion(logHasher, uint64(p.LeafIndex), uint64(p.Checkpoint.TreeSize), p.LeafHash, p.Hashes,
		p.Checkpoint.RootHash)
}

// VerifyConsistency checks a consistency proof between two roots.
func VerifyConsistency(size1, size2 int64, hashes [][]byte, root1, root2 []byte) error {
	return proof.VerifyConsistency(logHasher, uint64(size1), uint64(size2), hashes, root1, root2)
}

// QueueLag returns the age of the oldest write still waiting in the leaf queue for the
// sequencer, 0 when none waits. Any instance can read it, whichever runs the sequencer.
func (l *Log) QueueLag(ctx context.Context) (time.Duration, error) {
	var seconds float64
	if err := l.db.WithContext(ctx).Raw(`SELECT coalesce(extract(epoch FROM clock_timestamp() - min(queued_at)), 0)::float8
		FROM audit_leaf_queue`).Scan(&seconds).Error; err != nil {
		return 0, fmt.Errorf("merkle: leaf queue lag: %w", err)
	}
	return time.Duration(max(seconds, 0) * float64(time.Second)), nil
}
