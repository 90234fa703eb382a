package merkle

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	tlog "github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"golang.org/x/mod/sumdb/note"
	"gorm.io/gorm"

	"auditdb/models"
)

// CheckpointOfSize returns org's published checkpoint of tree size size, or KindNotFound
// when org never published one of that size (another organization's sizes included).
// Checkpoints are never updated nor deleted, so every published one stays retrievable.
func (l *Log) CheckpointOfSize(ctx context.Context, org string, size int64) (*Checkpoint, error) {
	var cp Checkpoint
	err := l.db.WithContext(ctx).Where("organization_id = ? AND tree_size = ?", org, size).
		Order("number").Take(&cp).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, models.NotFound("checkpoint")
	}
	if err != nil {
		return nil, fmt.Errorf("merkle: checkpoint of size %d: %w", size, err)
	}
	return &cp, nil
}

// publishedSize returns the checkpoint of size for a request parameter, or a KindInvalid
// error naming param when org never published that size.
func (l *Log) publishedSize(ctx context.Context, org, param string, size int64) (*Checkpoint, error) {
	cp, err := l.CheckpointOfSize(ctx, org, size)
	if models.KindOf(err) == models.KindNotFound {
		return nil, models.Invalid(param, fmt.Sprintf("no checkpoint of tree size %d was published", size))
	}
	return cp, err
}

// ProveAt returns the inclusion proof of event id of org in org's checkpoint of tree size
// size, or in its latest checkpoint when size is 0. It returns KindInvalid (naming
// "checkpoint") for a size org never published, KindConflict when the event was logged
// after that checkpoint, and ErrNotYetLogged while no checkpoint covers the event.
func (l *Log) ProveAt(ctx context.Context, org string, eventID, size int64) (*InclusionProof, error) {
	if size == 0 {
		return l.Prove(ctx, org, eventID)
	}
	cp, err := l.publishedSize(ctx, org, "checkpoint", size)
	if err != nil {
		return nil, err
	}
	lf, err := l.Leaf(ctx, org, eventID)
	if err != nil {
		return nil, ErrNotYetLogged
	}
	if lf.LeafIndex >= cp.TreeSize {
		return nil, models.Conflict("checkpoint", fmt.Sprintf(
			"event %d is log entry %d, after the checkpoint of tree size %d: ask for a checkpoint of tree size %d or more",
			eventID, lf.LeafIndex, cp.TreeSize, lf.LeafIndex+1))
	}
	return l.proveIn(ctx, org, lf, cp)
}

// Consistency is an RFC 6962 consistency proof between two published checkpoints of one
// organization: Hashes prove that To's tree extends From's.
type Consistency struct {
	From, To Checkpoint
	Hashes   [][]byte
}

// ProveConsistency returns the consistency proof between org's published checkpoints of
// tree sizes from and to. It returns KindInvalid naming "from" or "to" for a size org
// never published and for from > to; from == to gives an empty proof.
func (l *Log) ProveConsistency(ctx context.Context, org string, from, to int64) (*Consistency, error) {
	if from > to {
		return nil, models.Invalid("from", fmt.Sprintf("tree size %d is larger than to (%d)", from, to))
	}
	a, err := l.publishedSize(ctx, org, "from", from)
	if err != nil {
		return nil, err
	}
	b, err := l.publishedSize(ctx, org, "to", to)
	if err != nil {
		return nil, err
	}
	hashes, err := l.ConsistencyProof(ctx, org, from, to)
	if err != nil {
		return nil, err
	}
	if hashes == nil {
		hashes = [][]byte{}
	}
	return &Consistency{From: *a, To: *b, Hashes: hashes}, nil
}

// SavedCheckpoint is a checkpoint an auditor kept, opened with a verifier key they trust.
type SavedCheckpoint struct {
	Origin string // "auditdb/<organization>"
	Size   int64
	Root   []byte
	Seq    int64 // the "seq" extension line; 0 when absent
	KeyID  string
}

