package cli

import (
	"context"
	"fmt"
	"io"

	"auditdb/models"
	"auditdb/models/session"
)

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
	if len(args) > 0 && args[0] == "reset-password" {
		return resetPasswordCmd(ctx, cfg, args[1:], stdout)
	}
	if len(args) == 0 || args[0] != "create" {
		return fmt.Errorf("usage: auditdb user create --email E --password P (--org ID --role NAME | --superadmin) | user revoke-sessions --email E | user reset-password --email E")
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
	n, err := session.NewStore(db, nil).RevokeUser(ctx, u.ID)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "revoked %d live sessions of %s\n", n, u.Email)
	return nil
}

// resetPasswordCmd gives a user a new one-time password (printed once), ends their sessions
// and makes the account theirs again if an inviter had created it.
func resetPasswordCmd(ctx context.Context, cfg config, args []string, stdout io.Writer) error {
	fs := newFlags("user reset-password", stdout)
	email := fs.String("email", "", "the user's email")
	if err := fs.Parse(args); err != nil {
		return err
	}
	db, err := openDB(ctx, cfg)
	if err != nil {
		return err
	}
	defer closeDB(db)
	users := models.NewUserStore(db)
	u, err := users.GetByEmail(ctx, *email)
	if err != nil {
		return err
	}
	password, err := users.ResetPassword(ctx, u.ID)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "new one-time password of %s (shown once; to be changed at the next sign-in): %s\n", u.Email, password)
	return nil
}
