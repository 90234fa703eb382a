package handlers_test

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	"auditdb/models"
	"auditdb/web/webtest"
)

type apiConsistency struct {
	FromSize         int64         `json:"fromSize"`
	ToSize           int64         `json:"toSize"`
	ConsistencyProof []string      `json:"consistencyProof"`
	From             apiCheckpoint `json:"from"`
	To               apiCheckpoint `json:"to"`
}

type apiProof struct {
	EventID        int64         `json:"eventId"`
	LeafIndex      int64         `json:"leafIndex"`
	LeafHash       string        `json:"leafHash"`
	TreeSize       int64         `json:"treeSize"`
	InclusionProof []string      `json:"inclusionProof"`
	Checkpoint     apiCheckpoint `json:"checkpoint"`
}

func b64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatalf("%q is not base64: %v", s, err)
	}
	return b
}

func b64s(t *testing.T, ss []string) [][]byte {
	t.Helper()
	out := make([][]byte, len(ss))
	for i, s := range ss {
		out[i] = b64(t, s)
	}
	return out
}

// tampered returns a copy of hashes with one bit of hash i flipped.
func tampered(hashes [][]byte, i int) [][]byte {
	out := make([][]byte, len(hashes))
	for j, h := range hashes {
		out[j] = bytes.Clone(h)
	}
	out[i][0] ^= 1
	return out
}

// ingestN posts n events for key and returns their ids.
func ingestN(t *testing.T, env *webtest.Env, key, action string, n int) []int64 {
	t.Helper()
	var ids []int64
	for i := 0; i < n; i++ {
		r := env.API("POST", "/api/v1/events", key, jsonType, fmt.Sprintf(`{"action":"%s.%d","status":"success"}`, action, i))
		if r.StatusCode != 201 {
			t.Fatalf("ingest: %d %s", r.StatusCode, r.Body)
		}
		ids = append(ids, decode[receipt](t, r).ID)
	}
	return ids
}

// wantError fails unless r is a JSON error with status and field.
func wantError(t *testing.T, r webtest.Response, status int, field string) apiError {
	t.Helper()
	if r.StatusCode != status {
		t.Fatalf("status %d, want %d: %s", r.StatusCode, status, r.Body)
	}
	e := decode[apiError](t, r)
	if e.Error.Status != status || e.Error.Field != field || e.Error.Message == "" {
		t.Fatalf("error %+v, want status %d naming %q", e.Error, status, field)
	}
	return e
}

