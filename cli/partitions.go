package cli

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"auditdb/models"
)

func partitionsCmd(ctx context.Context, cfg config, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("usage: auditdb partitions list|ensure|drop-expired [--dry-run]")
	}
	fs := newFlags("partitions", stdout)
	dry := fs.Bool("dry-run", false, "with drop-expired: only show what would be dropped")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	db, err := openDB(ctx, cfg)
	if err != nil {
		return err
	}
	defer closeDB(db)
	parts := models.NewPartitionManager(db)
	now := time.Now()
	switch args[0] {
	case "list":
		list, err := parts.List(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "PARTITION\tFROM (UTC)\tTO (UTC)\tROWS (EST.)\tSIZE")
		for _, p := range list {
			rows := fmt.Sprint(p.Rows)
			if p.Rows < 0 {
				rows = "not analyzed"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", p.Name, p.From.Format("2006-01-02"), p.To.Format("2006-01-02"),
				rows, humanBytes(p.Bytes))
		}
		return tw.Flush()
	case "ensure":
		created, err := parts.Ensure(ctx, now)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "created %d partitions %v\n", len(created), created)
		return nil
	case "drop-expired":
		cutoff, err := parts.RetentionCutoff(ctx, now)
		if err != nil {
			return err
		}
		dropped, err := parts.DropExpired(ctx, now, *dry)
		verb := "dropped"
		if *dry {
			verb = "would drop"
		}
		for _, p := range dropped {
			fmt.Fprintf(stdout, "%s %s (%s to %s)\n", verb, p.Name, p.From.Format("2006-01-02"), p.To.Format("2006-01-02"))
		}
		fmt.Fprintf(stdout, "%s %d partitions wholly before %s (longest active retention)\n", verb, len(dropped),
			cutoff.Format("2006-01-02"))
		return err
	}
	return fmt.Errorf("unknown partitions command %q: use list, ensure or drop-expired", args[0])
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.0f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
