package cli

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"auditdb/models"
	"auditdb/models/merkle"
	"auditdb/web/webtest"
)

func TestCheckpointKeyCommand(t *testing.T) {
	seed := "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
	raw, _ := hex.DecodeString(seed)
	want, err := merkle.NewCheckpointKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	dir := t.TempDir()
	if err := Run(context.Background(), []string{"checkpoint-key"}, env(map[string]string{"AUDITDB_CHECKPOINT_KEY": seed, "AUDITDB_DATA_DIR": dir}), &out); err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(out.String()); got != want.VerifierKey() {
		t.Fatalf("printed %q, want %q", got, want.VerifierKey())
	}
	// Without a configured key it says so and creates none.
	out.Reset()
	err = Run(context.Background(), []string{"checkpoint-key"}, env(map[string]string{"AUDITDB_DATA_DIR": dir}), &out)
	if err == nil || !strings.Contains(err.Error(), "no checkpoint key") {
		t.Fatalf("without a key: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "checkpoint.key")); err == nil {
		t.Fatal("checkpoint-key created a key")
	}
}

func TestVerifyConsistencyCommand(t *testing.T) {
	w := webtest.New(t)
	org := w.Org("consistency")
	in, read := w.APIKey(org, models.ScopeIngest), w.APIKey(org, models.ScopeRead)
	dir := t.TempDir()
	save := func(name, body string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	var sizes []int64
	var files []string
	for i, n := range []int{3, 5} {
		for j := 0; j < n; j++ {
			if r := w.API("POST", "/api/v1/events", in, "application/json", fmt.Sprintf(`{"action":"c.%d.%d","status":"success"}`, i, j)); r.StatusCode != 201 {
				t.Fatalf("ingest: %d %s", r.StatusCode, r.Body)
			}
		}
		w.Sequence()
		r := w.API("GET", "/api/v1/checkpoints/latest", read, "", "")
		var cp struct {
			TreeSize int64  `json:"treeSize"`
			Note     string `json:"note"`
		}
		if err := json.Unmarshal([]byte(r.Body), &cp); err != nil || r.StatusCode != 200 {
			t.Fatalf("latest: %d %s", r.StatusCode, r.Body)
		}
		sizes = append(sizes, cp.TreeSize)
		files = append(files, save(fmt.Sprintf("cp%d.json", i), r.Body))
		save(fmt.Sprintf("cp%d.note", i), cp.Note)
	}
	vkey := w.Log.Key().VerifierKey()
	proofBody := w.API("GET", fmt.Sprintf("/api/v1/proofs/consistency?from=%d&to=%d", sizes[0], sizes[1]), read, "", "").Body
	proofFile := save("proof.json", proofBody)
	var p map[string]any
	if err := json.Unmarshal([]byte(proofBody), &p); err != nil {
		t.Fatal(err)
	}
	hashes := p["consistencyProof"].([]any)
	h, _ := base64.StdEncoding.DecodeString(hashes[0].(string))
	h[0] ^= 1
	hashes[0] = base64.StdEncoding.EncodeToString(h)
	bad, _ := json.Marshal(p)
	badFile := save("tampered.json", string(bad))
	otherKey, _ := merkle.NewCheckpointKey(bytes.Repeat([]byte{7}, 32))
	keyFile := save("keys.txt", "# old key, valid until the rotation\n"+otherKey.VerifierKey()+"\n"+vkey+" current\n")
	base := w.Serve()

	run := func(apiKey string, args ...string) (string, error) {
		var out bytes.Buffer
		err := Run(context.Background(), append([]string{"verify-consistency"}, args...),
			env(map[string]string{"AUDITDB_API_KEY": apiKey, "AUDITDB_DATA_DIR": dir}), &out)
		return out.String(), err
	}
	okWant := fmt.Sprintf("extends tree size %d", sizes[0])
	for name, args := range map[string][]string{
		"fetched from the API":     {"--key", vkey, "--old", files[0], "--new", files[1], "--url", base},
		"saved proof, saved notes": {"--key", vkey, "--old", filepath.Join(dir, "cp0.note"), "--new", filepath.Join(dir, "cp1.note"), "--proof", proofFile},
		"a key file with old keys": {"--key-file", keyFile, "--old", files[0], "--new", files[1], "--proof", proofFile},
		"the same checkpoint":      {"--key", vkey, "--old", files[1], "--new", files[1], "--url", base},
	} {
		out, err := run(read, args...)
		if err != nil || !strings.HasPrefix(out, "OK: auditdb/"+org) {
			t.Fatalf("%s: %v\n%s", name, err, out)
		}
		if name != "the same checkpoint" && !strings.Contains(out, okWant) {
			t.Fatalf("%s: %s", name, out)
		}
	}
	for name, c := range map[string]struct {
		args []string
		want string
	}{
		"a tampered proof":         {[]string{"--key", vkey, "--old", files[0], "--new", files[1], "--proof", badFile}, "does not verify"},
		"another key":              {[]string{"--key", otherKey.VerifierKey(), "--old", files[0], "--new", files[1], "--proof", proofFile}, "signature does not verify"},
		"old and new swapped":      {[]string{"--key", vkey, "--old", files[1], "--new", files[0], "--url", base}, "400"},
		"the proof of other sizes": {[]string{"--key", vkey, "--old", files[1], "--new", files[1], "--proof", proofFile}, "saved checkpoints are of sizes"},
		"no key":                   {[]string{"--old", files[0], "--new", files[1], "--proof", proofFile}, "--key"},
		"neither proof nor url":    {[]string{"--key", vkey, "--old", files[0], "--new", files[1]}, "--proof"},
	} {
		if _, err := run(read, c.args...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Fatalf("%s: %v, want an error with %q", name, err, c.want)
		}
	}
	if _, err := run("", "--key", vkey, "--old", files[0], "--new", files[1], "--url", base); err == nil || !strings.Contains(err.Error(), "AUDITDB_API_KEY") {
		t.Fatalf("without an API key: %v", err)
	}
}
