package erasure

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"auditdb/models"
)

// Mentions: free text of any event of the organization (the subject's kept events, other
// principals' events, data.export and report.run self-audit events) that names one of the
// subject's identifiers. Under sha256-jcs-v3 the outcome description and every details key
// are committed one by one, so each such field is pseudonymized on its own: the identifier
// is replaced by the run's pseudonym inside the text (at any depth of a details value), the
// field's salt is dropped, and the server's redaction MAC covers the new value. Fields an
// older scheme hashed in clear cannot change, and an event under an active legal hold is
// evidence to be preserved as it is (Art. 17(3)(e)): those events are counted and named
// instead, with the reason (Result.MentionsLeft, MentionsLeftIDs, MentionsLeftWhy).

// Why an event still names the subject in free text (Result.MentionsLeftWhy); WhyHeld is
// followed by the hold's name, WhyKeyName and WhyNumber by the details key.
const (
	WhyOlderScheme = "older hashing scheme "                                     // + the scheme: the text is inside its content hash
	WhyHeld        = "under legal hold "                                         // + the hold's name
	WhyKeyName     = "the field name itself names the subject: "                 // + details.<key>: a commitment's name cannot change
	WhyNumber      = "the identifier is a number, not text: "                    // + details.<key>: a number has no text to replace
	WhyUncommitted = "a value without a commitment (reported by verification): " // + the field
	WhyInClear     = "a field every scheme hashes in clear: "                    // + action, correlationId, targetResourceType or ttl
	WhyEmbedded    = "inside a longer identifier, perhaps another's: "           // + the field
)

// minMention is the shortest identifier searched for in free text: a shorter one (a
// principal "a1") would match ordinary words and numbers all over the organization.
const minMention = 4

// maxNamedLeft is how many events still mentioning the subject the result names by id.
const maxNamedLeft = 20

// mentionIDs returns the identifiers searched for in free text: the subject's and its
// earlier pseudonyms' principal and resource ids of at least minMention characters.
func (r *run) mentionIDs() []string {
	seen := map[string]bool{}
	var ids []string
	for _, sub := range r.subjects() {
		for _, id := range []string{sub.PrincipalID, sub.ResourceID} {
			k := strings.ToLower(id)
			if utf8.RuneCountInString(id) >= minMention && !seen[k] && id != r.pseudonym {
				seen[k] = true
				ids = append(ids, id)
			}
		}
	}
	return ids
}

// prefixFold returns the length of the prefix of s that equals sub letter for letter in
// lower case (unicode.ToLower, the mapping PostgreSQL's lower() applies, so the scan in SQL
// and the match here agree), or -1.
func prefixFold(s, sub string) int {
	i := 0
	for j := 0; j < len(sub); {
		if i >= len(s) {
			return -1
		}
		a, na := utf8.DecodeRuneInString(s[i:])
		b, nb := utf8.DecodeRuneInString(sub[j:])
		if a != b && unicode.ToLower(a) != unicode.ToLower(b) {
			return -1
		}
		i, j = i+na, j+nb
	}
	return i
}

// wordChar reports whether r continues an identifier: a letter or a number (as
// PostgreSQL's [[:alnum:]] has it).
func wordChar(r rune) bool { return unicode.IsLetter(r) || unicode.IsNumber(r) }

// joiner reports whether r joins the parts of one identifier (josé.ince.jr, pat-123-2,
// user_2) when a letter or number stands on its other side.
func joiner(r rune) bool { return r == '.' || r == '_' || r == '-' }

