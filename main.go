// Command auditdb is a multi-tenant audit-event database with an admin console.
//
// Run `auditdb help` for the subcommands.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"auditdb/cli"
	"auditdb/models"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := cli.Run(ctx, os.Args[1:], os.Getenv, os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "auditdb:", models.MessageOfCLI(err))
		os.Exit(1)
	}
}
