package cli

import (
	"fmt"
	"io"
	"os"
	"strings"

	"auditdb/models"
	"auditdb/models/bundle"
)

// verifyBundleCmd checks an evidence bundle offline (no database, no network, no
// configuration but the trusted keys) and names every problem. The checkpoint is checked
// against the key inside the bundle and against the keys the auditor trusts (--key,
// --key-file, AUDITDB_VERIFIER_KEY); without a trusted key it says that only the bundle's
// own key vouches for it.
func verifyBundleCmd(getenv func(string) string, args []string, stdout io.Writer) error {
	fs := newFlags("verify-bundle", stdout)
	var keys stringList
	fs.Var(&keys, "key", "a trusted verifier key auditdb+<hash>+<key> (repeat for every key you keep)")
	keyFile := fs.String("key-file", "", "a file of trusted verifier keys, one a line (# comments)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return models.Invalid("FILE", "give one bundle: auditdb verify-bundle [--key K] FILE")
	}
	if *keyFile != "" {
		fromFile, err := readKeyFile(*keyFile)
		if err != nil {
			return err
		}
		keys = append(keys, fromFile...)
	}
	for _, k := range strings.Fields(getenv("AUDITDB_VERIFIER_KEY")) {
		keys = append(keys, k)
	}
	path := fs.Arg(0)
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("cli: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("cli: %w", err)
	}
	rep, err := bundle.Verify(f, st.Size(), keys)
	if err != nil {
		return err
	}
	// Everything printed from the bundle is escaped (bundle.Printable): an origin or a key name
	// could hold terminal escape sequences.
	fmt.Fprintf(stdout, "bundle %s: %s at tree size %d (seq %d)\n", bundle.Printable(path), bundle.Printable(rep.Origin), rep.TreeSize, rep.Seq)
	switch {
	case rep.TrustedKey != "":
		fmt.Fprintf(stdout, "checkpoint signed by trusted key %s\n", bundle.Printable(rep.TrustedKey))
	case len(keys) == 0:
		fmt.Fprintf(stdout, "WARNING: no trusted key given (--key, --key-file or AUDITDB_VERIFIER_KEY): the checkpoint was checked only "+
			"against the bundle's own key %s, which anyone making a bundle can choose; compare it with the key you pinned\n", bundle.Printable(orNone(rep.BundleKey)))
	}
	if rep.StatementKey != "" {
		fmt.Fprintf(stdout, "statement (bundle.sig: the filter, counts and every file's digest) signed by %s\n", bundle.Printable(rep.StatementKey))
	}
	fmt.Fprintf(stdout, "%d events (%d from archives) hashed from their lines, %d removed events listed, %d inclusion proofs checked\n",
		rep.Events, rep.Archived, rep.Removed, rep.Proofs)
	if rep.V2Events > 0 {
		fmt.Fprintf(stdout, "%d events of schemes %s/%s: committed fields %d disclosed and matching their digests, %d erased, %d pseudonymized "+
			"(redactions vouched for by the server, not checkable offline), %d not matching\n",
			rep.V2Events, models.HashAlgorithmV2, models.HashAlgorithmV3, rep.Fields[models.FieldDisclosedOK], rep.Fields[models.FieldErased],
			rep.Fields[models.FieldPseudonymized], rep.Fields[models.FieldMismatch])
		for _, n := range rep.FieldNotes {
			fmt.Fprintln(stdout, "redacted (digest kept, the hash still verifies): "+n)
		}
	}
	if rep.OK() {
		fmt.Fprintln(stdout, "OK")
		return nil
	}
	for _, p := range rep.Problems {
		fmt.Fprintln(stdout, "PROBLEM: "+p)
	}
	if rep.More > 0 {
		fmt.Fprintf(stdout, "… and %d more problems (only the first %d are listed)\n", rep.More, bundle.MaxProblems)
	}
	return fmt.Errorf("verify-bundle: %d problems in %s", len(rep.Problems)+rep.More, bundle.Printable(path))
}

func orNone(s string) string {
	if s == "" {
		return "(none that verifies)"
	}
	return s
}