// matchAt returns the length of the longest of ids at s[i:] that stands as a whole
// identifier, or -1, and whether one stood there as part of a longer identifier instead.
// Whole means no letter or number adjoins it (pat-123 is not named in pat-1234 or xpat-123)
// and no joiner followed by one (nor in josé.ince.jr, pat-123-2 or scan-of-pat-123.pdf:
// those are other identifiers, perhaps other people's).
func matchAt(s string, i int, ids []string) (int, bool) {
	before := 0 // 1: a word character adjoins; 2: a joiner with a word character beyond
	if i > 0 {
		r, n := utf8.DecodeLastRuneInString(s[:i])
		switch {
		case wordChar(r):
			before = 1
		case joiner(r) && i-n > 0:
			if r2, _ := utf8.DecodeLastRuneInString(s[:i-n]); wordChar(r2) {
				before = 2
			}
		}
	}
	if before == 1 {
		return -1, false
	}
	best, embedded := -1, false
	for _, id := range ids {
		n := prefixFold(s[i:], id)
		if n < 0 || n <= best {
			continue
		}
		joined := before == 2
		if i+n < len(s) {
			r, m := utf8.DecodeRuneInString(s[i+n:])
			if wordChar(r) {
				continue
			}
			if joiner(r) && i+n+m < len(s) {
				if r2, _ := utf8.DecodeRuneInString(s[i+n+m:]); wordChar(r2) {
					joined = true
				}
			}
		}
		if joined {
			embedded = true
			continue
		}
		best = n
	}
	return best, embedded && best < 0
}

// containsAny reports whether s names one of ids as a whole identifier (see matchAt).
func containsAny(s string, ids []string) bool {
	for i := 0; i < len(s); {
		if n, _ := matchAt(s, i, ids); n > 0 {
			return true
		}
		_, n := utf8.DecodeRuneInString(s[i:])
		i += n
	}
	return false
}

// containsEmbedded reports whether one of ids stands in s only as part of a longer
// identifier (see matchAt): left as it is, and named, since it may be someone else's.
func containsEmbedded(s string, ids []string) bool {
	for i := 0; i < len(s); {
		if _, e := matchAt(s, i, ids); e {
			return true
		}
		_, n := utf8.DecodeRuneInString(s[i:])
		i += n
	}
	return false
}

// replaceAny replaces every place s names one of ids (see matchAt) by repl.
func replaceAny(s string, ids []string, repl string) string {
	var b strings.Builder
	last := 0
	for i := 0; i < len(s); {
		if matched, _ := matchAt(s, i, ids); matched > 0 {
			b.WriteString(s[last:i])
			b.WriteString(repl)
			i += matched
			last = i
			continue
		}
		_, n := utf8.DecodeRuneInString(s[i:])
		i += n
	}
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

// replaceInValue replaces the identifiers in every string of a decoded JSON value (object
// keys too), at any depth; it reports whether anything changed.
func replaceInValue(v any, ids []string, repl string) (any, bool) {
	switch x := v.(type) {
	case string:
		out := replaceAny(x, ids, repl)
		return out, out != x
	case []any:
		changed := false
		for i := range x {
			var c bool
			x[i], c = replaceInValue(x[i], ids, repl)
			changed = changed || c
		}
		return x, changed
	case map[string]any:
		changed := false
		out := make(map[string]any, len(x))
		for k, val := range x {
			nk := replaceAny(k, ids, repl)
			nv, c := replaceInValue(val, ids, repl)
			changed = changed || c || nk != k
			out[nk] = nv
		}
		return out, changed
	}
	return v, false
}

// marshal is json.Marshal without HTML escaping (the text stays as written).
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'}), nil
}

// freeText is an event's free text as a mention redaction reads and changes it.
type freeText struct {
	HashAlgorithm string
	Hash          string
	Outcome       *string
	Details       []byte
	Commitments   []byte
	// Principal and Target are committed in sha256-jcs-v2 and -v3: a principal or target id
	// that names the subject without being it (another case, a longer id holding it) is
	// pseudonymized like free text. A compact sha256-jcs-v3 event's commitments are expanded
	// from every value it committed.
	Principal, Target *string
	// Action, Correlation, TargetType and TTL are read only: every scheme hashes them in clear.
	Action, Correlation, TargetType, TTL *string
}

