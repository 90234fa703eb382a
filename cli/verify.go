package cli

import (
	"context"
	"fmt"
	"io"
	"time"

	"auditdb/models"
	"auditdb/models/erasure"
	"auditdb/models/merkle"
)

func verifyCmd(ctx context.Context, cfg config, args []string, stdout io.Writer) error {
	fs := newFlags("verify", stdout)
	org := fs.String("org", "", "organization id")
	all := fs.Bool("all", false, "check every organization")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if (*org == "") == !*all {
		return models.Invalid("--org", "give --org ID or --all")
	}
	db, err := openDB(ctx, cfg)
	if err != nil {
		return err
	}
	defer closeDB(db)
	sealer, ck, err := integrityKeys(cfg)
	if err != nil {
		return err
	}
	checker := merkle.NewVerifier(db, sealer, merkle.NewLog(db, ck))
	orgs := []string{*org}
	if *all {
		list, err := models.NewOrgStore(db).All(ctx)
		if err != nil {
			return err
		}
		orgs = orgs[:0]
		for _, o := range list {
			orgs = append(orgs, o.ID)
		}
	}
	fmt.Fprintf(stdout, "checkpoint verifier key: %s\n", ck.VerifierKey())
	var problems int64
	for _, o := range orgs {
		start := time.Now()
		rep, err := checker.CheckOrg(ctx, o)
		if err != nil {
			return err
		}
		problems += rep.Problems
		verdict := "OK"
		if !rep.OK() {
			verdict = fmt.Sprintf("%d PROBLEMS", rep.Problems)
		}
		fmt.Fprintf(stdout, "%s: %s — %d events (%d awaiting the log), %d log entries, %d checkpoints, checked in %s\n",
			o, verdict, rep.Events, rep.Pending, rep.Leaves, rep.Checkpoints, time.Since(start).Round(time.Millisecond))
		if rep.Archives > 0 {
			fmt.Fprintf(stdout, "  %d events verified from %d archives\n", rep.Archived, rep.Archives)
		}
		if rep.V2Events > 0 {
			fmt.Fprintf(stdout, "  %d events of schemes %s/%s; committed fields erased: %d, pseudonymized: %d (digests kept: the events still verify)\n",
				rep.V2Events, models.HashAlgorithmV2, models.HashAlgorithmV3, rep.ErasedFields, rep.PseudonymizedFields)
		}
		for _, line := range rep.RemovedBy {
			fmt.Fprintf(stdout, "  %s\n", line)
		}
		// What each GDPR request did besides its removals (the kept, pseudonymized events
		// verify like the rest; rewritten archives were checked above).
		gdpr, err := erasure.Summaries(ctx, db, o)
		if err != nil {
			return err
		}
		for _, line := range gdpr {
			fmt.Fprintf(stdout, "  GDPR %s\n", line)
		}
		for _, f := range rep.Findings {
			switch {
			case f.EventID != 0 && f.LeafIndex >= 0:
				fmt.Fprintf(stdout, "  %-10s event %d (log entry %d): %s\n", f.Kind, f.EventID, f.LeafIndex, f.Detail)
			case f.EventID != 0:
				fmt.Fprintf(stdout, "  %-10s event %d: %s\n", f.Kind, f.EventID, f.Detail)
			default:
				fmt.Fprintf(stdout, "  %-10s %s\n", f.Kind, f.Detail)
			}
		}
		if int64(len(rep.Findings)) < rep.Problems {
			fmt.Fprintf(stdout, "  … and %d more\n", rep.Problems-int64(len(rep.Findings)))
		}
	}
	if problems > 0 {
		return fmt.Errorf("integrity check failed: %d problems", problems)
	}
	return nil
}
