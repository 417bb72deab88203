package store

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/outreach-dev/outreach/migrations"
)

// MigrationResult is one migration applied by Migrate.
type MigrationResult struct {
	Version int64
	Name    string
	Seconds float64
}

// Migrate applies the embedded migrations that the database at dsn lacks and
// returns those it applied (none when it is up to date). Concurrent callers
// are serialised by a Postgres advisory lock.
func Migrate(ctx context.Context, dsn string) ([]MigrationResult, error) {
	db, err := openSQL(dsn)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	p, err := newMigrator(db)
	if err != nil {
		return nil, err
	}
	results, err := p.Up(ctx)
	var out []MigrationResult
	for _, r := range results {
		if r.Error != nil || r.Empty {
			continue
		}
		out = append(out, MigrationResult{Version: r.Source.Version, Name: r.Source.Path, Seconds: r.Duration.Seconds()})
	}
	if err != nil {
		return out, fmt.Errorf("migrate: %w", err)
	}
	return out, nil
}

// SchemaVersion returns the version of the newest migration applied to the
// database, and the newest this binary knows.
func SchemaVersion(ctx context.Context, dsn string) (current, latest int64, err error) {
	db, err := openSQL(dsn)
	if err != nil {
		return 0, 0, err
	}
	defer db.Close()
	p, err := newMigrator(db)
	if err != nil {
		return 0, 0, err
	}
	current, err = p.GetDBVersion(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("schema version: %w", err)
	}
	srcs := p.ListSources()
	if len(srcs) > 0 {
		latest = srcs[len(srcs)-1].Version
	}
	return current, latest, nil
}

func newMigrator(db *sql.DB) (*goose.Provider, error) {
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return nil, err
	}
	return goose.NewProvider(goose.DialectPostgres, db, migrations.FS, goose.WithSessionLocker(locker))
}

func openSQL(dsn string) (*sql.DB, error) {
	cfg, err := parseConfig(dsn)
	if err != nil {
		return nil, err
	}
	return stdlib.OpenDB(*cfg.ConnConfig), nil
}
