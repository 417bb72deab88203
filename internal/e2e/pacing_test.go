package e2e

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/outreach-dev/outreach/store"
)

// TestPacingHoldsAtTheProvider drives one LinkedIn account with a generous
// lookup limit through a few hundred new targets (each needs a profile
// lookup, then an invitation), with its gaps compressed from minutes to
// tens of milliseconds, two workers and a scheduler, and disturbs it on
// the way: a pause that ends with a backlog due, a Redis flush (every
// queued target re-enqueued at once), a raised limit. From the simulator's
// record of what reached the provider: no two lookups and no two
// invitations of the account came closer than their minimum gap, and no
// rolling window held more calls than its limit.
func TestPacingHoldsAtTheProvider(t *testing.T) {
	t.Parallel()
	const n = 250
	lookupGap := store.Gap{Action: store.ActionLookup, Min: 30 * time.Millisecond, Jitter: 20 * time.Millisecond}
	inviteGap := store.Gap{Action: store.ActionInvite, Min: 40 * time.Millisecond, Jitter: 20 * time.Millisecond}
	lookupLimit := store.Limit{Action: store.ActionLookup, Max: 1000, Per: time.Minute}
	inviteLimit := store.Limit{Action: store.ActionInvite, Max: 20, Per: 2 * time.Second}
	raised := store.Limit{Action: store.ActionInvite, Max: 30, Per: 2 * time.Second}

	h := newHarness(t, options{})
	li := h.account(accountSpec{name: "li", pacing: store.PacingDefault, minGap: inviteGap.Min, jitter: inviteGap.Jitter,
		gaps: []store.Gap{lookupGap}, limits: []store.Limit{lookupLimit, inviteLimit}})
	a := h.accountRow(li)
	if p := a.Pace(store.ActionLookup); p.Gap != (store.Gap{Action: "lookup", Min: lookupGap.Min, Jitter: lookupGap.Jitter, Source: store.SourceCustom}) {
		t.Fatalf("lookup pace = %+v", p)
	}
	var ids []string
	for i := 0; i < n; i++ {
		ids = append(ids, fmt.Sprintf("https://www.linkedin.com/in/pace-person-%03d/", i))
	}
	h.targets(h.campaign(li, "Hi {{.FirstName}}"), ids...)
	h.start(2)

	count := func(op string) int {
		k := 0
		for _, r := range h.sim.Requests() {
			if r.Account == "li" && r.Op == op {
				k++
			}
		}
		return k
	}
	// A pause: the tasks that come up meanwhile wait for its end, and
	// are all due at once then.
	// The waits below are for progress only (the pacing is checked at the
	// end, from the simulator's record): generous for a busy machine.
	// (Ticks of 12-47 s once seen here came from the scheduler sharing a
	// pool of 4 connections with 20 handlers; see the harness's start.)
	h.waitFor("40 invitations", 2*time.Minute, func() bool { return count("invite") >= 40 })
	if err := h.st.PauseAccount(h.ctx, li, time.Now().Add(time.Second), "test: a pause that ends with a backlog"); err != nil {
		t.Fatal(err)
	}
	// A Redis flush: the scheduler re-enqueues every queued target at once.
	h.waitFor("80 invitations", 2*time.Minute, func() bool { return count("invite") >= 80 })
	if err := h.rdb.FlushAll(h.ctx).Err(); err != nil {
		t.Fatal(err)
	}
	// A raised limit: the room it makes must not leave in a burst.
	h.waitFor("120 invitations", 2*time.Minute, func() bool { return count("invite") >= 120 })
	raisedAt := time.Now()
	if err := h.st.SetLimits(h.ctx, li, []store.Limit{raised}); err != nil {
		t.Fatal(err)
	}
	rows := h.waitTerminal(3 * time.Minute)
	sent := 0
	for _, r := range rows {
		if r.Status == store.TargetSent {
			sent++
		}
	}
	if sent != n {
		t.Errorf("%d of %d targets sent", sent, n)
	}

	byOp := map[string][]time.Time{}
	for _, r := range h.sim.Requests() {
		if r.Account == "li" {
			byOp[r.Op] = append(byOp[r.Op], r.Time)
		}
	}
	if got := len(byOp["resolve"]); got != n {
		t.Errorf("%d lookups reached the provider, want %d (one per new target)", got, n)
	}
	for _, c := range []struct {
		op  string
		gap time.Duration
	}{{"resolve", lookupGap.Min}, {"invite", inviteGap.Min}} {
		times := byOp[c.op]
		slices.SortFunc(times, func(x, y time.Time) int { return x.Compare(y) })
		closest, at := time.Duration(1<<62), time.Time{}
		for i := 1; i < len(times); i++ {
			if d := times[i].Sub(times[i-1]); d < closest {
				closest, at = d, times[i]
			}
		}
		// Postgres keeps times to the microsecond.
		if closest < c.gap-time.Microsecond {
			t.Errorf("two %s calls %s apart (at %s), under the minimum gap %s", c.op, closest, at.Format("15:04:05.000000"), c.gap)
		}
		t.Logf("%d %s calls; closest two %s apart (minimum gap %s)", len(times), c.op, closest, c.gap)
	}
	for _, c := range []struct {
		op     string
		limit  store.Limit
		before time.Time // only windows ending before this; zero for all
	}{
		{"resolve", lookupLimit, time.Time{}},
		{"invite", inviteLimit, raisedAt},
		{"invite", raised, time.Time{}},
	} {
		if most, at := fullestWindow(byOp[c.op], c.limit.Per, c.before); most > c.limit.Max {
			t.Errorf("%d %s calls within %s ending at %s: over the limit %s", most, c.op, c.limit.Per, at.Format("15:04:05.000"), c.limit)
		}
	}
	if d := h.sim.DuplicateInvites(); len(d) > 0 {
		t.Errorf("duplicate invitations: %+v", d)
	}
}

// fullestWindow returns the most times inside any span of length per (a
// call at t counts in (t-per, t]) ending before until (any, if zero), and
// where that span ends.
func fullestWindow(times []time.Time, per time.Duration, until time.Time) (int, time.Time) {
	times = slices.Clone(times)
	slices.SortFunc(times, func(x, y time.Time) int { return x.Compare(y) })
	most, at, j := 0, time.Time{}, 0
	for i, t := range times {
		if !until.IsZero() && !t.Before(until) {
			break
		}
		for !times[j].After(t.Add(-per)) {
			j++
		}
		if k := i - j + 1; k > most {
			most, at = k, t
		}
	}
	return most, at
}
