// Package storetest holds the SQL that the tests of other packages use to
// set up rows and to check what the system wrote: fixture writes that no
// production path makes (a ledger row of a worker that died, a target
// already sent, a trigger bypassed) and invariant reads (how many targets
// ended, which calls the ledger holds, what a target waits for).
//
// Each function names one fact of the domain. The reads are the tests'
// oracle: they read the tables directly and never call the store code
// they check. Functions take the test, fail it on error, and work on the
// test's own pool on its database (testenv.DB): the store exports no pool.
//
// The rule that keeps SQL in one place (no SQL outside store and
// migrations, see TestNoSQLOutsideStore) applies to tests too; the SQL of
// tests lives here.
package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// DB is a test's own pool on its database (testenv.DB).
type DB = *pgxpool.Pool

// exec runs a fixture write, failing the test on error.
func exec(t testing.TB, db DB, what, sql string, args ...any) {
	t.Helper()
	if _, err := db.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// one reads one row into dest, failing the test on error (no row too).
func one(t testing.TB, db DB, what, sql string, args []any, dest ...any) {
	t.Helper()
	if err := db.QueryRow(context.Background(), sql, args...).Scan(dest...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// count reads one count.
func count(t testing.TB, db DB, what, sql string, args ...any) int {
	t.Helper()
	var n int
	one(t, db, what, sql, args, &n)
	return n
}

// id reads one id.
func id(t testing.TB, db DB, what, sql string, args ...any) int64 {
	t.Helper()
	var n int64
	one(t, db, what, sql, args, &n)
	return n
}

// rows collects the rows of a query with scan, failing the test on error.
func rows[T any](t testing.TB, db DB, what, sql string, args []any, scan func(pgx.Rows) (T, error)) []T {
	t.Helper()
	rs, err := db.Query(context.Background(), sql, args...)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	defer rs.Close()
	var out []T
	for rs.Next() {
		v, err := scan(rs)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		out = append(out, v)
	}
	if err := rs.Err(); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return out
}

// interval renders d as a Postgres interval expression's argument: whole
// days as days (so that '1 day' stays a day), else seconds. Use it as
// make_interval(days => $n, secs => $m) with both values.
func interval(d time.Duration) (days int, secs float64) {
	if d > 0 && d%(24*time.Hour) == 0 {
		return int(d / (24 * time.Hour)), 0
	}
	return 0, d.Seconds()
}
