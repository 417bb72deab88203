package testenv

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// quietTemplate turns off, in the template database, the ramps that new
// accounts of some providers start on (docs/warmup.md): the tests insert
// accounts and expect the limits they set, in full. A test of warm-ups
// turns them on again with UPDATE provider_warmup SET new_accounts = true.
func quietTemplate(ctx context.Context, dsn string) error {
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return fmt.Errorf("connect to template database: %w", err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, `UPDATE provider_warmup SET new_accounts = false`); err != nil {
		return fmt.Errorf("turn off default warm-ups in the template database: %w", err)
	}
	return nil
}
