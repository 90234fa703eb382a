package cli

import (
	"context"
	"fmt"
	"io"
	"time"

	"auditdb/models"
)

// searchSketchCmd is `auditdb search-sketch build [--org ID]`.
func searchSketchCmd(ctx context.Context, cfg config, args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] != "build" {
		return fmt.Errorf("usage: auditdb search-sketch build [--org ID]")
	}
	fs := newFlags("search-sketch build", stdout)
	org := fs.String("org", "", "only this organization")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("search-sketch build: unexpected argument %q (usage: auditdb search-sketch build [--org ID])", fs.Arg(0))
	}
	db, err := openDB(ctx, cfg)
	if err != nil {
		return err
	}
	defer closeDB(db)
	if err := requireOrg(ctx, db, fs, *org); err != nil {
		return err
	}
	res, err := models.NewSearchSketches(db, time.Now).Build(ctx, *org)
	fmt.Fprintf(stdout, "search sketches: %d organizations, %d days built, %d refreshed, %d events read, largest fill %.1f %%, %s\n",
		res.Orgs, res.Built, res.Refreshed, res.Events, 100*res.MaxFill, res.Took.Round(time.Millisecond))
	return err
}