// redactMentions pseudonymizes, in t, every committed free-text field that names one of ids
// (case-insensitively): the outcome description and each top-level details value (a
// personal details key is erased instead). An event under an active legal hold (held: the
// hold's name) is left as it is. It reports whether t changed, and why (left: one of the
// Why* reasons) some text naming an identifier is left: the event is held, its scheme
// hashed the text in clear, the identifier is a details key's name (which a commitment's
// name cannot lose) or a number.
func (r *run) redactMentions(t *freeText, ids []string, held string) (changed bool, left string, err error) {
	names := func(v *string) bool { return v != nil && containsAny(*v, ids) }
	outcomeHit := names(t.Outcome)
	detailsHit, detailsEmbedded := jsonNames(t.Details, ids)
	// The subject's own events (its principal, its resource) are the log phase's; here a
	// principal or target that names the subject without being it: another case, a longer
	// id holding it, the same id as a resource of another type.
	principalHit := names(t.Principal) && !r.subjectPrincipal(*t.Principal)
	targetHit := names(t.Target) && !r.subjectResource(t.TargetType, *t.Target)
	var inClear string
	for _, f := range []struct {
		name string
		v    *string
	}{{"action", t.Action}, {"correlationId", t.Correlation}, {"targetResourceType", t.TargetType}, {"ttl", t.TTL}} {
		if names(f.v) && inClear == "" {
			inClear = WhyInClear + f.name
		}
	}
	// Where the identifier stands only inside a longer one, nothing changes; the event is
	// named so that the request's reviewer can decide.
	for _, f := range []struct {
		name string
		v    *string
	}{{models.FieldPrincipalID, t.Principal}, {models.FieldTargetResourceID, t.Target}, {models.FieldOutcomeDescription, t.Outcome},
		{"action", t.Action}, {"correlationId", t.Correlation}, {"targetResourceType", t.TargetType}, {"ttl", t.TTL}} {
		if inClear == "" && f.v != nil && containsEmbedded(*f.v, ids) {
			inClear = WhyEmbedded + f.name
		}
	}
	if inClear == "" && detailsEmbedded {
		inClear = WhyEmbedded + "details"
	}
	if !outcomeHit && !detailsHit && !principalHit && !targetHit {
		return false, inClear, nil
	}
	if held != "" {
		return false, WhyHeld + held, nil
	}
	if !perFieldScheme(t.HashAlgorithm) {
		return false, WhyOlderScheme + t.HashAlgorithm, nil
	}
	sealer := r.e.sealer()
	if sealer == nil {
		return false, "", fmt.Errorf("erasure: no signing key to vouch for the redaction of %s events", t.HashAlgorithm)
	}
	// A never-redacted sha256-jcs-v3 event stores one event salt (the compact form): its
	// commitments are expanded from the values as they are now, before any changes, and the
	// event salt goes with the first redaction (docs/integrity.md §10).
	c, err := models.ExpandFieldCommitments(&models.Event{HashAlgorithm: t.HashAlgorithm, PrincipalID: t.Principal,
		TargetResourceID: t.Target, OutcomeDescription: t.Outcome, Details: t.Details, FieldCommitments: t.Commitments})
	if err != nil {
		return false, "", fmt.Errorf("erasure: %w", err)
	}
	fc, err := models.ParseFieldCommitments(c, t.HashAlgorithm)
	if err != nil {
		return false, "", fmt.Errorf("erasure: %w", err)
	}
	leave := func(why string) {
		if !models.CommitsFreeText(t.HashAlgorithm) {
			why = WhyOlderScheme + t.HashAlgorithm // sha256-jcs-v2 hashes free text in clear
		}
		if left == "" {
			left = why
		}
	}
	if inClear != "" {
		leave(inClear)
	}
	for _, f := range []struct {
		name string
		v    **string
		hit  bool
	}{{models.FieldPrincipalID, &t.Principal, principalHit}, {models.FieldTargetResourceID, &t.Target, targetHit}} {
		if !f.hit {
			continue
		}
		if _, ok := fc[f.name]; !ok {
			leave(WhyUncommitted + f.name)
			continue
		}
		v := replaceAny(**f.v, ids, r.pseudonym)
		if c, err = sealer.MarkField(c, t.HashAlgorithm, t.Hash, f.name, models.FieldPseudonymized, models.JSONString(v)); err != nil {
			return false, "", err
		}
		*f.v, changed = &v, true
	}
	if outcomeHit {
		if _, ok := fc[models.FieldOutcomeDescription]; ok {
			o := replaceAny(*t.Outcome, ids, r.pseudonym)
			if c, err = sealer.MarkField(c, t.HashAlgorithm, t.Hash, models.FieldOutcomeDescription, models.FieldPseudonymized,
				models.JSONString(o)); err != nil {
				return false, "", err
			}
			t.Outcome, changed = &o, true
		} else {
			leave(WhyUncommitted + models.FieldOutcomeDescription)
		}
	}
	if detailsHit {
		var details map[string]json.RawMessage
		if err := json.Unmarshal(t.Details, &details); err != nil {
			return false, "", fmt.Errorf("erasure: details are not a JSON object: %w", err)
		}
		keys := make([]string, 0, len(details))
		for k := range details {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		detailsChanged := false
		for _, k := range keys {
			raw := details[k]
			if containsAny(k, ids) {
				leave(WhyKeyName + models.DetailsFieldPrefix + k)
			}
			if hit, _ := jsonNames(raw, ids); !hit {
				continue
			}
			name := models.DetailsFieldPrefix + k
			if _, ok := fc[name]; !ok {
				leave(WhyUncommitted + name)
				continue
			}
			dec := json.NewDecoder(bytes.NewReader(raw))
			dec.UseNumber()
			var v any
			if err := dec.Decode(&v); err != nil {
				return false, "", fmt.Errorf("erasure: details.%s: %w", k, err)
			}
			nv, hit := replaceInValue(v, ids, r.pseudonym)
			if !hit {
				leave(WhyNumber + name)
				continue
			}
			if slicesContains(models.DefaultPersonalKeys, k) {
				delete(details, k)
				c, err = sealer.MarkField(c, t.HashAlgorithm, t.Hash, name, models.FieldErased, nil)
			} else {
				var b []byte
				if b, err = marshal(nv); err != nil {
					return false, "", err
				}
				details[k] = b
				c, err = sealer.MarkField(c, t.HashAlgorithm, t.Hash, name, models.FieldPseudonymized, b)
			}
			if err != nil {
				return false, "", err
			}
			detailsChanged = true
		}
		if detailsChanged {
			if t.Details, err = marshal(details); err != nil {
				return false, "", err
			}
			changed = true
		}
	}
	if changed {
		t.Commitments = c
	}
	return changed, left, nil
}

func slicesContains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// jsonNames reports whether a string (or an object's key) of the JSON value raw, at any
// depth, names one of ids as a whole identifier, and whether one stands in one only inside
// a longer identifier. The strings are decoded first: in the JSON text an escape before the
// identifier (the n of \n) would read as a letter adjoining it.
func jsonNames(raw []byte, ids []string) (whole, embedded bool) {
	if len(raw) == 0 {
		return false, false
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		// Not JSON (a stored value always is): judge the text as it stands.
		return containsAny(string(raw), ids), containsEmbedded(string(raw), ids)
	}
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case string:
			whole = whole || containsAny(x, ids)
			embedded = embedded || containsEmbedded(x, ids)
		case json.Number: // named too: it cannot be rewritten, and is counted (WhyNumber)
			whole = whole || containsAny(string(x), ids)
		case []any:
			for _, e := range x {
				walk(e)
			}
		case map[string]any:
			for k, e := range x {
				walk(k)
				walk(e)
			}
		}
	}
	walk(v)
	return whole, embedded
}

