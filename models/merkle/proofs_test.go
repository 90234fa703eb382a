package merkle_test

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"strings"
	"testing"

	tlog "github.com/transparency-dev/formats/log"
	"golang.org/x/mod/sumdb/note"

	"auditdb/models/merkle"
)

// signedCheckpoint signs a checkpoint of origin over size and root with key.
func signedCheckpoint(t *testing.T, key *merkle.CheckpointKey, origin string, seq int, size uint64, root []byte) []byte {
	t.Helper()
	body := string(tlog.Checkpoint{Origin: origin, Size: size, Hash: root}.Marshal()) + fmt.Sprintf("seq %d\n", seq)
	msg, err := note.Sign(&note.Note{Text: body}, key)
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

func TestSavedCheckpointsAcrossAKeyRotation(t *testing.T) {
	oldKey, _ := merkle.NewCheckpointKey(bytes.Repeat([]byte{1}, 32))
	newKey, _ := merkle.NewCheckpointKey(bytes.Repeat([]byte{2}, 32))
	root := sha256.Sum256([]byte("root"))
	other := sha256.Sum256([]byte("other root"))
	before := signedCheckpoint(t, oldKey, "auditdb/acme", 1, 5, root[:])
	after := signedCheckpoint(t, newKey, "auditdb/acme", 2, 5, root[:])

	// An auditor keeps both keys: each checkpoint opens with the key that signed it.
	a, err := merkle.OpenSavedCheckpoint(before, newKey.VerifierKey(), oldKey.VerifierKey())
	if err != nil || a.Size != 5 || a.Seq != 1 || !strings.HasPrefix(oldKey.VerifierKey(), a.KeyID+"+") {
		t.Fatalf("old checkpoint: %+v, %v", a, err)
	}
	b, err := merkle.OpenSavedCheckpoint(after, newKey.VerifierKey(), oldKey.VerifierKey())
	if err != nil || b.Seq != 2 || !strings.HasPrefix(newKey.VerifierKey(), b.KeyID+"+") {
		t.Fatalf("new checkpoint: %+v, %v", b, err)
	}
	if err := merkle.CheckExtends(a, b, nil); err != nil {
		t.Fatalf("same size and root across the rotation: %v", err)
	}
	// Without the old key the old checkpoint does not open.
	if _, err := merkle.OpenSavedCheckpoint(before, newKey.VerifierKey()); err == nil {
		t.Fatal("the old checkpoint opened with the new key only")
	}
	if _, err := merkle.OpenSavedCheckpoint(before); err == nil {
		t.Fatal("a checkpoint opened without a key")
	}
	// A fork (same size, another root) and another log are refused.
	fork, err := merkle.OpenSavedCheckpoint(signedCheckpoint(t, newKey, "auditdb/acme", 3, 5, other[:]), newKey.VerifierKey())
	if err != nil {
		t.Fatal(err)
	}
	if err := merkle.CheckExtends(a, fork, nil); err == nil || !strings.Contains(err.Error(), "forked") {
		t.Fatalf("fork: %v", err)
	}
	elsewhere, err := merkle.OpenSavedCheckpoint(signedCheckpoint(t, newKey, "auditdb/globex", 1, 5, root[:]), newKey.VerifierKey())
	if err != nil {
		t.Fatal(err)
	}
	if err := merkle.CheckExtends(a, elsewhere, nil); err == nil || !strings.Contains(err.Error(), "two logs") {
		t.Fatalf("two logs: %v", err)
	}
	// A note of another signer's origin is not an auditdb log.
	if _, err := merkle.OpenSavedCheckpoint(signedCheckpoint(t, newKey, "example.com/log", 1, 5, root[:]), newKey.VerifierKey()); err == nil {
		t.Fatal("a foreign origin opened")
	}
}
