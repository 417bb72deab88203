package storetest

import (
	"context"
	"testing"
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