// mentionCandidate is an event whose free text names an identifier, as the scan found it.
type mentionCandidate struct {
	id  int64
	ts  time.Time
	alg string
}

// eraseMentions redacts the free text naming the subject in every event of the
// organization's audit_log whose scheme commits it (sha256-jcs-v3), in batches of one
// transaction each, and counts (and names) the others. One scan finds the events whose
// outcome description or details text holds an identifier (case-insensitively); the
// batches then lock and change them by id. A run stopped part way resumes: redacted events
// no longer match the scan, and Result.MentionsLeft is recounted by every run's own scan.
func (r *run) eraseMentions(ctx context.Context) error {
	ids := r.mentionIDs()
	r.mentionIDList = ids
	r.report("mentions")
	r.res.MentionsLeft, r.res.MentionsLeftIDs = 0, nil
	if len(ids) == 0 {
		return nil
	}
	var conds []string
	args := []any{r.org}
	for _, id := range ids {
		args = append(args, strings.ToLower(id), strings.ToLower(jsonEscaped(id)))
		n := len(args)
		conds = append(conds, fmt.Sprintf(`strpos(lower(e.outcome_description), $%[1]d) > 0 OR strpos(lower(e.details::text), $%[2]d) > 0
			OR strpos(lower(e.principal_id), $%[1]d) > 0 OR strpos(lower(e.target_resource_id), $%[1]d) > 0
			OR strpos(lower(e.action), $%[1]d) > 0 OR strpos(lower(e.correlation_id), $%[1]d) > 0
			OR strpos(lower(e.target_resource_type), $%[1]d) > 0 OR strpos(lower(e.ttl), $%[1]d) > 0`, n-1, n))
	}
	var cands []mentionCandidate
	err := models.WithPgx(ctx, r.e.db, func(conn *pgx.Conn) error {
		rows, _ := conn.Query(ctx, `SELECT e.id, e."timestamp", e.hash_algorithm FROM audit_log e
			WHERE e.organization_id = $1 AND (`+strings.Join(conds, " OR ")+`) ORDER BY e.id`, args...)
		var c mentionCandidate
		// Every candidate goes through the batches, whatever its scheme: the scan compares
		// substrings, the batch names the subject only where the whole identifier stands
		// (pat-1234 does not name pat-123), and only then counts an older scheme's event.
		_, err := pgx.ForEachRow(rows, []any{&c.id, &c.ts, &c.alg}, func() error {
			cands = append(cands, c)
			return nil
		})
		return err
	})
	if err != nil {
		return fmt.Errorf("erasure: events mentioning the subject: %w", err)
	}
	for len(cands) > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := min(len(cands), r.e.Batch)
		batch := cands[:n]
		cands = cands[n:]
		var left []leftEvent
		c, err := r.commitBatch(ctx, "events mentioning the subject, request "+r.requestID, func(tx pgx.Tx) (counts, error) {
			var c counts
			var err error
			c, left, err = r.redactMentionBatch(ctx, tx, batch, ids)
			return c, err
		})
		if err != nil {
			return err
		}
		for _, l := range left {
			r.leftMention(l.id, l.why)
		}
		if c != (counts{}) {
			r.applied(c)
			r.e.afterBatch()
		}
	}
	return nil
}

