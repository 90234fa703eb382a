// Package bundle writes evidence bundles: one .zip holding an organization's events of a
// filter as JSON Lines, a manifest of their hashes and log positions, an RFC 6962 inclusion
// proof of each in one signed checkpoint, that checkpoint and its verifier key, so that
// anyone can check the events without access to the server (docs/integrity.md §8). Check
// reads one back and names every problem.
package bundle

import "time"

// Format names this version of the bundle layout, in bundle.json.
// Format 2 added bundle.sig, the signed statement.
const Format = "auditdb-evidence-bundle/2"

// The files of a bundle, in the order they are written.
const (
	FileReadme     = "README.txt"
	FileCheckpoint = "checkpoint.note"
	FileKey        = "verifier-key.txt"
	FileEvents     = "events.jsonl"
	FileManifest   = "manifest.jsonl"
	FileProofs     = "proofs.jsonl"
	FileInfo       = "bundle.json"
	FileStatement  = "bundle.sig"
)

// Files lists every file of a bundle, in the order they are written; a bundle holds no other.
var Files = []string{FileReadme, FileCheckpoint, FileKey, FileEvents, FileManifest, FileProofs, FileInfo, FileStatement}

// StatementOrigin is the first line of a bundle's signed statement (bundle.sig): the
// statement is a signed note of this line followed by bundle.json byte for byte, signed
// with the checkpoint key. The " bundle" suffix keeps it apart from the log's checkpoints
// (origin "auditdb/<organization>"), whose second line is a tree size besides.
func StatementOrigin(org string) string { return "auditdb/" + org + " bundle" }

// Limits of one bundle: the filter's range and the events it may hold (live, archived and
// removed together).
const (
	MaxRange  = 366 * 24 * time.Hour
	MaxEvents = 1_000_000
)

// Entry states in the manifest.
const (
	StateLive     = "live"     // the event is in audit_log; its line is in events.jsonl
	StateArchived = "archived" // retention moved it to an archive; its line is in events.jsonl
	StateRemoved  = "removed"  // retention or an erasure deleted it: no line, hash and proof only
)

// ManifestEntry is one line of manifest.jsonl: one log entry the bundle vouches for.
type ManifestEntry struct {
	ID            int64  `json:"id"`
	LeafIndex     int64  `json:"leafIndex"`
	Hash          string `json:"hash"` // the event hash the log holds (hex)
	HashAlgorithm string `json:"hashAlgorithm,omitempty"`
	State         string `json:"state"`
	Archive       string `json:"archive,omitempty"` // the archive a StateArchived event came from
	// Of a removed event: why, the retention policy and run, when.
	Reason    string     `json:"reason,omitempty"`
	Policy    string     `json:"policy,omitempty"`
	RunID     *int64     `json:"runId,omitempty"`
	Timestamp *time.Time `json:"timestamp,omitempty"`
}

// ProofLine is one line of proofs.jsonl: the audit path of one manifest entry's leaf in the
// bundle's checkpoint, RFC 6962 order (leaf's sibling first), each hash hex.
type ProofLine struct {
	ID        int64    `json:"id"`
	LeafIndex int64    `json:"leafIndex"`
	Hashes    []string `json:"hashes"`
}

// Info is bundle.json: what the bundle covers and counts, written last.
type Info struct {
	Format         string     `json:"format"`
	OrganizationID string     `json:"organizationId"`
	GeneratedAt    time.Time  `json:"generatedAt"`
	Filter         Filter     `json:"filter"`
	Checkpoint     InfoCP     `json:"checkpoint"`
	Events         int64      `json:"events"`   // lines of events.jsonl
	Archived       int64      `json:"archived"` // of which came from archives
	Removed        int64      `json:"removed"`  // manifest entries without a line
	NotSequenced   int64      `json:"notSequenced"`
	HashAlgorithms []string   `json:"hashAlgorithms"`
	Files          []InfoFile `json:"files"`
}

// InfoCP names the checkpoint every proof is against.
type InfoCP struct {
	Number   int64  `json:"number"`
	TreeSize int64  `json:"treeSize"`
	RootHash string `json:"rootHash"` // hex
}

// InfoFile is one other file of the bundle with its size and SHA-256 (hex).
type InfoFile struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Filter is the events filter the bundle was made for, as given.
type Filter struct {
	From           time.Time `json:"from"`
	To             time.Time `json:"to"`
	Action         string    `json:"action,omitempty"`
	Status         string    `json:"status,omitempty"`
	PrincipalID    string    `json:"principalId,omitempty"`
	ResourceType   string    `json:"resourceType,omitempty"`
	ResourceID     string    `json:"resourceId,omitempty"`
	Classification string    `json:"classification,omitempty"`
	CorrelationID  string    `json:"correlationId,omitempty"`
	Query          string    `json:"query,omitempty"` // the search box: qualifiers and free text
}