func TestAPIProofsAgainstSavedCheckpoints(t *testing.T) {
	env := webtest.New(t)
	org, other := env.Org("proofs"), env.Org("proofs-other")
	in, read := env.APIKey(org, models.ScopeIngest), env.APIKey(org, models.ScopeRead)
	otherIn, otherRead := env.APIKey(other, models.ScopeIngest), env.APIKey(other, models.ScopeRead)
	verifier, err := note.NewVerifier(env.Log.Key().VerifierKey())
	if err != nil {
		t.Fatal(err)
	}

	// Three checkpoints, each saved the way an auditor would save it when it was the newest.
	var saved []apiCheckpoint
	var batches [][]int64
	for i, n := range []int{3, 4, 2} {
		batches = append(batches, ingestN(t, env, in, fmt.Sprintf("proofs.%d", i), n))
		env.Sequence()
		r := env.API("GET", "/api/v1/checkpoints/latest", read, "", "")
		if r.StatusCode != 200 {
			t.Fatalf("latest: %d %s", r.StatusCode, r.Body)
		}
		saved = append(saved, decode[apiCheckpoint](t, r))
	}
	// The other organization's log grows to a size this one never published.
	ingestN(t, env, otherIn, "other", 25)
	env.Sequence()
	otherCp := decode[apiCheckpoint](t, env.API("GET", "/api/v1/checkpoints/latest", otherRead, "", ""))
	published := map[int64]bool{}
	for _, cp := range saved {
		published[cp.TreeSize] = true
	}
	if published[otherCp.TreeSize] {
		t.Fatalf("the other organization's size %d is also this one's; the test needs distinct sizes", otherCp.TreeSize)
	}
	unpublished := saved[0].TreeSize + 1
	if published[unpublished] {
		t.Fatalf("size %d is published", unpublished)
	}
	size := func(i int) string { return fmt.Sprint(saved[i].TreeSize) }

	t.Run("every published checkpoint stays retrievable as published", func(t *testing.T) {
		for i, want := range saved {
			r := env.API("GET", "/api/v1/checkpoints/"+size(i), read, "", "")
			got := decode[apiCheckpoint](t, r)
			if r.StatusCode != 200 || got != want {
				t.Fatalf("checkpoint %s: %d %+v, want %+v", size(i), r.StatusCode, got, want)
			}
			if got.Number != int64(i+1) {
				t.Fatalf("checkpoint of size %s is number %d, want %d", size(i), got.Number, i+1)
			}
			if _, err := note.Open([]byte(got.Note), note.VerifierList(verifier)); err != nil {
				t.Fatalf("checkpoint %s does not verify: %v", size(i), err)
			}
		}
	})

	t.Run("a size never published is a JSON 404, also another organization's", func(t *testing.T) {
		for _, path := range []string{
			fmt.Sprint("/api/v1/checkpoints/", unpublished),
			fmt.Sprint("/api/v1/checkpoints/", otherCp.TreeSize),
			"/api/v1/checkpoints/0", "/api/v1/checkpoints/-1", "/api/v1/checkpoints/x",
		} {
			wantError(t, env.API("GET", path, read, "", ""), 404, "")
		}
		if r := env.API("GET", fmt.Sprint("/api/v1/checkpoints/", otherCp.TreeSize), otherRead, "", ""); r.StatusCode != 200 {
			t.Fatalf("the other organization's own checkpoint: %d", r.StatusCode)
		}
	})

	t.Run("consistency proofs verify against the saved roots; a tampered one does not", func(t *testing.T) {
		for _, pair := range [][2]int{{0, 1}, {0, 2}, {1, 2}} {
			from, to := saved[pair[0]], saved[pair[1]]
			r := env.API("GET", fmt.Sprintf("/api/v1/proofs/consistency?from=%d&to=%d", from.TreeSize, to.TreeSize), read, "", "")
			if r.StatusCode != 200 {
				t.Fatalf("status %d: %s", r.StatusCode, r.Body)
			}
			p := decode[apiConsistency](t, r)
			if p.FromSize != from.TreeSize || p.ToSize != to.TreeSize || p.From != from || p.To != to {
				t.Fatalf("proof %+v for %d..%d", p, from.TreeSize, to.TreeSize)
			}
			hashes := b64s(t, p.ConsistencyProof)
			if len(hashes) == 0 {
				t.Fatal("an empty proof between two different sizes")
			}
			root1, root2 := b64(t, from.RootHash), b64(t, to.RootHash)
			if err := proof.VerifyConsistency(rfc6962.DefaultHasher, uint64(from.TreeSize), uint64(to.TreeSize), hashes, root1, root2); err != nil {
				t.Fatalf("%d..%d does not verify: %v", from.TreeSize, to.TreeSize, err)
			}
			for i := range hashes {
				if proof.VerifyConsistency(rfc6962.DefaultHasher, uint64(from.TreeSize), uint64(to.TreeSize), tampered(hashes, i), root1, root2) == nil {
					t.Fatalf("%d..%d verifies with hash %d tampered", from.TreeSize, to.TreeSize, i)
				}
			}
			if proof.VerifyConsistency(rfc6962.DefaultHasher, uint64(from.TreeSize), uint64(to.TreeSize), hashes, tampered([][]byte{root1}, 0)[0], root2) == nil {
				t.Fatal("the proof verifies from another root")
			}
		}
	})

	t.Run("from equal to to is an empty proof", func(t *testing.T) {
		r := env.API("GET", "/api/v1/proofs/consistency?from="+size(1)+"&to="+size(1), read, "", "")
		p := decode[apiConsistency](t, r)
		if r.StatusCode != 200 || p.ConsistencyProof == nil || len(p.ConsistencyProof) != 0 || p.From != saved[1] || p.To != saved[1] {
			t.Fatalf("%d %s", r.StatusCode, r.Body)
		}
	})

	t.Run("bad consistency requests name the parameter", func(t *testing.T) {
		for _, c := range []struct{ query, field string }{
			{"", "from"},
			{"?to=" + size(1), "from"},
			{"?from=" + size(0), "to"},
			{"?from=x&to=" + size(1), "from"},
			{"?from=0&to=" + size(1), "from"},
			{"?from=" + size(0) + "&to=-3", "to"},
			{"?from=" + size(1) + "&to=" + size(0), "from"},
			{fmt.Sprintf("?from=%d&to=%s", unpublished, size(2)), "from"},
			{fmt.Sprintf("?from=%s&to=%d", size(0), otherCp.TreeSize), "to"},
		} {
			e := wantError(t, env.API("GET", "/api/v1/proofs/consistency"+c.query, read, "", ""), 400, c.field)
			if strings.Contains(c.query, fmt.Sprint(otherCp.TreeSize)) && !strings.Contains(e.Error.Message, "no checkpoint") {
				t.Fatalf("%s: message %q", c.query, e.Error.Message)
			}
		}
	})

	t.Run("inclusion proofs against a chosen checkpoint", func(t *testing.T) {
		first, late := batches[0][0], batches[2][0]
		for _, c := range []struct {
			id     int64
			query  string
			cp     apiCheckpoint
			status int
		}{
			{first, "?checkpoint=" + size(0), saved[0], 200},
			{first, "?checkpoint=" + size(1), saved[1], 200},
			{first, "", saved[2], 200},
			{late, "?checkpoint=" + size(2), saved[2], 200},
		} {
			r := env.API("GET", fmt.Sprintf("/api/v1/events/%d/proof%s", c.id, c.query), read, "", "")
			if r.StatusCode != c.status {
				t.Fatalf("%d%s: %d %s", c.id, c.query, r.StatusCode, r.Body)
			}
			p := decode[apiProof](t, r)
			if p.EventID != c.id || p.TreeSize != c.cp.TreeSize || p.Checkpoint != c.cp {
				t.Fatalf("%d%s: proof against %+v, want %+v", c.id, c.query, p.Checkpoint, c.cp)
			}
			hashes, leaf, root := b64s(t, p.InclusionProof), b64(t, p.LeafHash), b64(t, c.cp.RootHash)
			if err := proof.VerifyInclusion(rfc6962.DefaultHasher, uint64(p.LeafIndex), uint64(c.cp.TreeSize), leaf, hashes, root); err != nil {
				t.Fatalf("%d%s does not verify against the saved root: %v", c.id, c.query, err)
			}
			if len(hashes) > 0 && proof.VerifyInclusion(rfc6962.DefaultHasher, uint64(p.LeafIndex), uint64(c.cp.TreeSize), leaf, tampered(hashes, 0), root) == nil {
				t.Fatalf("%d%s verifies with a tampered hash", c.id, c.query)
			}
			if proof.VerifyInclusion(rfc6962.DefaultHasher, uint64(p.LeafIndex), uint64(c.cp.TreeSize), tampered([][]byte{leaf}, 0)[0], hashes, root) == nil {
				t.Fatalf("%d%s verifies for another leaf", c.id, c.query)
			}
		}
	})

	t.Run("an event logged after the chosen checkpoint is a 409", func(t *testing.T) {
		e := wantError(t, env.API("GET", fmt.Sprintf("/api/v1/events/%d/proof?checkpoint=%s", batches[2][0], size(0)), read, "", ""), 409, "checkpoint")
		if !strings.Contains(e.Error.Message, "after the checkpoint of tree size "+size(0)) {
			t.Fatalf("message %q", e.Error.Message)
		}
	})

	t.Run("a checkpoint never published is a 400 naming it", func(t *testing.T) {
		for _, q := range []string{fmt.Sprint(unpublished), fmt.Sprint(otherCp.TreeSize), "0", "x", ""} {
			wantError(t, env.API("GET", fmt.Sprintf("/api/v1/events/%d/proof?checkpoint=%s", batches[0][0], q), read, "", ""), 400, "checkpoint")
		}
	})

	t.Run("another organization cannot prove this one's event at its own size", func(t *testing.T) {
		r := env.API("GET", fmt.Sprintf("/api/v1/events/%d/proof?checkpoint=%d", batches[0][0], otherCp.TreeSize), otherRead, "", "")
		wantError(t, r, 404, "")
	})
}
