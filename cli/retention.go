package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"sort"

	"auditdb/models"
)

// retentionCmd is `auditdb retention run [--org ID] [--dry-run]`.
func retentionCmd(ctx context.Context, cfg config, args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] != "run" {
		return fmt.Errorf("usage: auditdb retention run [--org ID] [--dry-run]")
	}
	fs := newFlags("retention run", stdout)
	org := fs.String("org", "", "only this organization")
	dry := fs.Bool("dry-run", false, "count what is due and change nothing")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("retention run: unexpected argument %q (usage: auditdb retention run [--org ID] [--dry-run])", fs.Arg(0))
	}
	tuneGC(os.Getenv) // the collector as serve runs the daily job
	db, err := openDB(ctx, cfg)
	if err != nil {
		return err
	}
	defer closeDB(db)
	if err := requireOrg(ctx, db, fs, *org); err != nil {
		return err
	}
	sealer, _, err := integrityKeys(cfg)
	if err != nil {
		return err
	}
	parts := models.NewPartitionManager(db)
	engine := models.NewRetentionEngine(db, models.NewAuditTrail(db, sealer, parts), parts)
	res, err := engine.Run(ctx, models.RetentionOptions{Org: *org, DryRun: *dry})
	if models.IsRetentionRunning(err) {
		return fmt.Errorf("retention: another retention run holds the lock; nothing was done, try again when it has finished")
	}
	if res != nil {
		printRetention(stdout, res)
	}
	return err
}

func printRetention(w io.Writer, res *models.RetentionResult) {
	verb := "run"
	if res.DryRun {
		verb = "dry run (nothing changed)"
	}
	fmt.Fprintf(w, "retention %s %d: archived %d events into %d archives, deleted %d (%d of them from archives), %d kept by legal holds\n",
		verb, res.RunID, res.Archived, res.Archives, res.Deleted, res.DeletedArchived, res.KeptByHolds)
	orgs := make([]string, 0, len(res.Orgs))
	for o, r := range res.Orgs {
		if r.Archived+r.Deleted+r.KeptByHolds > 0 {
			orgs = append(orgs, o)
		}
	}
	sort.Strings(orgs)
	for _, o := range orgs {
		r := res.Orgs[o]
		fmt.Fprintf(w, "  %s: archived %d, deleted %d, kept by holds %d\n", o, r.Archived, r.Deleted, r.KeptByHolds)
	}
	for _, p := range res.DroppedPartitions {
		fmt.Fprintf(w, "  dropped the emptied partition %s\n", p)
	}
}
