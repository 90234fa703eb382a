package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"auditdb/models"
	"auditdb/models/merkle"
)

// checkpointKeyCmd prints the public verifier key of the configured checkpoint key, for an
// operator to hand to auditors out of band. It never creates a key.
func checkpointKeyCmd(cfg config, args []string, stdout io.Writer) error {
	flags := newFlags("checkpoint-key", stdout)
	if err := flags.Parse(args); err != nil {
		return err
	}
	if cfg.CheckpointKey == nil {
		path := filepath.Join(cfg.DataDir, "checkpoint.key")
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			return models.Invalid("AUDITDB_CHECKPOINT_KEY", "no checkpoint key is configured: set it, or run serve once to create "+path)
		}
	}
	ck, err := cfg.checkpointKey()
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, ck.VerifierKey())
	return nil
}

// stringList is a flag that may be given several times.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// verifyConsistencyCmd checks that a newer saved checkpoint extends an older one with a
// consistency proof, read from a file or fetched from the API: the only thing it takes
// from the server is the proof, and the proof is checked against the saved checkpoints.
func verifyConsistencyCmd(ctx context.Context, getenv func(string) string, args []string, stdout io.Writer) error {
	fs := newFlags("verify-consistency", stdout)
	var keys stringList
	fs.Var(&keys, "key", "a pinned verifier key auditdb+<hash>+<key> (repeat for every key you keep)")
	keyFile := fs.String("key-file", "", "a file of pinned verifier keys, one a line (# comments)")
	oldPath := fs.String("old", "", "the older saved checkpoint: the signed note, or the JSON of /checkpoints/…")
	newPath := fs.String("new", "", "the newer saved checkpoint, in either form")
	proofPath := fs.String("proof", "", "a saved answer of /proofs/consistency (instead of --url)")
	base := fs.String("url", "", "the server's base URL, to fetch the proof with the read key in AUDITDB_API_KEY")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *keyFile != "" {
		fromFile, err := readKeyFile(*keyFile)
		if err != nil {
			return err
		}
		keys = append(keys, fromFile...)
	}
	switch {
	case len(keys) == 0:
		return models.Invalid("--key", "give the verifier key you pinned (--key or --key-file), not one fetched from the server")
	case *oldPath == "":
		return models.Invalid("--old", "give the older saved checkpoint")
	case *newPath == "":
		return models.Invalid("--new", "give the newer saved checkpoint")
	case (*proofPath == "") == (*base == ""):
		return models.Invalid("--proof", "give a saved proof (--proof FILE) or where to fetch it (--url URL)")
	}
	older, err := openSaved(*oldPath, keys)
	if err != nil {
		return err
	}
	newer, err := openSaved(*newPath, keys)
	if err != nil {
		return err
	}
	var raw []byte
	if *proofPath != "" {
		if raw, err = os.ReadFile(*proofPath); err != nil {
			return fmt.Errorf("cli: read the proof: %w", err)
		}
	} else if raw, err = fetchConsistency(ctx, *base, getenv("AUDITDB_API_KEY"), older.Size, newer.Size); err != nil {
		return err
	}
	var p struct {
		FromSize         int64    `json:"fromSize"`
		ToSize           int64    `json:"toSize"`
		ConsistencyProof []string `json:"consistencyProof"`
	}
	if err := json.Unmarshal(raw, &p); err != nil {
		return fmt.Errorf("cli: the proof is not the JSON of /proofs/consistency: %w", err)
	}
	if p.FromSize != older.Size || p.ToSize != newer.Size {
		return fmt.Errorf("cli: the proof is from size %d to %d, the saved checkpoints are of sizes %d and %d",
			p.FromSize, p.ToSize, older.Size, newer.Size)
	}
	hashes := make([][]byte, len(p.ConsistencyProof))
	for i, h := range p.ConsistencyProof {
		if hashes[i], err = base64.StdEncoding.DecodeString(h); err != nil {
			return fmt.Errorf("cli: proof hash %d is not base64", i)
		}
	}
	if err := merkle.CheckExtends(older, newer, hashes); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "OK: %s at tree size %d (seq %d, signed by %s) extends tree size %d (seq %d, signed by %s); %d proof hashes checked against the saved roots\n",
		newer.Origin, newer.Size, newer.Seq, newer.KeyID, older.Size, older.Seq, older.KeyID, len(hashes))
	return nil
}

// readKeyFile reads verifier keys, one a line; blank lines and # comments are skipped.
func readKeyFile(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cli: read the key file: %w", err)
	}
	defer f.Close()
	var keys []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line != "" && !strings.HasPrefix(line, "#") {
			keys = append(keys, strings.Fields(line)[0])
		}
	}
	return keys, sc.Err()
}

// openSaved reads a saved checkpoint (a signed note, or the JSON the API returns for a
// checkpoint, whose note is used) and opens it with the pinned keys.
func openSaved(path string, keys []string) (*merkle.SavedCheckpoint, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cli: read %s: %w", path, err)
	}
	if trimmed := bytes.TrimSpace(raw); len(trimmed) > 0 && trimmed[0] == '{' {
		var cp struct {
			Note string `json:"note"`
		}
		if err := json.Unmarshal(trimmed, &cp); err != nil || cp.Note == "" {
			return nil, fmt.Errorf("cli: %s is JSON without a checkpoint note", path)
		}
		raw = []byte(cp.Note)
	}
	saved, err := merkle.OpenSavedCheckpoint(raw, keys...)
	if err != nil {
		return nil, fmt.Errorf("cli: %s: %w", path, err)
	}
	return saved, nil
}

// fetchConsistency asks the API for the consistency proof between two tree sizes.
func fetchConsistency(ctx context.Context, base, key string, from, to int64) ([]byte, error) {
	if key == "" {
		return nil, models.Invalid("AUDITDB_API_KEY", "set it to a read key to fetch the proof")
	}
	u, err := url.Parse(strings.TrimSuffix(base, "/") + "/api/v1/proofs/consistency")
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, models.Invalid("--url", "must be the server's http(s) base URL")
	}
	u.RawQuery = url.Values{"from": {fmt.Sprint(from)}, "to": {fmt.Sprint(to)}}.Encode()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cli: fetch the proof: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("cli: fetch the proof: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("cli: fetch the proof: %s: %s", resp.Status, bytes.TrimSpace(body))
	}
	return body, nil
}