// subjects returns the request's subject and those of its earlier pseudonyms (Erase only).
func (r *run) subjects() []Subject {
	out := make([]Subject, 0, 1+len(r.aliases))
	out = append(out, r.s)
	for _, a := range r.aliases {
		out = append(out, a.subject)
	}
	return out
}

// subjectPrincipal reports whether p is the principal of the subject or of one of its
// earlier pseudonyms, exactly as the log phase matches it.
func (r *run) subjectPrincipal(p string) bool {
	for _, s := range r.subjects() {
		if s.PrincipalID != "" && p == s.PrincipalID {
			return true
		}
	}
	return false
}

// subjectResource reports whether (typ, id) is the resource of the subject or of one of its
// earlier pseudonyms, exactly as the log phase matches it.
func (r *run) subjectResource(typ *string, id string) bool {
	t := ""
	if typ != nil {
		t = *typ
	}
	for _, s := range r.subjects() {
		if s.ResourceID != "" && id == s.ResourceID && t == s.ResourceType {
			return true
		}
	}
	return false
}

// commitBatch runs work in one transaction under the run's purpose and, when it changed
// something, retires the organization's cached answers and adds the counts to the run's
// record in the same transaction. A failure of the database is wrapped with what.
func (r *run) commitBatch(ctx context.Context, what string, work func(tx pgx.Tx) (counts, error)) (counts, error) {
	var c counts
	err := r.e.withPurpose(ctx, func(tx pgx.Tx) error {
		var err error
		if c, err = work(tx); err != nil || c == (counts{}) {
			return err
		}
		if err := models.BumpCacheVersion(ctx, tx, r.org); err != nil {
			return err
		}
		return r.addCounts(ctx, tx, c)
	})
	if err != nil && models.KindOf(err) == models.KindInternal {
		err = fmt.Errorf("erasure: %s: %w", what, err)
	}
	return c, err
}

