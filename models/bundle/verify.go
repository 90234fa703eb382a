package bundle

import (
	"bufio"
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"slices"
	"strings"
	"unicode"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/klauspost/compress/zip"
	tlog "github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	"auditdb/models"
	"auditdb/models/merkle"
)

// Reading limits: a bundle comes from elsewhere, and its sizes are checked after
// decompression, as they are read.
const (
	maxSmallFile = 1 << 20  // README, note, key, bundle.json
	maxLine      = 16 << 20 // one JSON line
	// maxFile caps events.jsonl, manifest.jsonl and proofs.jsonl each, decompressed, when
	// bundle.json records no smaller size; maxTotal caps the three together.
	maxFile  = 8 << 30
	maxTotal = 16 << 30
	// MaxProblems is how many problems a Report keeps; the rest are only counted.
	MaxProblems = 100
)

// Report is the outcome of checking a bundle offline.
type Report struct {
	Origin      string
	TreeSize    uint64 // as the checkpoint says (a tree size is unsigned; 2^64-1 prints as such)
	Seq         int64
	BundleKey   string // the key id of verifier-key.txt
	TrustedKey  string // the key id of the trusted key that verified the checkpoint; "" when none was given or none verified
	TrustedKeys int    // how many trusted keys were given
	// StatementKey is the key id that verified bundle.sig, the signed statement (a trusted
	// key when any was given, else the bundle's own); "" when it did not verify.
	StatementKey string
	Events       int // event lines read
	Archived     int // of which archived
	Removed      int // manifest entries of removed events
	Proofs       int // proofs that verified
	// V2Events counts the event lines of the per-field schemes (sha256-jcs-v2 and -v3);
	// Fields counts their committed
	// fields by state (models.FieldDisclosedOK, FieldErased, FieldPseudonymized; a
	// FieldMismatch is a problem too), and FieldNotes names the first MaxProblems fields
	// erased or pseudonymized. Such a field's digest still counts in the event's hash, but
	// its redaction is vouched for by the server's MAC, which only the server key checks
	// (models.NoteVouched); the server refuses to write a bundle whose MAC does not verify.
	V2Events   int
	Fields     map[string]int
	FieldNotes []string
	Problems   []string // the first MaxProblems
	More       int      // problems found beyond those
}

// checkFields checks the committed fields of a per-field (sha256-jcs-v2 or -v3) event line
// against their commitments.
func (r *Report) checkFields(l *models.ArchiveLine) {
	fields, err := models.CheckFieldCommitments(l.Event())
	if err != nil { // RecomputeEvent read them already; kept for safety
		r.problem("event %d: its field commitments cannot be read: %s", l.ID, strings.TrimPrefix(err.Error(), "models: "))
		return
	}
	if r.Fields == nil {
		r.Fields = map[string]int{}
	}
	for _, f := range fields {
		r.Fields[f.State]++
		switch f.State {
		case models.FieldMismatch:
			r.problem("event %d: changed: personal field %s: %s", l.ID, f.Name, f.Reason)
		case models.FieldErased, models.FieldPseudonymized:
			if len(r.FieldNotes) < MaxProblems {
				note := fmt.Sprintf("event %d: %s %s", l.ID, f.Name, f.State)
				if f.Note != "" {
					note += " (" + f.Note + ")"
				}
				r.FieldNotes = append(r.FieldNotes, Printable(note))
			}
		}
	}
}

// parseEventLine reads one line of events.jsonl strictly: a member name given twice, a name
// that matches a field only without regard to case, or a member the format does not have
// makes it no event (encoding/json would keep the last, match any case, skip the unknown:
// two readers could then see two different events in one line).
func parseEventLine(line []byte, l *models.ArchiveLine) error {
	return jsonv2.Unmarshal(line, l, jsonv2.RejectUnknownMembers(true), jsonv2.MatchCaseInsensitiveNames(false),
		jsontext.AllowDuplicateNames(false))
}

// OK reports whether the bundle passed every check.
func (r *Report) OK() bool { return len(r.Problems) == 0 }

// problem keeps the first MaxProblems findings and counts the rest, each with every
// control or invisible character escaped: names and values come from the bundle.
func (r *Report) problem(format string, args ...any) {
	if len(r.Problems) >= MaxProblems {
		r.More++
		return
	}
	r.Problems = append(r.Problems, Printable(fmt.Sprintf(format, args...)))
}

