package main

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/outreach-dev/outreach/store"
)

// openBackends connects to Postgres (with a pool of poolSize unless
// DATABASE_URL says) and Redis, after checking the schema is migrated.
func openBackends(ctx context.Context, env *Env, poolSize int) (*store.Store, redis.UniversalClient, func(), error) {
	st, err := env.OpenStore(ctx, store.PoolSize(poolSize))
	if err != nil {
		return nil, nil, nil, err
	}
	if err := checkSchema(ctx, env); err != nil {
		st.Close()
		return nil, nil, nil, err
	}
	rdb, err := env.OpenRedis(ctx)
	if err != nil {
		st.Close()
		return nil, nil, nil, err
	}
	return st, rdb, func() { rdb.Close(); st.Close() }, nil
}

// checkSchema refuses to run against a database that is not migrated.
func checkSchema(ctx context.Context, env *Env) error {
	cur, latest, err := store.SchemaVersion(ctx, env.DatabaseURL)
	if err != nil {
		return err
	}
	if cur < latest {
		return fmt.Errorf("database schema is at version %d, this binary needs %d: run `outreach migrate` first", cur, latest)
	}
	return nil
}
