package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/outreach-dev/outreach/store"
)

// The scheduler's own housekeeping must not wake it: an UPDATE that
// changes no row notifies nobody, while a real change does.
func TestNotifyOnlyOnChange(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	next := listenWake(t, f)
	if _, err := f.st.ResumeExpiredPauses(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	if n := next(quiet); n != nil {
		t.Errorf("an UPDATE of no row notified %q", n.Payload)
	}
	if err := f.st.PauseAccount(ctx, f.account, time.Now().Add(time.Hour), "test"); err != nil {
		t.Fatal(err)
	}
	if n := next(expected); n == nil || n.Payload != "accounts" {
		t.Errorf("pausing an account notified %v, want accounts", n)
	}
	if _, err := f.st.AddTargets(ctx, f.campaign, []store.NewTarget{{Identifier: "x"}}); err != nil {
		t.Fatal(err)
	}
	if n := next(expected); n == nil || n.Payload != "targets" {
		t.Errorf("adding a target notified %v, want targets", n)
	}
}

// How long a test waits for a notification it expects (a busy machine can
// take seconds to deliver one), and for one it does not.
const (
	expected = 10 * time.Second
	quiet    = 300 * time.Millisecond
)

// listenWake listens on the wake channel on a connection of the test's own
// and returns what gives the next notification (nil when none comes
// within the wait given); the fixture's own notifications are drained
// first.
func listenWake(t *testing.T, f fixture) func(within time.Duration) *pgconn.Notification {
	t.Helper()
	ctx := context.Background()
	conn, err := f.db.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(conn.Release)
	if _, err := conn.Exec(ctx, "LISTEN "+store.WakeChannel); err != nil {
		t.Fatal(err)
	}
	next := func(within time.Duration) *pgconn.Notification {
		wctx, cancel := context.WithTimeout(ctx, within)
		defer cancel()
		n, err := conn.Conn().WaitForNotification(wctx)
		if err != nil {
			return nil
		}
		return n
	}
	for next(quiet) != nil { // drain the fixture's own
	}
	return next
}
