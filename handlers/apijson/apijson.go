// Package apijson holds the JSON presentations of the ingest and read API: the shapes the
// OpenAPI document (handlers/openapi.yaml) describes. Handlers fill them; encoding/json
// escapes <, > and & on output, so stored text is never interpreted by a client that
// embeds it in HTML.
package apijson

import (
	"encoding/base64"
	"encoding/json"
	"strconv"
	"time"

	"auditdb/models"
	"auditdb/models/ingest"
	"auditdb/models/merkle"
)

// TimeLayout is how every time in the API is written: RFC 3339, UTC, microseconds.
const TimeLayout = models.TimestampLayout

// Receipt acknowledges one durable event. It is the shape AppendReceiptJSON writes (the
// routes write it by hand; a test holds the two together).
type Receipt struct {
	ID        int64  `json:"id"`
	Hash      string `json:"hash"`
	Timestamp string `json:"timestamp"`
}

// AppendReceiptJSON appends r as the JSON of a Receipt, written directly: a receipt is
// the whole answer to a single event and every event of a batch, and encoding/json's
// reflection was a visible share of the ingest route's time. The hash is hex and the time
// is written in TimeLayout, so nothing in them needs escaping (a test compares the output
// with encoding/json's).
func AppendReceiptJSON(b []byte, r ingest.Receipt) []byte {
	b = append(b, `{"id":`...)
	b = strconv.AppendInt(b, r.ID, 10)
	b = append(b, `,"hash":"`...)
	b = append(b, r.Hash...)
	b = append(b, `","timestamp":"`...)
	b = r.Timestamp.UTC().AppendFormat(b, TimeLayout)
	return append(b, `"}`...)
}

// AppendBatchReceiptJSON appends the JSON of the BatchReceipt of rs.
func AppendBatchReceiptJSON(b []byte, rs []ingest.Receipt) []byte {
	b = append(b, `{"count":`...)
	b = strconv.AppendInt(b, int64(len(rs)), 10)
	b = append(b, `,"events":[`...)
	for i, r := range rs {
		if i > 0 {
			b = append(b, ',')
		}
		b = AppendReceiptJSON(b, r)
	}
	return append(b, "]}"...)
}

// BatchReceipt acknowledges a whole batch, receipts in the order the events were sent.
type BatchReceipt struct {
	Count  int       `json:"count"`
	Events []Receipt `json:"events"`
}

// DeadLettered answers a request whose events were accepted but refused by the database:
// they are kept as a dead letter for an administrator to replay.
type DeadLettered struct {
	Status       string `json:"status"`
	DeadLetterID int64  `json:"deadLetterId"`
	Reason       string `json:"reason"`
}

// NewDeadLettered shapes a dead letter.
func NewDeadLettered(d *ingest.DeadLetter) DeadLettered {
	return DeadLettered{Status: "dead-lettered", DeadLetterID: d.ID, Reason: d.FailureReason}
}

// Event is a stored event with its integrity fields (the subject salt stays private).
type Event struct {
	ID                 int64           `json:"id"`
	Timestamp          string          `json:"timestamp"`
	OrganizationID     string          `json:"organizationId"`
	Action             string          `json:"action"`
	Status             string          `json:"status"`
	PrincipalID        *string         `json:"principalId,omitempty"`
	TargetResourceType *string         `json:"targetResourceType,omitempty"`
	TargetResourceID   *string         `json:"targetResourceId,omitempty"`
	OutcomeDescription *string         `json:"outcomeDescription,omitempty"`
	CorrelationID      *string         `json:"correlationId,omitempty"`
	DataClassification string          `json:"dataClassification"`
	RetentionPolicy    string          `json:"retentionPolicy"`
	EventVersion       string          `json:"eventVersion"`
	TTL                *string         `json:"ttl,omitempty"`
	Details            json.RawMessage `json:"details,omitempty"`
	ProcessingLatency  *int32          `json:"processingLatency,omitempty"`
	ArchivedAt         *string         `json:"archivedAt,omitempty"`
	HashAlgorithm      string          `json:"hashAlgorithm"`
	Hash               string          `json:"hash"`
	SubjectDigest      string          `json:"subjectDigest"`
	Signature          string          `json:"signature"`
	// FieldCommitments are a sha256-jcs-v2/-v3 event's per-field digests (and salts, or states once
	// erased or pseudonymized), which its hash covers; for a never-redacted v3 event the
	// compact form, {"salt": event salt}, from which they are derived; absent for sha256-jcs-v1.
	FieldCommitments json.RawMessage `json:"fieldCommitments,omitempty"`
}

