package models

// ArchiveBuilder builds the content of one archive line by line, as retention writes it
// (JSON Lines, zstd-compressed, with both SHA-256 sums), for a package that rewrites an
// archive (GDPR erasure) without knowing its format.
type ArchiveBuilder struct{ w *archiveWriter }

// NewArchiveBuilder returns an empty builder; it fails only when zstd cannot start.
func NewArchiveBuilder() (*ArchiveBuilder, error) {
	w, err := newArchiveWriter()
	if err != nil {
		return nil, err
	}
	return &ArchiveBuilder{w: w}, nil
}

// Add appends one event line; it fails when the line cannot be encoded.
func (b *ArchiveBuilder) Add(l *ArchiveLine) error { return b.w.add(l) }

// Count is how many lines were added.
func (b *ArchiveBuilder) Count() int64 { return b.w.count }

// Finish closes the archive and returns its compressed bytes, filling a's encoding, count,
// ranges, sizes and checksums (its id, organization, policy and month are left as they
// are). The builder cannot be used afterwards.
func (b *ArchiveBuilder) Finish(a *Archive) ([]byte, error) { return b.w.finish(a) }
