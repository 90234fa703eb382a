package bundle

import (
	"encoding/hex"
	"fmt"

	"auditdb/models/merkle"
)

// readme is README.txt: what the bundle holds and how to check it, by program or by hand.
func readme(org string, cp merkle.Checkpoint) string {
	return fmt.Sprintf(`auditdb evidence bundle (%s)

Organization %s; every proof is against checkpoint %d of its log, tree size %d,
root %s (hex).

Files
  bundle.json       what was asked for (the filter), counts, and each other file's size and SHA-256
  checkpoint.note   the signed checkpoint (C2SP signed note), byte for byte as published
  verifier-key.txt  the log's verifier key: auditdb+<key hash>+<base64 of 0x01 || Ed25519 public key>
  events.jsonl      one event per line, every column of the row plus "leafIndex"
  manifest.jsonl    one log entry per line: id, leafIndex, hash, hashAlgorithm, state
                    (live, archived, or removed: removed events have no line, only hash and proof)
  proofs.jsonl      per manifest entry, its RFC 6962 audit path in the checkpoint, hex, leaf's sibling first
  bundle.sig        the server's signed statement: "auditdb/<organization> bundle", a newline and
                    bundle.json byte for byte, signed with the checkpoint key; through the
                    digests in bundle.json it covers every other file

Check it with the auditdb program (no database, no network):

  auditdb verify-bundle --key 'auditdb+<hash>+<key you pinned>' THIS.zip

Do not trust verifier-key.txt alone: anyone can make a bundle with their own key. Compare it
with the key the log's operator gave you out of band, or pass that key with --key.

Check it by hand (docs/integrity.md of auditdb gives every byte):
  1. Verify checkpoint.note's Ed25519 signature with your pinned key; read the tree size and
     the root (base64) from its second and third lines.
  2. For each line of events.jsonl, rebuild the canonical event document (RFC 8785 JSON of
     action, correlationId, dataClassification, details without the personal members ip,
     ipAddress, email, name, userAgent, eventVersion, hashAlgorithm, organizationId,
     outcomeDescription, retentionPolicy, status, subjectDigest, targetResourceId,
     targetResourceType, timestamp as YYYY-MM-DDTHH:MM:SS.ffffffZ, ttl; absent ones left
     out). Its SHA-256 in hex must equal the line's "hash" and its manifest entry's "hash".
     Where "subjectSalt" is present, SHA-256(salt || JCS({"details": personal members,
     "principalId": ...})) must equal "subjectDigest".
     That is hashAlgorithm sha256-jcs-v1. For sha256-jcs-v2 the document has no
     subjectDigest and no targetResourceId; it has "fieldDigests" instead: the object
     {name: digest} of the line's "fieldCommitments" (name: principalId, targetResourceId or
     details.<ip|ipAddress|email|name|userAgent>; no other name is valid). Each commitment
     that still has a "salt" must have digest = hex SHA-256(JCS([salt, name, value])) for the
     field's value; one with "state" (details keys: erased, value absent; principalId and
     targetResourceId: pseudonymized, value the pseudonym) and no salt was redacted by the
     server, which vouches for it with "mac", an HMAC under its own key that cannot be
     checked offline (the server refuses to write a bundle whose MAC does not verify).
     For sha256-jcs-v3 the document also has no details and no outcomeDescription: every
     details key (details.<key>) and the outcome description (outcomeDescription) are
     committed the same way; redacted free text is "pseudonymized" (the value holds the
     text with the subject's identifier replaced by the pseudonym), personal keys "erased".
     A v3 line nothing was redacted from has the compact "fieldCommitments"
     {"salt": event salt} alone: every field present is committed, its salt is the first
     16 bytes of HMAC-SHA256(key = the 16 bytes of the event salt, message = UTF-8 of the
     field name) in base64url, and its digest is computed as above from that salt and the
     value. A "salt" member beside any other is malformed.
  3. Every manifest entry but the removed ones has exactly one line, and every line one entry.
  4. For each manifest entry, leaf = SHA-256(0x00 || the 32 bytes of "hash"); fold the
     proof's hashes as RFC 6962 (RFC 9162 section 2.1.3.2) for leafIndex in the tree size:
     the result must be the checkpoint's root.
  5. Verify bundle.sig with your pinned key; its text after the first line must be bundle.json
     byte for byte, and every file's SHA-256 must be the one bundle.json records. Only then
     are the manifest's entries, their states and counts the server's signed claim.
`, Format, org, cp.Number, cp.TreeSize, hex.EncodeToString(cp.RootHash))
}
