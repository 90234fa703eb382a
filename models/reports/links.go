package reports

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/url"
	"strconv"
	"time"

	"auditdb/models"
)

// LinkTTL is how long a download link works.
const LinkTTL = 24 * time.Hour

// ErrLinkExpired is returned for a genuine download link past its expiry.
var ErrLinkExpired = errors.New("reports: the download link has expired")

// Links signs and checks expiring download links: an HMAC-SHA256 with the server's key
// over the organization, the execution, the format and the expiry, so a link works only
// for the organization it was made for, unchanged and until it expires.
type Links struct {
	key []byte
	Now func() time.Time
}

// NewLinks returns links signed with key (derived from the server's secret).
func NewLinks(key []byte) *Links { return &Links{key: key, Now: time.Now} }

func (l *Links) mac(org, exec, format string, exp int64) string {
	m := hmac.New(sha256.New, l.key)
	for _, part := range []string{"report-download-v1", org, exec, format, strconv.FormatInt(exp, 10)} {
		m.Write([]byte(part))
		m.Write([]byte{0})
	}
	return hex.EncodeToString(m.Sum(nil))
}

// Query returns the query string (exp and sig) of a link to org's file of exec in format,
// valid for ttl.
func (l *Links) Query(org, exec, format string, ttl time.Duration) string {
	exp := l.Now().Add(ttl).Unix()
	return url.Values{"exp": {strconv.FormatInt(exp, 10)}, "sig": {l.mac(org, exec, format, exp)}}.Encode()
}

// Check returns nil when exp and sig are a genuine, unexpired link to org's file; a
// KindNotFound error when the link was changed or made for another organization (nothing
// is revealed about what exists), and ErrLinkExpired when it is genuine but expired.
// Only the decimal form Query writes is taken for exp (no leading 0 or +), so each
// genuine link has one spelling.
func (l *Links) Check(org, exec, format, exp, sig string) error {
	n, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || strconv.FormatInt(n, 10) != exp || !hmac.Equal([]byte(sig), []byte(l.mac(org, exec, format, n))) {
		return models.NotFound("report file")
	}
	if l.Now().Unix() > n {
		return ErrLinkExpired
	}
	return nil
}
