package main

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// explainDBError turns the Postgres errors a newcomer meets first into
// what to do about them: a database that does not exist (create it with
// createdb) and a schema that is missing or older than the binary (run
// outreach migrate). Other errors are returned as they are.
func explainDBError(cmd string, err error, databaseURL string) error {
	var pgErr *pgconn.PgError
	if err == nil || !errors.As(err, &pgErr) {
		return err
	}
	switch pgErr.Code {
	case "3D000": // invalid_catalog_name: no such database
		cfg, perr := pgconn.ParseConfig(databaseURL)
		if perr != nil {
			return err
		}
		create := "createdb"
		if cfg.Host != "" {
			create += " -h " + shellWord(cfg.Host)
		}
		if cfg.Port != 0 {
			create += fmt.Sprintf(" -p %d", cfg.Port)
		}
		if cfg.User != "" {
			create += " -U " + shellWord(cfg.User)
		}
		create += " " + shellWord(cfg.Database)
		return hintError{err: err, msg: fmt.Sprintf("database %q does not exist on %s:%d (DATABASE_URL): create it with `%s`, then run `outreach migrate`",
			cfg.Database, cfg.Host, cfg.Port, create)}
	case "42P01", "42703": // undefined_table, undefined_column
		if cmd == "migrate" {
			return err
		}
		return fmt.Errorf("the database has no outreach schema, or an older one than this binary (%w): run `outreach migrate` first", err)
	}
	return err
}

// hintError replaces an error's text with what to do about it.
type hintError struct {
	msg string
	err error
}

func (e hintError) Error() string { return e.msg }
func (e hintError) Unwrap() error { return e.err }

var plainWord = regexp.MustCompile(`^[A-Za-z0-9_./@:-]+$`)

// shellWord quotes s for a POSIX shell when it needs quoting.
func shellWord(s string) string {
	if plainWord.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
