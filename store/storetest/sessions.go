package storetest

import (
	"context"
	"testing"
	"time"
)

// OpenTransaction begins a transaction on the test's database that holds
// a transaction id (as a write does) until the returned function ends it:
// the event stream's readers see no event of a later transaction
// meanwhile.
func OpenTransaction(t testing.TB, db DB) (end func()) {
	t.Helper()
	ctx := context.Background()
	tx, err := db.Begin(ctx)
	if err != nil {
		t.Fatalf("begin: %v", err)
	}
	if _, err := tx.Exec(ctx, `SELECT pg_current_xact_id()`); err != nil {
		_ = tx.Rollback(ctx)
		t.Fatalf("take a transaction id: %v", err)
	}
	return func() {
		if err := tx.Commit(ctx); err != nil {
			t.Errorf("commit: %v", err)
		}
	}
}

// TerminateListeners ends the backends of the test's database that
// listen on channel (their last statement was its LISTEN), as a lost
// connection would, and returns how many it ended.
func TerminateListeners(t testing.TB, db DB, channel string) int {
	t.Helper()
	var n int
	if err := db.QueryRow(context.Background(), `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid() AND query = 'LISTEN ' || $1`, channel).Scan(&n); err != nil {
		t.Fatalf("terminate listeners: %v", err)
	}
	return n
}

// Listeners returns how many backends of the test's database listen on
// channel (their last statement was its LISTEN).
func Listeners(t testing.TB, db DB, channel string) int {
	t.Helper()
	var n int
	if err := db.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity
		WHERE datname = current_database() AND query = 'LISTEN ' || $1`, channel).Scan(&n); err != nil {
		t.Fatalf("count listeners: %v", err)
	}
	return n
}

// WaitListeners waits until n backends of the test's database listen on
// channel, for up to a minute.
func WaitListeners(t testing.TB, db DB, channel string, n int) {
	t.Helper()
	for start := time.Now(); Listeners(t, db, channel) != n; time.Sleep(10 * time.Millisecond) {
		if time.Since(start) > time.Minute {
			t.Fatalf("%d listeners on %s after a minute, want %d", Listeners(t, db, channel), channel, n)
		}
	}
}
