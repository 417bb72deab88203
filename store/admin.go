package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Admin helpers: statements run through a server's maintenance database
// (adminDSN, e.g. postgres://…/postgres), not inside an outreach database.
// Tests (internal/testenv) use them to give each test a database of its
// own copied from a migrated template. Names are identifiers, quoted here.

// CreateDatabase creates the database name; with template non-empty, as
// a copy of that database (CREATE DATABASE … TEMPLATE), which must have
// no sessions (see CloseDatabase).
func CreateDatabase(ctx context.Context, adminDSN, name, template string) error {
	sql := "CREATE DATABASE " + pgx.Identifier{name}.Sanitize()
	if template != "" {
		sql += " TEMPLATE " + pgx.Identifier{template}.Sanitize()
	}
	return adminExec(ctx, adminDSN, "create database "+name, func(c *pgx.Conn) error {
		_, err := c.Exec(ctx, sql)
		return err
	})
}

// CloseDatabase refuses new sessions on the database name and ends the
// ones it has, so that it can serve as a template.
func CloseDatabase(ctx context.Context, adminDSN, name string) error {
	return adminExec(ctx, adminDSN, "close database "+name, func(c *pgx.Conn) error {
		if _, err := c.Exec(ctx, "ALTER DATABASE "+pgx.Identifier{name}.Sanitize()+" WITH ALLOW_CONNECTIONS false"); err != nil {
			return err
		}
		_, err := c.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name)
		return err
	})
}

// DropDatabase drops the database name if it exists, ending its sessions.
func DropDatabase(ctx context.Context, adminDSN, name string) error {
	return adminExec(ctx, adminDSN, "drop database "+name, func(c *pgx.Conn) error {
		_, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
		return err
	})
}

// adminExec runs f on a connection of its own to adminDSN.
func adminExec(ctx context.Context, adminDSN, op string, f func(*pgx.Conn) error) error {
	conn, err := pgx.Connect(ctx, adminDSN)
	if err != nil {
		return fmt.Errorf("%s: connect: %w", op, err)
	}
	defer conn.Close(ctx)
	if err := f(conn); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return nil
}

// Databases returns the names of the server's databases that start with
// prefix, in order.
func Databases(ctx context.Context, adminDSN, prefix string) ([]string, error) {
	var names []string
	err := adminExec(ctx, adminDSN, "list databases", func(c *pgx.Conn) error {
		rows, err := c.Query(ctx, `SELECT datname FROM pg_database WHERE starts_with(datname, $1) ORDER BY 1`, prefix)
		if err != nil {
			return err
		}
		names, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	return names, err
}

// Tables returns the names of the tables in the public schema of the
// database at dsn, in order (none in a database made by createdb).
func Tables(ctx context.Context, dsn string) ([]string, error) {
	var names []string
	err := adminExec(ctx, dsn, "list tables", func(c *pgx.Conn) error {
		rows, err := c.Query(ctx, `SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' ORDER BY 1`)
		if err != nil {
			return err
		}
		names, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	return names, err
}
