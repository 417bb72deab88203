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
