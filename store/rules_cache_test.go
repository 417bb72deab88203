package store_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/outreach-dev/outreach/store"
)

// TestAccountsWithWorkRulesCache checks the mechanism of the scheduler's
// cache of limits and gaps: unused while its owner does not listen; used
// while it does (a change nobody announced to it stays unseen), until
// Invalidate or the TTL; and a change of the accounts row the views read
// (the invitation gap) seen at once, notification or not.
func TestAccountsWithWorkRulesCache(t *testing.T) {
	t.Parallel()
	two := store.Limit{Action: store.ActionInvite, Max: 2, Per: time.Second}
	five := store.Limit{Action: store.ActionInvite, Max: 5, Per: time.Second}
	seven := store.Limit{Action: store.ActionInvite, Max: 7, Per: time.Second}
	f := setup(t, two)
	ctx := context.Background()
	if _, err := f.st.AddTargets(ctx, f.campaign, []store.NewTarget{{Identifier: "ACoAAmember1"}}); err != nil {
		t.Fatal(err)
	}
	const ttl = time.Minute
	cache := store.NewRulesCache(ttl)
	now := time.Now()
	read := func(at time.Time) *store.Account {
		t.Helper()
		work, err := f.st.AccountsWithWork(ctx, at, at.Add(time.Minute), cache)
		if err != nil || len(work) != 1 {
			t.Fatalf("AccountsWithWork = %d accounts, %v; want 1", len(work), err)
		}
		return work[0].Account
	}
	limits := func(a *store.Account) []store.Limit { return a.LimitsFor(store.ActionInvite) }
	setLimit := func(l store.Limit) {
		t.Helper()
		if err := f.st.SetLimits(ctx, f.account, []store.Limit{l}); err != nil {
			t.Fatal(err)
		}
	}

	// Not listening: every read sees the views.
	read(now)
	setLimit(five)
	if got := limits(read(now)); !slices.Equal(got, []store.Limit{five}) {
		t.Errorf("not listening: limits %v after a change, want %v", got, five)
	}
	if n := cache.Len(); n != 0 {
		t.Errorf("not listening: the cache holds %d accounts, want 0", n)
	}

	// Listening: the first read fills the cache, the next use it.
	cache.Listening(true)
	read(now)
	if n := cache.Len(); n != 1 {
		t.Errorf("listening: the cache holds %d accounts after a read, want 1", n)
	}
	setLimit(seven) // a notification the test does not pass on
	if got := limits(read(now.Add(time.Second))); !slices.Equal(got, []store.Limit{five}) {
		t.Errorf("cached: limits %v, want the cached %v", got, five)
	}
	// The accounts row is read each time: a new invitation gap (its
	// columns) is seen at once.
	if err := f.st.SetGaps(ctx, f.account, []store.Gap{{Action: store.ActionInvite, Min: 10 * time.Second}}); err != nil {
		t.Fatal(err)
	}
	a := read(now.Add(time.Second))
	if g := a.Pace(store.ActionInvite).Gap; g.Min != 10*time.Second || g.Source != store.SourceCustom {
		t.Errorf("gap after a change of the accounts row: %+v, want 10s custom", g)
	}
	if got := limits(a); !slices.Equal(got, []store.Limit{seven}) {
		t.Errorf("limits read again with the changed row: %v, want %v", got, seven)
	}

	setLimit(two)
	cache.Invalidate()
	if got := limits(read(now.Add(time.Second))); !slices.Equal(got, []store.Limit{two}) {
		t.Errorf("after Invalidate: limits %v, want %v", got, two)
	}
	setLimit(five)
	if got := limits(read(now.Add(ttl - time.Millisecond))); !slices.Equal(got, []store.Limit{two}) {
		t.Errorf("inside the TTL: limits %v, want the cached %v", got, two)
	}
	if got := limits(read(now.Add(2 * ttl))); !slices.Equal(got, []store.Limit{five}) {
		t.Errorf("after the TTL: limits %v, want %v", got, five)
	}

	// Listening again (a new connection) starts empty.
	setLimit(seven)
	cache.Listening(true)
	if got := limits(read(now.Add(2 * ttl))); !slices.Equal(got, []store.Limit{seven}) {
		t.Errorf("after listening anew: limits %v, want %v", got, seven)
	}
}

// TestRulesChangesNotify checks that every change the scheduler's cache of
// limits and gaps depends on (store.RulesCache) is announced on the wake
// channel with a payload that empties it (anything but "targets" and
// "resolved"), so that the scheduler never plans on old rules for longer
// than a tick.
func TestRulesChangesNotify(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	next := listenWake(t, f)
	exec := func(sql string, args ...any) func() error {
		return func() error { _, err := f.db.Exec(ctx, sql, args...); return err }
	}
	for _, c := range []struct {
		name   string
		change func() error
	}{
		{"account limits", func() error {
			return f.st.SetLimits(ctx, f.account, []store.Limit{{Action: store.ActionInvite, Max: 3, Per: time.Hour}})
		}},
		{"account's own gap of an action", func() error {
			return f.st.SetGaps(ctx, f.account, []store.Gap{{Action: store.ActionLookup, Min: time.Minute}})
		}},
		{"account's invitation gap", func() error {
			return f.st.SetGaps(ctx, f.account, []store.Gap{{Action: store.ActionInvite, Min: time.Minute}})
		}},
		{"account's pacing mode", func() error { return f.st.SetPacing(ctx, f.account, store.PacingDefault) }},
		{"provider limits", exec(`UPDATE provider_limits SET max_count = max_count + 1 WHERE provider = 'unipile'`)},
		{"provider pacing", exec(`UPDATE provider_pacing SET min_gap = min_gap + interval '1 second' WHERE provider = 'unipile'`)},
		{"a warm-up ramp", exec(`INSERT INTO account_warmups (account_id, start_count, step_count) VALUES ($1, 5, 5)`, f.account)},
		{"a warm-up ramp's stage", exec(`UPDATE account_warmups SET stage = stage + 1 WHERE account_id = $1`, f.account)},
		{"account status", func() error { return f.st.PauseAccount(ctx, f.account, time.Now().Add(time.Hour), "test") }},
	} {
		if err := c.change(); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		n := next(expected)
		if n == nil || n.Payload == "targets" || n.Payload == "resolved" {
			t.Errorf("a change of %s notified %v; want a payload that empties the cache", c.name, n)
		}
		for next(quiet) != nil {
		}
	}
}
