package main

import (
	"context"
	"fmt"

	"github.com/outreach-dev/outreach/store"
)

func runMigrate(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "migrate", "migrate\n\nApplies the embedded SQL migrations to DATABASE_URL. Running it again applies nothing.")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	applied, err := store.Migrate(ctx, env.DatabaseURL)
	for _, m := range applied {
		fmt.Fprintf(env.Stdout, "applied %s (%.2fs)\n", m.Name, m.Seconds)
	}
	if err != nil {
		return err
	}
	cur, _, err := store.SchemaVersion(ctx, env.DatabaseURL)
	if err != nil {
		return err
	}
	if len(applied) == 0 {
		fmt.Fprintf(env.Stdout, "database is up to date (version %d)\n", cur)
	} else {
		fmt.Fprintf(env.Stdout, "database migrated to version %d\n", cur)
	}
	return nil
}
