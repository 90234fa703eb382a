package cli

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"auditdb/models"
)

func apikeyCmd(ctx context.Context, cfg config, args []string, stdout io.Writer) error {
	const usage = "usage: auditdb apikey create --org ID --name N [--scope ingest|read|gdpr] | list --org ID | revoke --org ID --id N"
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
		// The database announces the revocation to every running instance.
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