// Printable escapes, as \u.... (\ufffd for invalid UTF-8), every character of s a
// terminal could act on or hide: control characters (escape sequences included),
// bidirectional overrides and other format characters, and anything not printable.
func Printable(s string) string {
	var b strings.Builder
	for _, r := range s {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || (!unicode.IsPrint(r) && r != ' ') {
			fmt.Fprintf(&b, "\\u%04x", r)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

type mentry struct {
	ManifestEntry
	line, proof bool
}

// Verify checks a bundle with nothing but its bytes: the checkpoint's signature against the
// bundle's key and, when trusted keys are given, against them; every event's hash (and
// subject digest, where the salt is kept) from its line; each line against the manifest and
// the manifest against the lines; each inclusion proof against the checkpoint's root; and
// bundle.json's counts and file digests. It returns an error only when r is not a readable
// zip; every finding is a line of Report.Problems, naming the event.
func Verify(r io.ReaderAt, size int64, trustedKeys []string) (*Report, error) {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return nil, fmt.Errorf("bundle: not a readable zip: %w", err)
	}
	rep := &Report{TrustedKeys: len(trustedKeys)}
	files := map[string]*zip.File{}
	for _, f := range zr.File {
		if !slices.Contains(Files, f.Name) {
			rep.problem("%q: not a file of a bundle (an unexpected zip entry; not read)", f.Name)
			continue
		}
		if _, dup := files[f.Name]; dup {
			rep.problem("%s: appears twice in the zip", f.Name)
		}
		files[f.Name] = f
	}
	digests := map[string]InfoFile{}
	open := func(name string) (io.ReadCloser, hash.Hash, *int64, bool) {
		f := files[name]
		if f == nil {
			rep.problem("%s: missing from the bundle", name)
			return nil, nil, nil, false
		}
		rc, err := f.Open()
		if err != nil {
			rep.problem("%s: unreadable: %v", name, err)
			return nil, nil, nil, false
		}
		return rc, sha256.New(), new(int64), true
	}
	record := func(name string, h hash.Hash, n int64) {
		digests[name] = InfoFile{Name: name, Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}
	}
	small := func(name string) []byte {
		rc, h, _, ok := open(name)
		if !ok {
			return nil
		}
		defer rc.Close()
		b, err := io.ReadAll(io.LimitReader(rc, maxSmallFile+1))
		if err != nil {
			rep.problem("%s: unreadable: %v", name, err)
			return nil
		}
		if len(b) > maxSmallFile {
			rep.problem("%s: larger than %d bytes", name, maxSmallFile)
			return nil
		}
		h.Write(b)
		record(name, h, int64(len(b)))
		return b
	}
	var readTotal int64
	var recorded map[string]int64
	lines := func(name string, each func(n int, line []byte)) {
		rc, h, _, ok := open(name)
		if !ok {
			return
		}
		defer rc.Close()
		// Stop reading past what bundle.json records (a decompression bomb stops there),
		// past maxFile, and past maxTotal for the three together.
		limit, why := int64(maxFile), fmt.Sprintf("the limit of %d bytes", int64(maxFile))
		if r, ok := recorded[name]; ok && r < limit {
			limit, why = r, fmt.Sprintf("the %d bytes %s records", r, FileInfo)
		}
		if left := maxTotal - readTotal; left < limit {
			limit, why = left, fmt.Sprintf("the limit of %d bytes for the bundle's files together", int64(maxTotal))
		}
		br := bufio.NewReaderSize(io.TeeReader(io.LimitReader(rc, limit+1), h), 256<<10)
		var total int64
		defer func() { readTotal += total }()
		for n := 1; ; n++ {
			line, err := readLine(br)
			total += int64(len(line))
			if total > limit {
				// Always kept, past MaxProblems too: it says why the rest went unread.
				rep.Problems = append(rep.Problems, fmt.Sprintf("%s: larger than %s; not read further (line %d)", name, why, n))
				return
			}
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				rep.problem("%s line %d: %v", name, n, err)
				return
			}
			each(n, bytes.TrimSuffix(line, []byte("\n")))
		}
		record(name, h, total)
	}

	small(FileReadme)
	var info Info
	infoOK := false
	infoBytes := small(FileInfo)
	if b := infoBytes; b != nil {
		if err := json.Unmarshal(b, &info); err != nil {
			rep.problem("%s: not valid JSON: %v", FileInfo, err)
		} else if info.Format != Format {
			rep.problem("%s: format %q, this checker reads %q", FileInfo, info.Format, Format)
		} else {
			infoOK = true
			recorded = map[string]int64{}
			for _, f := range info.Files {
				recorded[f.Name] = f.Size
			}
		}
	}
	note := small(FileCheckpoint)
	bundleKey := strings.TrimSpace(string(small(FileKey)))
	var root []byte
	if note != nil {
		root = rep.checkpoint(note, bundleKey, trustedKeys, info, infoOK)
	}
	if sig := small(FileStatement); sig != nil && infoOK {
		rep.statement(sig, infoBytes, info.OrganizationID, bundleKey, trustedKeys)
	}

	manifest := map[int64]*mentry{}
	byLeaf := map[int64]int64{}
	lines(FileManifest, func(n int, line []byte) {
		var m ManifestEntry
		if err := json.Unmarshal(line, &m); err != nil {
			rep.problem("%s line %d: not a manifest entry: %v", FileManifest, n, err)
			return
		}
		if len(manifest) >= MaxEvents {
			rep.problem("%s line %d: more than %d entries", FileManifest, n, MaxEvents)
			return
		}
		if _, dup := manifest[m.ID]; dup {
			rep.problem("event %d: listed twice in the manifest (line %d)", m.ID, n)
			return
		}
		if other, dup := byLeaf[m.LeafIndex]; dup {
			rep.problem("event %d: the manifest gives it log entry %d, which it also gives event %d", m.ID, m.LeafIndex, other)
		}
		if m.LeafIndex < 0 || (rep.TreeSize > 0 && uint64(m.LeafIndex) >= rep.TreeSize) {
			rep.problem("event %d: log entry %d is outside the checkpoint's tree of size %d", m.ID, m.LeafIndex, rep.TreeSize)
		}
		if m.State != StateLive && m.State != StateArchived && m.State != StateRemoved {
			rep.problem("event %d: unknown manifest state %q", m.ID, m.State)
		}
		if m.State == StateRemoved {
			rep.Removed++
		}
		byLeaf[m.LeafIndex] = m.ID
		manifest[m.ID] = &mentry{ManifestEntry: m}
	})

	lines(FileEvents, func(n int, line []byte) {
		var l models.ArchiveLine
		if err := parseEventLine(line, &l); err != nil {
			rep.problem("%s line %d: not an event: %v", FileEvents, n, err)
			return
		}
		rep.Events++
		if rep.Events > MaxEvents {
			rep.problem("%s line %d: more than %d events", FileEvents, n, MaxEvents)
			return
		}
		m := manifest[l.ID]
		switch {
		case m == nil:
			rep.problem("event %d (%s line %d): not in the manifest: an added line", l.ID, FileEvents, n)
			return
		case m.line:
			rep.problem("event %d (%s line %d): appears twice", l.ID, FileEvents, n)
			return
		case m.State == StateRemoved:
			rep.problem("event %d (%s line %d): the manifest lists it as removed, yet it has a line", l.ID, FileEvents, n)
		}
		m.line = true
		if m.State == StateArchived {
			rep.Archived++
		}
		if infoOK && l.OrganizationID != info.OrganizationID {
			rep.problem("event %d: of organization %q, the bundle is of %q", l.ID, l.OrganizationID, info.OrganizationID)
		}
		if l.LeafIndex != m.LeafIndex {
			rep.problem("event %d: its line says log entry %d, the manifest %d", l.ID, l.LeafIndex, m.LeafIndex)
		}
		if m.HashAlgorithm != "" && l.HashAlgorithm != m.HashAlgorithm {
			rep.problem("event %d: its line says hash algorithm %q, the manifest %q", l.ID, l.HashAlgorithm, m.HashAlgorithm)
		}
		computed, digest, err := models.RecomputeEvent(l.Event())
		switch {
		case err != nil:
			rep.problem("event %d: its hash cannot be recomputed: %s", l.ID, strings.TrimPrefix(err.Error(), "models: "))
		case computed != m.Hash && l.Hash == m.Hash:
			rep.problem("event %d: changed: its fields hash to %s, the manifest and the log hold %s", l.ID, computed, m.Hash)
		case computed == l.Hash && l.Hash != m.Hash:
			rep.problem("event %d: the manifest's hash %s is not the event's %s: manifest edited", l.ID, m.Hash, l.Hash)
		case computed != m.Hash:
			rep.problem("event %d: changed: its fields hash to %s, its line says %s, the manifest %s", l.ID, computed, l.Hash, m.Hash)
		}
		if err == nil && digest != "" && digest != l.SubjectDigest {
			rep.problem("event %d: changed: its personal fields and salt digest to %s, not its subjectDigest %s", l.ID, digest, l.SubjectDigest)
		}
		if err == nil && models.PerFieldScheme(l.HashAlgorithm) {
			rep.V2Events++
			rep.checkFields(&l)
		}
	})
	for _, m := range sortedEntries(manifest) {
		if !m.line && m.State != StateRemoved {
			rep.problem("event %d: in the manifest (log entry %d) but has no line in %s: a removed line", m.ID, m.LeafIndex, FileEvents)
		}
	}

	lines(FileProofs, func(n int, line []byte) {
		var p ProofLine
		if err := json.Unmarshal(line, &p); err != nil {
			rep.problem("%s line %d: not a proof: %v", FileProofs, n, err)
			return
		}
		m := manifest[p.ID]
		switch {
		case m == nil:
			rep.problem("event %d (%s line %d): a proof for an event not in the manifest", p.ID, FileProofs, n)
			return
		case m.proof:
			rep.problem("event %d (%s line %d): a second proof", p.ID, FileProofs, n)
			return
		}
		m.proof = true
		if p.LeafIndex != m.LeafIndex {
			rep.problem("event %d: its proof is for log entry %d, the manifest says %d", p.ID, p.LeafIndex, m.LeafIndex)
			return
		}
		hashes := make([][]byte, len(p.Hashes))
		for i, h := range p.Hashes {
			b, err := hex.DecodeString(h)
			if err != nil || len(b) != sha256.Size {
				rep.problem("event %d: proof hash %d is not a hex SHA-256", p.ID, i)
				return
			}
			hashes[i] = b
		}
		leaf, err := merkle.LeafHash(m.Hash)
		if err != nil {
			rep.problem("event %d: the manifest's hash %q is not a hex SHA-256", p.ID, m.Hash)
			return
		}
		if root == nil {
			return // the checkpoint is unreadable; already reported
		}
		if err := proof.VerifyInclusion(rfc6962.DefaultHasher, uint64(p.LeafIndex), rep.TreeSize, leaf, hashes, root); err != nil {
			rep.problem("event %d: wrong proof: its inclusion proof for log entry %d does not lead to the checkpoint's root: %v", p.ID, p.LeafIndex, err)
			return
		}
		rep.Proofs++
	})
	for _, m := range sortedEntries(manifest) {
		if !m.proof {
			rep.problem("event %d: no inclusion proof in %s", m.ID, FileProofs)
		}
	}

	if infoOK {
		rep.checkInfo(info, digests)
	}
	return rep, nil
}

// checkpoint opens the note with the bundle's key and with the trusted keys, reports what
// does not verify, and returns the root the proofs are checked against (read from the text
// even when no signature verifies, so the rest still gets checked).
func (rep *Report) checkpoint(note []byte, bundleKey string, trusted []string, info Info, infoOK bool) []byte {
	var cp *merkle.SavedCheckpoint
	if bundleKey == "" {
		rep.problem("%s: empty", FileKey)
	} else if own, err := merkle.OpenSavedCheckpoint(note, bundleKey); err != nil {
		rep.problem("checkpoint: its signature does not verify with the bundle's own key %s: %s", keyName(bundleKey), trimMerkle(err))
	} else {
		cp, rep.BundleKey = own, own.KeyID
	}
	if len(trusted) > 0 {
		if t, err := merkle.OpenSavedCheckpoint(note, trusted...); err != nil {
			rep.problem("checkpoint: not signed by any trusted key (%s): %s", strings.Join(keyNames(trusted), ", "), trimMerkle(err))
		} else {
			cp, rep.TrustedKey = t, t.KeyID
		}
	}
	if cp == nil {
		text, _, found := bytes.Cut(note, []byte("\n\n"))
		var parsed tlog.Checkpoint
		if _, err := parsed.Unmarshal(append(text, '\n')); !found || err != nil {
			rep.problem("checkpoint: not a checkpoint note")
			return nil
		}
		cp = &merkle.SavedCheckpoint{Origin: parsed.Origin, Size: int64(parsed.Size), Root: parsed.Hash}
	}
	// uint64 undoes the int64 conversion of a size above 2^63-1.
	rep.Origin, rep.TreeSize, rep.Seq = cp.Origin, uint64(cp.Size), cp.Seq
	if infoOK {
		if cp.Origin != merkle.Origin(info.OrganizationID) {
			rep.problem("checkpoint: of log %q, the bundle is of organization %q", cp.Origin, info.OrganizationID)
		}
		if rep.TreeSize != uint64(info.Checkpoint.TreeSize) || hex.EncodeToString(cp.Root) != info.Checkpoint.RootHash {
			rep.problem("checkpoint: tree size %d, root %x; %s says %d, %s", rep.TreeSize, cp.Root, FileInfo,
				info.Checkpoint.TreeSize, info.Checkpoint.RootHash)
		}
	}
	return cp.Root
}

// statement checks bundle.sig: a signed note of StatementOrigin(org) and bundle.json byte
// for byte, signed by a trusted key (by the bundle's own key when none is given). With it
// verified, bundle.json's file digests vouch for every other file, so a manifest entry
// turned into "removed", an event dropped from all three files, or an edited README fails
// even when bundle.json's counts and digests were recomputed.
func (rep *Report) statement(sig, info []byte, org, bundleKey string, trusted []string) {
	keys, which := trusted, "any trusted key"
	if len(keys) == 0 {
		keys, which = []string{bundleKey}, "the bundle's own key"
	}
	var vs []note.Verifier
	for _, k := range keys {
		if v, err := note.NewVerifier(strings.TrimSpace(k)); err == nil {
			vs = append(vs, v)
		}
	}
	if len(vs) == 0 {
		rep.problem("%s: no usable key to check the statement's signature", FileStatement)
		return
	}
	n, err := note.Open(sig, note.VerifierList(vs...))
	if err != nil {
		rep.problem("%s: the statement is not signed by %s (%s): %v", FileStatement, which, strings.Join(keyNames(keys), ", "), err)
		return
	}
	origin, text, _ := strings.Cut(n.Text, "\n")
	switch {
	case origin != StatementOrigin(org):
		rep.problem("%s: a statement of %q, not of this bundle's organization", FileStatement, origin)
	case text != string(info):
		rep.problem("%s: %s is not the statement the server signed: edited", FileStatement, FileInfo)
	default:
		rep.StatementKey = n.Sigs[0].Name + "+" + fmt.Sprintf("%08x", n.Sigs[0].Hash)
	}
}

// checkInfo compares bundle.json's counts and file digests with what was read, and checks
// it records every file.
func (rep *Report) checkInfo(info Info, digests map[string]InfoFile) {
	recorded := map[string]bool{}
	for _, f := range info.Files {
		recorded[f.Name] = true
		if !slices.Contains(Files, f.Name) || f.Name == FileInfo || f.Name == FileStatement {
			rep.problem("%s: records %s, which is not a file of a bundle", FileInfo, f.Name)
		}
	}
	for _, name := range Files {
		if name != FileInfo && name != FileStatement && !recorded[name] {
			rep.problem("%s: does not record %s's digest", FileInfo, name)
		}
	}
	if int64(rep.Events) != info.Events || int64(rep.Archived) != info.Archived || int64(rep.Removed) != info.Removed {
		rep.problem("%s: counts %d events (%d archived) and %d removed; the bundle holds %d (%d) and %d", FileInfo,
			info.Events, info.Archived, info.Removed, rep.Events, rep.Archived, rep.Removed)
	}
	for _, f := range info.Files {
		got, ok := digests[f.Name]
		if ok && (got.Size != f.Size || got.SHA256 != f.SHA256) {
			rep.problem("%s: its size or SHA-256 differs from %s's record (%d bytes, %s; recorded %d, %s)", f.Name, FileInfo,
				got.Size, got.SHA256, f.Size, f.SHA256)
		}
	}
}

func sortedEntries(m map[int64]*mentry) []*mentry {
	out := make([]*mentry, 0, len(m))
	for _, e := range m {
		out = append(out, e)
	}
	// By log entry: problems come out in log order.
	sortByLeaf(out)
	return out
}

func keyName(k string) string {
	name, rest, _ := strings.Cut(k, "+")
	h, _, _ := strings.Cut(rest, "+")
	return name + "+" + h
}

func keyNames(ks []string) []string {
	out := make([]string, len(ks))
	for i, k := range ks {
		out[i] = keyName(strings.TrimSpace(k))
	}
	return out
}

func trimMerkle(err error) string { return strings.TrimPrefix(err.Error(), "merkle: ") }

// readLine reads one line of at most maxLine bytes, its newline included.
func readLine(br *bufio.Reader) ([]byte, error) {
	var out []byte
	for {
		chunk, err := br.ReadSlice('\n')
		out = append(out, chunk...)
		if len(out) > maxLine {
			return nil, fmt.Errorf("a line longer than %d bytes", maxLine)
		}
		switch {
		case err == nil:
			return out, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && len(out) > 0:
			return out, fmt.Errorf("the last line has no newline")
		default:
			return out, err
		}
	}
}

func sortByLeaf(es []*mentry) {
	slices.SortFunc(es, func(a, b *mentry) int { return cmp.Compare(a.LeafIndex, b.LeafIndex) })
}