// leftEvent is an event left naming the subject, and why (one of the Why* reasons).
type leftEvent struct {
	id  int64
	why string
}

// leftMention counts an event still naming the subject in free text, for the reason why.
func (r *run) leftMention(id int64, why string) {
	r.res.MentionsLeft++
	if len(r.res.MentionsLeftIDs) < maxNamedLeft {
		r.res.MentionsLeftIDs = append(r.res.MentionsLeftIDs, id)
		r.res.MentionsLeftWhy = append(r.res.MentionsLeftWhy, why)
	}
}

// redactMentionBatch locks the batch's events, redacts their free text and writes what
// changed. It returns the counts to add and the events left naming the subject. An event
// under an active legal hold is left unchanged; the holds' lock is taken first, so a hold
// is either seen here or placed after the batch commits.
func (r *run) redactMentionBatch(ctx context.Context, tx pgx.Tx, batch []mentionCandidate, ids []string) (counts, []leftEvent, error) {
	eids, times := make([]int64, len(batch)), make([]time.Time, len(batch))
	for i, b := range batch {
		eids[i], times[i] = b.id, b.ts
	}
	if _, err := tx.Exec(ctx, models.LockHoldsSQL, r.org); err != nil {
		return counts{}, nil, err
	}
	rows, _ := tx.Query(ctx, `SELECT e.id, e."timestamp", e.hash_algorithm, e.outcome_description, e.details::text,
			`+commitmentsColumn+`, coalesce(e.hash, ''), e.tableoid::oid, e.ctid::text, e.principal_id, e.target_resource_id,
			e.action, e.correlation_id, e.target_resource_type, e.ttl,
			(SELECT lh.name FROM legal_holds lh WHERE lh.organization_id = $1 AND lh.released_at IS NULL
				AND `+models.HoldCoversSQL("lh", "e")+` ORDER BY lh.id LIMIT 1)
		FROM audit_log e WHERE e.organization_id = $1 AND e.id = ANY($2) AND e."timestamp" = ANY($3)
		ORDER BY e.id FOR UPDATE OF e`, r.org, eids, times)
	type row struct {
		id        int64
		ts        time.Time
		partition uint32
		ctid      string
		held      *string
		t         freeText
	}
	var got []*row
	want := make(map[int64]bool, len(eids))
	for _, id := range eids {
		want[id] = true
	}
	for rows.Next() {
		w := &row{}
		var details, commitments *string
		if err := rows.Scan(&w.id, &w.ts, &w.t.HashAlgorithm, &w.t.Outcome, &details, &commitments, &w.t.Hash,
			&w.partition, &w.ctid, &w.t.Principal, &w.t.Target, &w.t.Action, &w.t.Correlation, &w.t.TargetType, &w.t.TTL, &w.held); err != nil {
			rows.Close()
			return counts{}, nil, err
		}
		if !want[w.id] {
			continue // another event's id paired with one of the batch's times
		}
		if details != nil {
			w.t.Details = []byte(*details)
		}
		if commitments != nil {
			w.t.Commitments = []byte(*commitments)
		}
		got = append(got, w)
	}
	if err := rows.Err(); err != nil {
		return counts{}, nil, err
	}
	var left []leftEvent
	var sp span
	changed := map[uint32][]*row{}
	var n int64
	for _, w := range got {
		var held string
		if w.held != nil {
			held = *w.held
		}
		ch, why, err := r.redactMentions(&w.t, ids, held)
		if err != nil {
			return counts{}, nil, fmt.Errorf("event %d: %w", w.id, err)
		}
		if why != "" {
			left = append(left, leftEvent{w.id, why})
		}
		if ch {
			changed[w.partition] = append(changed[w.partition], w)
			sp.add(w.ts)
			n++
		}
	}
	for part, group := range changed {
		k := len(group)
		gids, tids := make([]int64, k), make([]string, k)
		outcomes, details, commitments := make([]*string, k), make([]*string, k), make([]string, k)
		principals, targets := make([]*string, k), make([]*string, k)
		for i, w := range group {
			gids[i], tids[i], outcomes[i], commitments[i] = w.id, w.ctid, w.t.Outcome, string(w.t.Commitments)
			principals[i], targets[i] = w.t.Principal, w.t.Target
			if w.t.Details != nil {
				d := string(w.t.Details)
				details[i] = &d
			}
		}
		rows, _ := tx.Query(ctx, `UPDATE audit_log e SET outcome_description = u.o, details = u.d::jsonb,
				field_commitments = u.c::jsonb, principal_id = u.p, target_resource_id = u.t
			FROM unnest($2::bigint[], $3::text[], $4::text[], $5::text[], $7::text[], $8::text[]) AS u(id, o, d, c, p, t)
			WHERE e.tableoid = $1 AND e.ctid = ANY($6::tid[]) AND e.id = u.id
			RETURNING e.id, e.organization_id`, part, gids, outcomes, details, commitments, tids, principals, targets)
		var got int64
		if err := checkReturned(rows, r.org, gids, &got); err != nil {
			return counts{}, nil, err
		}
	}
	if n == 0 {
		return counts{}, left, nil
	}
	if err := r.withdrawReports(ctx, tx, sp); err != nil {
		return counts{}, nil, err
	}
	return counts{mentions: n}, left, nil
}