// OpenSavedCheckpoint verifies the signed note text against any of the verifier keys
// ("auditdb+<hash>+<key>", every key the auditor pinned, old ones included) and parses it.
// It needs nothing from the server.
func OpenSavedCheckpoint(text []byte, verifierKeys ...string) (*SavedCheckpoint, error) {
	if len(verifierKeys) == 0 {
		return nil, errors.New("merkle: no verifier key given")
	}
	var vs []note.Verifier
	for _, k := range verifierKeys {
		v, err := note.NewVerifier(strings.TrimSpace(k))
		if err != nil {
			return nil, fmt.Errorf("merkle: verifier key %q: %w", k, err)
		}
		vs = append(vs, v)
	}
	n, err := note.Open(text, note.VerifierList(vs...))
	if err != nil {
		return nil, fmt.Errorf("merkle: the checkpoint's signature does not verify with the given keys: %w", err)
	}
	origin, _, _ := strings.Cut(n.Text, "\n")
	if !strings.HasPrefix(origin, "auditdb/") {
		return nil, fmt.Errorf("merkle: origin %q is not an auditdb log", origin)
	}
	var cp tlog.Checkpoint
	rest, err := cp.Unmarshal([]byte(n.Text))
	if err != nil {
		return nil, fmt.Errorf("merkle: checkpoint body: %w", err)
	}
	out := &SavedCheckpoint{Origin: cp.Origin, Size: int64(cp.Size), Root: cp.Hash,
		KeyID: fmt.Sprintf("%s+%08x", n.Sigs[0].Name, n.Sigs[0].Hash)}
	for _, line := range strings.Split(string(rest), "\n") {
		if s, ok := strings.CutPrefix(line, "seq "); ok {
			if out.Seq, err = strconv.ParseInt(s, 10, 64); err != nil {
				return nil, fmt.Errorf("merkle: bad seq line %q", line)
			}
		}
	}
	return out, nil
}

// CheckExtends checks, with only the two saved checkpoints and the proof, that newer's
// tree extends older's: same log, no smaller size, and the RFC 6962 consistency proof
// leads from older's root to newer's.
func CheckExtends(older, newer *SavedCheckpoint, hashes [][]byte) error {
	if older.Origin != newer.Origin {
		return fmt.Errorf("merkle: the checkpoints are of two logs, %s and %s", older.Origin, newer.Origin)
	}
	if older.Size > newer.Size {
		return fmt.Errorf("merkle: the older checkpoint (size %d) is larger than the newer (size %d)", older.Size, newer.Size)
	}
	if older.Size == newer.Size && !bytes.Equal(older.Root, newer.Root) {
		return fmt.Errorf("merkle: two different roots for tree size %d: the log forked", older.Size)
	}
	if err := VerifyConsistency(older.Size, newer.Size, hashes, older.Root, newer.Root); err != nil {
		return fmt.Errorf("merkle: the consistency proof from size %d to %d does not verify: %w", older.Size, newer.Size, err)
	}
	return nil
}

// Querier reads the log: a pgx connection or transaction (a transaction gives one snapshot
// to several reads).
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// InclusionPaths returns the RFC 6962 audit paths of the leaves at indexes (each below size)
// in org's tree of size size, in the order of indexes. Proofs of neighbouring leaves share
// most of their nodes: each node is read once, with one query for the stored nodes and one
// for the leaf blocks below them, however many proofs there are.
func InclusionPaths(ctx context.Context, q Querier, org string, size int64, indexes []int64) ([][][]byte, error) {
	per := make([]proof.Nodes, len(indexes))
	at := map[compact.NodeID]int{}
	var ids []compact.NodeID
	for i, index := range indexes {
		if index < 0 || index >= size {
			return nil, fmt.Errorf("merkle: leaf %d is not in a tree of size %d", index, size)
		}
		nodes, err := proof.Inclusion(uint64(index), uint64(size))
		if err != nil {
			return nil, fmt.Errorf("merkle: inclusion proof: %w", err)
		}
		per[i] = nodes
		for _, id := range nodes.IDs {
			if _, ok := at[id]; !ok {
				at[id] = len(ids)
				ids = append(ids, id)
			}
		}
	}
	hashes, err := nodeHashes(ctx, q, org, ids)
	if err != nil {
		return nil, fmt.Errorf("merkle: proof nodes: %w", err)
	}
	out := make([][][]byte, len(indexes))
	for i, nodes := range per {
		hs := make([][]byte, len(nodes.IDs))
		for j, id := range nodes.IDs {
			hs[j] = hashes[at[id]]
		}
		if out[i], err = nodes.Rehash(hs, logHasher.HashChildren); err != nil {
			return nil, err
		}
	}
	return out, nil
}