// NewEvent shapes a stored event.
func NewEvent(ev *models.Event) Event {
	out := Event{ID: ev.ID, Timestamp: ev.Timestamp.UTC().Format(TimeLayout), OrganizationID: ev.OrganizationID,
		Action: ev.Action, Status: ev.Status, PrincipalID: ev.PrincipalID, TargetResourceType: ev.TargetResourceType,
		TargetResourceID: ev.TargetResourceID, OutcomeDescription: ev.OutcomeDescription, CorrelationID: ev.CorrelationID,
		DataClassification: ev.DataClassification, RetentionPolicy: ev.RetentionPolicy, EventVersion: ev.EventVersion,
		TTL: ev.TTL, ProcessingLatency: ev.ProcessingLatency, HashAlgorithm: ev.HashAlgorithm, Hash: ev.Hash,
		SubjectDigest: ev.SubjectDigest, Signature: ev.Signature}
	if len(ev.FieldCommitments) > 0 && string(ev.FieldCommitments) != "null" {
		out.FieldCommitments = ev.FieldCommitments
	}
	if len(ev.Details) > 0 && string(ev.Details) != "null" {
		out.Details = ev.Details
	}
	if ev.ArchivedAt != nil {
		s := ev.ArchivedAt.UTC().Format(TimeLayout)
		out.ArchivedAt = &s
	}
	return out
}

// EventPage is one page of the events list; NextCursor (for ?after=) is null on the last.
type EventPage struct {
	Events     []Event `json:"events"`
	NextCursor *string `json:"nextCursor"`
}

// Verification is the outcome of POST /events/{id}/verify.
type Verification struct {
	EventID      int64  `json:"eventId"`
	Status       string `json:"status"`
	Reason       string `json:"reason"`
	ExpectedHash string `json:"expectedHash"`
	ComputedHash string `json:"computedHash"`
	HashOK       bool   `json:"hashOk"`
	SignatureOK  bool   `json:"signatureOk"`
	LeafIndex    *int64 `json:"leafIndex"`
	LogMatches   bool   `json:"logMatches"`
	Checkpoint   *int64 `json:"checkpoint"`
	VerifiedAt   string `json:"verifiedAt"`
	VerifiedBy   string `json:"verifiedBy"`
	// Fields is the commitment state of each committed field of a sha256-jcs-v2/-v3 event.
	Fields []models.FieldCheck `json:"fields,omitempty"`
}

// NewVerification shapes an event check.
func NewVerification(c *merkle.EventCheck) Verification {
	return Verification{EventID: c.EventID, Status: c.Status, Reason: c.Reason, ExpectedHash: c.ExpectedHash,
		ComputedHash: c.ComputedHash, HashOK: c.HashOK, SignatureOK: c.SignatureOK, LeafIndex: c.LeafIndex,
		LogMatches: c.LogMatches, Checkpoint: c.Checkpoint, VerifiedAt: c.VerifiedAt.UTC().Format(TimeLayout),
		VerifiedBy: c.VerifiedBy, Fields: c.Fields}
}

// Checkpoint is a signed checkpoint of an organization's log. Hashes are standard base64,
// as in the signed note.
type Checkpoint struct {
	Number      int64  `json:"number"`
	Origin      string `json:"origin"`
	TreeSize    int64  `json:"treeSize"`
	RootHash    string `json:"rootHash"`
	Note        string `json:"note"`
	CreatedAt   string `json:"createdAt"`
	VerifierKey string `json:"verifierKey"`
}

// NewCheckpoint shapes a checkpoint; vkey is the log's public verifier key.
func NewCheckpoint(cp *merkle.Checkpoint, vkey string) Checkpoint {
	return Checkpoint{Number: cp.Number, Origin: merkle.Origin(cp.OrganizationID), TreeSize: cp.TreeSize,
		RootHash: base64.StdEncoding.EncodeToString(cp.RootHash), Note: cp.Note,
		CreatedAt: cp.CreatedAt.UTC().Format(TimeLayout), VerifierKey: vkey}
}

// Proof is an RFC 6962 inclusion proof of one event in a signed checkpoint. The leaf is
// SHA-256(0x00 ‖ the 32 bytes of the event hash).
type Proof struct {
	EventID        int64      `json:"eventId"`
	EventHash      string     `json:"eventHash"`
	LeafIndex      int64      `json:"leafIndex"`
	LeafHash       string     `json:"leafHash"`
	TreeSize       int64      `json:"treeSize"`
	InclusionProof []string   `json:"inclusionProof"`
	Checkpoint     Checkpoint `json:"checkpoint"`
}

