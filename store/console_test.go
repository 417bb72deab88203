package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/outreach-dev/outreach/store"
)

// TestConsoleAccountWindowsCountTheLedger checks that the console counts
// each window the account runs under, its own and its provider's
// defaults, from the ledger rows of that window's action.
func TestConsoleAccountWindowsCountTheLedger(t *testing.T) {
	t.Parallel()
	f := setupAccount(t, store.NewAccount{Limits: []store.Limit{{Action: store.ActionInvite, Max: 25, Per: 24 * time.Hour}}})
	ctx := context.Background()
	now := time.Now()
	if _, err := f.db.Exec(ctx, `INSERT INTO sends (account_id, action, reserved_at, window_at, outcome)
		SELECT $1, a, $2::timestamptz - interval '1 minute', $2::timestamptz - interval '1 minute', 'sent'
		FROM unnest(ARRAY['invite', 'lookup', 'lookup', 'lookup']) a`, f.account, now); err != nil {
		t.Fatal(err)
	}
	ca, err := f.st.ConsoleAccount(ctx, f.account, now)
	if err != nil {
		t.Fatal(err)
	}
	want := map[store.Action]int{store.ActionInvite: 1, store.ActionLookup: 3}
	seen := map[store.Action]bool{}
	for _, w := range ca.Windows {
		seen[w.Action] = true
		if w.Used != want[w.Action] {
			t.Errorf("window %s %d per %s: %d used, want %d (the ledger's %s rows)", w.Action, w.Max, w.Per, w.Used, want[w.Action], w.Action)
		}
	}
	if !seen[store.ActionLookup] {
		t.Errorf("windows %+v: want the provider's default lookup window too", ca.Windows)
	}
}

// TestConsoleAccountWindowsSayWhenTheyFree: a full window has room again
// when its Max-th newest call leaves it; one that calls still out fill has
// no known time (Held); a window with room has neither.
func TestConsoleAccountWindowsSayWhenTheyFree(t *testing.T) {
	t.Parallel()
	f := setupAccount(t, store.NewAccount{Limits: []store.Limit{
		{Action: store.ActionInvite, Max: 3, Per: time.Hour},
		{Action: store.ActionInvite, Max: 10, Per: 24 * time.Hour},
		{Action: store.ActionLookup, Max: 2, Per: time.Hour},
	}})
	ctx := context.Background()
	now := time.Now().Truncate(time.Millisecond)
	// Four invitations answered 50, 40, 30 and 20 minutes ago, and an old
	// one outside the hour; two lookups still out and one answered.
	if _, err := f.db.Exec(ctx, `INSERT INTO sends (account_id, action, reserved_at, window_at, outcome)
		SELECT $1::bigint, 'invite', $2::timestamptz - m * interval '1 minute', $2::timestamptz - m * interval '1 minute', 'sent'
		FROM unnest(ARRAY[50, 40, 30, 20, 90]) m
		UNION ALL SELECT $1::bigint, 'lookup', $2::timestamptz - interval '1 minute', $2::timestamptz - interval '1 minute', 'resolved'`,
		f.account, now); err != nil {
		t.Fatal(err)
	}
	if _, err := f.db.Exec(ctx, `INSERT INTO sends (account_id, action, reserved_at)
		SELECT $1, 'lookup', $2::timestamptz - interval '5 seconds' FROM generate_series(1, 2)`, f.account, now); err != nil {
		t.Fatal(err)
	}
	ca, err := f.st.ConsoleAccount(ctx, f.account, now)
	if err != nil {
		t.Fatal(err)
	}
	type want struct {
		used    int
		freesAt time.Time
		held    bool
	}
	wants := map[store.Limit]want{
		// The third newest (40 minutes ago) leaves the hour in 20 minutes.
		{Action: store.ActionInvite, Max: 3, Per: time.Hour}:       {used: 4, freesAt: now.Add(20 * time.Minute)},
		{Action: store.ActionInvite, Max: 10, Per: 24 * time.Hour}: {used: 5},
		{Action: store.ActionLookup, Max: 2, Per: time.Hour}:       {used: 3, held: true},
	}
	seen := 0
	for _, w := range ca.Windows {
		wt, ok := wants[w.Limit]
		if !ok {
			continue
		}
		seen++
		if w.Used != wt.used || !w.FreesAt.Equal(wt.freesAt) || w.Held != wt.held {
			t.Errorf("window %s %d per %s: used %d, frees at %v, held %v; want %d, %v, %v",
				w.Action, w.Max, w.Per, w.Used, w.FreesAt, w.Held, wt.used, wt.freesAt, wt.held)
		}
	}
	if seen != len(wants) {
		t.Errorf("windows %+v: want each of %d limits", ca.Windows, len(wants))
	}
}
