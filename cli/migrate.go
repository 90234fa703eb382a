package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"auditdb/migrations"
	"auditdb/models"
	"auditdb/models/demo"
)

func migrateCmd(ctx context.Context, cfg config, args []string, stdout io.Writer) error {
	db, err := models.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer closeDB(db)
	if len(args) > 0 && args[0] == "down" {
		if err := migrations.Down(ctx, db); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "rolled back the last migration")
		return nil
	}
	if len(args) > 0 {
		return fmt.Errorf("migrate takes no argument but `down`")
	}
	if err := migrations.Up(ctx, db); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "migrated to", migrations.Latest())
	return nil
}

func seedCmd(ctx context.Context, cfg config, args []string, stdout io.Writer) error {
	fs := newFlags("seed", stdout)
	withDemo := fs.Bool("demo", false, "add demo organizations, users and events")
	events := fs.Int("events", 50_000, "number of demo events")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *events < 0 || *events > 50_000_000 {
		return models.Invalid("--events", "must be between 0 and 50000000")
	}
	db, parts, err := openReady(ctx, cfg)
	if err != nil {
		return err
	}
	defer closeDB(db)
	fmt.Fprintln(stdout, "seeded retention policies, default roles and presets")
	if !*withDemo {
		return nil
	}
	key, err := cfg.signingKey()
	if err != nil {
		return err
	}
	sealer, err := models.NewSealer(key)
	if err != nil {
		return err
	}
	start := time.Now()
	res, err := demo.Seed(ctx, db, sealer, parts, demo.Options{Events: *events, Now: time.Now()})
	if err != nil {
		return err
	}
	if len(res.Credentials) > 0 {
		fmt.Fprintln(stdout, "demo users (passwords are shown only this once):")
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  ORGANIZATION\tROLE\tEMAIL\tPASSWORD")
		for _, c := range res.Credentials {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", credentialOrg(c), c.Role, c.Email, c.Password)
		}
		tw.Flush()
		path, err := saveDemoCredentials(cfg.DataDir, res.Credentials)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "(also saved, readable only by you, in %s)\n", path)
	} else {
		fmt.Fprintf(stdout, "demo users already exist; their passwords were saved in %s when they were created\n",
			filepath.Join(cfg.DataDir, demoCredentialsFile))
	}
	if res.Skipped != "" {
		fmt.Fprintln(stdout, res.Skipped)
	} else {
		fmt.Fprintf(stdout, "wrote %d demo events in %s\n", res.EventsWritten, time.Since(start).Round(time.Millisecond))
	}
	return nil
}

const demoCredentialsFile = "demo-credentials.txt"

// saveDemoCredentials appends the demo users' passwords to a 0600 file in the data
// directory, so a developer who missed the printout can still sign in.
func saveDemoCredentials(dir string, creds []demo.Credential) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("create data dir: %w", err)
	}
	path := filepath.Join(dir, demoCredentialsFile)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return "", fmt.Errorf("save demo credentials: %w", err)
	}
	defer f.Close()
	var b strings.Builder
	for _, c := range creds {
		fmt.Fprintf(&b, "%s\t%s\t%s\t%s\n", credentialOrg(c), c.Role, c.Email, c.Password)
	}
	if _, err := f.WriteString(b.String()); err != nil {
		return "", fmt.Errorf("save demo credentials: %w", err)
	}
	return path, nil
}

// credentialOrg is the organization column of a demo credential: the superadmin's is every
// organization.
func credentialOrg(c demo.Credential) string {
	if c.OrgID == "" {
		return "(all)"
	}
	return c.OrgID
}