// NewProof shapes an inclusion proof.
func NewProof(p *merkle.InclusionProof, vkey string) Proof {
	hashes := make([]string, len(p.Hashes))
	for i, h := range p.Hashes {
		hashes[i] = base64.StdEncoding.EncodeToString(h)
	}
	return Proof{EventID: p.EventID, EventHash: p.EventHash, LeafIndex: p.LeafIndex,
		LeafHash: base64.StdEncoding.EncodeToString(p.LeafHash), TreeSize: p.Checkpoint.TreeSize,
		InclusionProof: hashes, Checkpoint: NewCheckpoint(&p.Checkpoint, vkey)}
}

// ConsistencyProof is an RFC 6962 consistency proof that the tree of the checkpoint To
// extends the tree of the checkpoint From, with both checkpoints. An auditor checks it
// against the roots of the checkpoints they saved, not against the ones returned here.
type ConsistencyProof struct {
	FromSize         int64      `json:"fromSize"`
	ToSize           int64      `json:"toSize"`
	ConsistencyProof []string   `json:"consistencyProof"`
	From             Checkpoint `json:"from"`
	To               Checkpoint `json:"to"`
}

// NewConsistencyProof shapes a consistency proof; vkey is the log's public verifier key.
func NewConsistencyProof(p *merkle.Consistency, vkey string) ConsistencyProof {
	hashes := make([]string, len(p.Hashes))
	for i, h := range p.Hashes {
		hashes[i] = base64.StdEncoding.EncodeToString(h)
	}
	return ConsistencyProof{FromSize: p.From.TreeSize, ToSize: p.To.TreeSize, ConsistencyProof: hashes,
		From: NewCheckpoint(&p.From, vkey), To: NewCheckpoint(&p.To, vkey)}
}

// Alert is one alert as the API presents it. Optional fields are null when unset.
type Alert struct {
	ID              string          `json:"id"`
	Severity        string          `json:"severity"`
	Type            string          `json:"type"`
	Title           string          `json:"title"`
	Description     string          `json:"description"`
	Source          *string         `json:"source"`
	Rule            *string         `json:"rule"`
	Principal       *string         `json:"principal"`
	CorrelationID   *string         `json:"correlationId"`
	State           string          `json:"state"`
	EventIDs        []int64         `json:"eventIds"`
	Metadata        json.RawMessage `json:"metadata"`
	CreatedAt       string          `json:"createdAt"`
	AcknowledgedAt  *string         `json:"acknowledgedAt"`
	AcknowledgedBy  *string         `json:"acknowledgedBy"`
	ResolvedAt      *string         `json:"resolvedAt"`
	ResolvedBy      *string         `json:"resolvedBy"`
	ResolutionNotes *string         `json:"resolutionNotes"`
}

// NewAlert presents a.
func NewAlert(a *models.Alert) Alert {
	opt := func(s string) *string {
		if s == "" {
			return nil
		}
		return &s
	}
	at := func(t *time.Time) *string {
		if t == nil {
			return nil
		}
		s := t.UTC().Format(TimeLayout)
		return &s
	}
	out := Alert{ID: a.ID, Severity: a.Severity, Type: a.Type, Title: a.Title, Description: a.Description,
		Source: opt(a.Source), Rule: opt(a.Rule), Principal: opt(a.Principal), CorrelationID: opt(a.CorrelationID),
		State: a.State(), EventIDs: a.EventIDs, Metadata: a.Metadata,
		CreatedAt: a.CreatedAt.UTC().Format(TimeLayout), AcknowledgedAt: at(a.AcknowledgedAt),
		AcknowledgedBy: opt(a.AcknowledgedBy), ResolvedAt: at(a.ResolvedAt), ResolvedBy: opt(a.ResolvedBy),
		ResolutionNotes: opt(a.ResolutionNotes)}
	if out.EventIDs == nil {
		out.EventIDs = []int64{}
	}
	if len(out.Metadata) == 0 {
		out.Metadata = json.RawMessage("null")
	}
	return out
}

// AlertPage is one page of the alerts list; NextCursor (for ?after=) is null on the last.
type AlertPage struct {
	Alerts     []Alert `json:"alerts"`
	NextCursor *string `json:"nextCursor"`
}
