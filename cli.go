package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"auditdb/migrations"
	"auditdb/models"
)

func newFlags(name string, stdout io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stdout)
	return fs
}

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
	demo := fs.Bool("demo", false, "add demo organizations, users and events")
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
	if !*demo {
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
	res, err := models.SeedDemo(ctx, db, sealer, parts, models.DemoOptions{Events: *events, Now: time.Now()})
	if err != nil {
		return err
	}
	if len(res.Credentials) > 0 {
		fmt.Fprintln(stdout, "demo users (passwords are shown only this once):")
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  ORGANIZATION\tROLE\tEMAIL\tPASSWORD")
		for _, c := range res.Credentials {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", c.OrgID, c.Role, c.Email, c.Password)
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

func orgCmd(ctx context.Context, cfg config, args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] != "create" {
		return fmt.Errorf("usage: auditdb org create --id ID --name NAME")
	}
	fs := newFlags("org create", stdout)
	id := fs.String("id", "", "organization id (lower-case letters, digits, - and _)")
	name := fs.String("name", "", "display name")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	db, _, err := openReady(ctx, cfg)
	if err != nil {
		return err
	}
	defer closeDB(db)
	org, err := models.NewOrgStore(db).Create(ctx, *id, *name)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "created organization %s (%s)\n", org.ID, org.Name)
	return nil
}

func userCmd(ctx context.Context, cfg config, args []string, stdout io.Writer) error {
	if len(args) > 0 && args[0] == "revoke-sessions" {
		return revokeSessionsCmd(ctx, cfg, args[1:], stdout)
	}
	if len(args) == 0 || args[0] != "create" {
		return fmt.Errorf("usage: auditdb user create --email E --password P (--org ID --role NAME | --superadmin) | user revoke-sessions --email E")
	}
	fs := newFlags("user create", stdout)
	email := fs.String("email", "", "email address")
	password := fs.String("password", "", "password (at least 12 characters)")
	org := fs.String("org", "", "organization id")
	role := fs.String("role", "", "role in the organization, e.g. org:admin")
	super := fs.Bool("superadmin", false, "may do everything in every organization")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	switch {
	case *super && *org != "":
		return models.Invalid("--superadmin", "give either --org and --role, or --superadmin, not both")
	case !*super && *org == "":
		return models.Invalid("--org", "give --org and --role, or --superadmin")
	case *org != "" && *role == "":
		return models.Invalid("--role", "is required with --org")
	}
	db, _, err := openReady(ctx, cfg)
	if err != nil {
		return err
	}
	defer closeDB(db)
	u, err := models.NewUserStore(db).Create(ctx, models.NewUser{Email: *email, Password: *password,
		Superadmin: *super, OrgID: *org, Role: *role})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "created user %d (%s)\n", u.ID, u.Email)
	return nil
}

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

const demoCredentialsFile = "demo-credentials.txt"

// saveDemoCredentials appends the demo users' passwords to a 0600 file in the data
// directory, so a developer who missed the printout can still sign in.
func saveDemoCredentials(dir string, creds []models.DemoCredential) (string, error) {
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
		fmt.Fprintf(&b, "%s\t%s\t%s\t%s\n", c.OrgID, c.Role, c.Email, c.Password)
	}
	if _, err := f.WriteString(b.String()); err != nil {
		return "", fmt.Errorf("save demo credentials: %w", err)
	}
	return path, nil
}

// revokeSessionsCmd signs a user out everywhere at once.
func revokeSessionsCmd(ctx context.Context, cfg config, args []string, stdout io.Writer) error {
	fs := newFlags("user revoke-sessions", stdout)
	email := fs.String("email", "", "the user's email")
	if err := fs.Parse(args); err != nil {
		return err
	}
	db, err := openDB(ctx, cfg)
	if err != nil {
		return err
	}
	defer closeDB(db)
	u, err := models.NewUserStore(db).GetByEmail(ctx, *email)
	if err != nil {
		return err
	}
	n, err := models.NewSessionStore(db, nil).RevokeUser(ctx, u.ID)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "revoked %d live sessions of %s\n", n, u.Email)
	return nil
}

func apikeyCmd(ctx context.Context, cfg config, args []string, stdout io.Writer) error {
	const usage = "usage: auditdb apikey create --org ID --name N [--scope ingest|read] | list --org ID | revoke --org ID --id N"
	if len(args) == 0 {
		return fmt.Errorf(usage)
	}
	fs := newFlags("apikey "+args[0], stdout)
	org := fs.String("org", "", "organization id")
	name := fs.String("name", "", "what the key is for, e.g. the service that uses it")
	scope := fs.String("scope", models.ScopeIngest, "ingest (post events) or read (read, verify, prove)")
	id := fs.Int64("id", 0, "key id (see apikey list)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *org == "" {
		return models.Invalid("--org", "is required")
	}
	db, err := openDB(ctx, cfg)
	if err != nil {
		return err
	}
	defer closeDB(db)
	sealer, _, err := integrityKeys(cfg)
	if err != nil {
		return err
	}
	trail := models.NewAuditTrail(db, sealer, models.NewPartitionManager(db))
	keys := models.NewAPIKeyStore(db, trail)
	by := models.SystemActor("cli")
	switch args[0] {
	case "create":
		raw, k, err := keys.Create(ctx, *org, *name, *scope, by)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "created %s key %d (%s) for %s; it is shown only this once:\n%s\n", k.Scope, k.ID, k.Name, k.OrganizationID, raw)
		return nil
	case "list":
		list, err := keys.List(ctx, *org)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tPREFIX\tSCOPE\tCREATED\tLAST USED\tREVOKED")
		for _, k := range list {
			fmt.Fprintf(tw, "%d\t%s\t%s…\t%s\t%s\t%s\t%s\n", k.ID, k.Name, k.Prefix, k.Scope, k.CreatedAt.UTC().Format(time.RFC3339),
				timeOr(k.LastUsedAt, "never"), timeOr(k.RevokedAt, "-"))
		}
		return tw.Flush()
	case "revoke":
		// Other instances hear of it over Redis; without Redis they never cache keys.
		rdb, err := openRedis(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			return err
		}
		defer rdb.Close()
		if err := models.NewAPIKeyStore(db, trail).Revoke(ctx, *org, *id, by); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "revoked key %d of %s\n", *id, *org)
		return nil
	}
	return fmt.Errorf(usage)
}

func timeOr(t *time.Time, none string) string {
	if t == nil {
		return none
	}
	return t.UTC().Format(time.RFC3339)
}

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
	checker := models.NewIntegrity(db, sealer, models.NewMerkleLog(db, ck))
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