// redactLineMentions is redactMentions for an archived event (the line is changed in
// place) given the organization's active legal holds; an event left naming the subject is
// counted.
func (r *run) redactLineMentions(l *models.ArchiveLine, holds []models.LegalHold) (bool, error) {
	if len(r.mentionIDList) == 0 {
		return false, nil
	}
	var held string
	for _, h := range holds {
		if covers(h, l) {
			held = h.Name
			break
		}
	}
	t := freeText{HashAlgorithm: l.HashAlgorithm, Hash: l.Hash, Outcome: l.OutcomeDescription, Details: l.Details,
		Commitments: l.FieldCommitments, Principal: l.PrincipalID, Target: l.TargetResourceID, Action: &l.Action,
		Correlation: l.CorrelationID, TargetType: l.TargetResourceType, TTL: l.TTL}
	changed, why, err := r.redactMentions(&t, r.mentionIDList, held)
	if err != nil {
		return false, fmt.Errorf("archived event %d: %w", l.ID, err)
	}
	if why != "" {
		r.leftMention(l.ID, why)
	}
	if changed {
		l.OutcomeDescription, l.Details, l.FieldCommitments = t.Outcome, t.Details, t.Commitments
		l.PrincipalID, l.TargetResourceID = t.Principal, t.Target
	}
	return changed, nil
}
