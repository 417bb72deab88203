package store_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/outreach-dev/outreach/provider"
	"github.com/outreach-dev/outreach/store"
)

// queueLookups adds targets that need a profile lookup and claims them for
// lookup tasks at now.
func queueLookups(t *testing.T, f fixture, now time.Time, ids ...string) []*store.Target {
	t.Helper()
	ctx := context.Background()
	var nt []store.NewTarget
	for _, id := range ids {
		nt = append(nt, store.NewTarget{Identifier: id})
	}
	if _, err := f.st.AddTargets(ctx, f.campaign, nt); err != nil {
		t.Fatal(err)
	}
	dueBy(t, f, now, ids)
	if _, err := f.st.PrepareTargets(ctx, 1000, func(_ provider.Name, id string) store.Normalized { return store.Normalized{Identifier: id} }); err != nil {
		t.Fatal(err)
	}
	got, err := f.st.ClaimTargets(ctx, f.account, true, 1000, now.Add(time.Hour), now, func(store.Claimed) store.Prepared {
		return store.Prepared{}
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(ids) {
		t.Fatalf("claimed %d lookups, want %d", len(got), len(ids))
	}
	return got
}

func beginAction(st *store.Store, id int64, action store.Action, now time.Time) (*store.Attempt, error) {
	return st.Begin(context.Background(), store.BeginRequest{TargetID: id, Action: action, Now: now,
		Lease: time.Minute, RequestTimeout: 10 * time.Second, HoldFor: time.Hour})
}

func finishLookup(t *testing.T, f fixture, at *store.Attempt, now time.Time) {
	t.Helper()
	err := f.st.Finish(context.Background(), store.Finish{SendID: at.SendID, TargetID: at.Target.ID, AccountID: f.account, Now: now,
		Outcome: store.OutcomeResolved, TargetStatus: store.TargetPending, NextAttemptAt: now,
		Person: &store.Person{Provider: "unipile", NormalizedIdentifier: at.Target.NormalizedIdentifier, ProviderID: "P-" + at.Target.Identifier}})
	if err != nil {
		t.Fatal(err)
	}
}

// notNow asserts err is a NotNowError whose reason contains want.
func notNow(t *testing.T, what string, err error, want string) *store.NotNowError {
	t.Helper()
	var nn *store.NotNowError
	if !errors.As(err, &nn) {
		t.Fatalf("%s: %v, want NotNowError (%s)", what, err, want)
	}
	if !strings.Contains(nn.Reason, want) {
		t.Fatalf("%s: waits because %q, want %q", what, nn.Reason, want)
	}
	return nn
}

// A new account that sets nothing runs on its provider's documented
// defaults; its own settings replace them per action; 'unlimited' opts
// out of them.
func TestDefaultPacingPerProvider(t *testing.T) {
	t.Parallel()
	f := setupAccount(t, store.NewAccount{})
	ctx := context.Background()
	day, week := 24*time.Hour, 7*24*time.Hour
	type pace struct {
		Limits                 []store.Limit
		LimitSource, GapSource string
		Min, Jitter            time.Duration
	}
	get := func(id int64, action store.Action) pace {
		t.Helper()
		a, err := f.st.Account(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		p := a.Pace(action)
		return pace{p.Limits, p.LimitSource, p.Gap.Source, p.Gap.Min, p.Gap.Jitter}
	}
	check := func(what string, got, want pace) {
		t.Helper()
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", what, diff)
		}
	}
	check("unipile invite", get(f.account, store.ActionInvite), pace{
		[]store.Limit{{Action: "invite", Max: 80, Per: day}, {Action: "invite", Max: 200, Per: week}},
		"default", "default", 90 * time.Second, 150 * time.Second})
	check("unipile lookup", get(f.account, store.ActionLookup), pace{
		[]store.Limit{{Action: "lookup", Max: 100, Per: day}}, "default", "default", 30 * time.Second, time.Minute})
	for _, p := range []struct {
		provider provider.Name
		max      int
	}{{"partoo", 300}, {"altegio", 100}} {
		id, err := f.st.CreateAccount(ctx, store.NewAccount{Name: string(p.provider), Provider: p.provider, ProviderAccountID: "x"})
		if err != nil {
			t.Fatal(err)
		}
		check(string(p.provider)+" invite", get(id, store.ActionInvite), pace{
			[]store.Limit{{Action: "invite", Max: p.max, Per: time.Hour}}, "default", "default", 2 * time.Second, 3 * time.Second})
	}
	a, _ := f.st.Account(ctx, f.account)
	if got := a.PacingSummary(); got != "default" {
		t.Errorf("summary on defaults = %q", got)
	}

	// Own invite limits replace the default invite limits only.
	if err := f.st.SetLimits(ctx, f.account, []store.Limit{{Action: "invite", Max: 25, Per: day}}); err != nil {
		t.Fatal(err)
	}
	check("own invite limit", get(f.account, store.ActionInvite), pace{
		[]store.Limit{{Action: "invite", Max: 25, Per: day}}, "custom", "default", 90 * time.Second, 150 * time.Second})
	if err := f.st.SetGaps(ctx, f.account, []store.Gap{{Action: "lookup", Min: 5 * time.Second}, {Action: "invite", Min: time.Minute}}); err != nil {
		t.Fatal(err)
	}
	check("own lookup gap", get(f.account, store.ActionLookup), pace{
		[]store.Limit{{Action: "lookup", Max: 100, Per: day}}, "default", "custom", 5 * time.Second, 0})
	check("own invite gap", get(f.account, store.ActionInvite), pace{
		[]store.Limit{{Action: "invite", Max: 25, Per: day}}, "custom", "custom", time.Minute, 0})
	a, _ = f.st.Account(ctx, f.account)
	if got := a.PacingSummary(); got != "custom+default" {
		t.Errorf("summary with some own settings = %q", got)
	}

	// Opting out removes the account's own settings and the defaults.
	if err := f.st.SetPacing(ctx, f.account, store.PacingUnlimited); err != nil {
		t.Fatal(err)
	}
	check("unlimited invite", get(f.account, store.ActionInvite), pace{})
	check("unlimited lookup", get(f.account, store.ActionLookup), pace{})
	a, _ = f.st.Account(ctx, f.account)
	if got := a.PacingSummary(); got != "unlimited" {
		t.Errorf("summary after opting out = %q", got)
	}
	// And back to the defaults.
	if err := f.st.SetPacing(ctx, f.account, store.PacingDefault); err != nil {
		t.Fatal(err)
	}
	check("back to defaults", get(f.account, store.ActionLookup), pace{
		[]store.Limit{{Action: "lookup", Max: 100, Per: day}}, "default", "default", 30 * time.Second, time.Minute})
}

// The defect: with a lookup limit of 500 a day, an account's profile
// lookups went out back to back (391 in 3 s). Lookups are paced like
// invitations: one at a time, each after the gap drawn for the one before
// (kept in the ledger), whatever its answer.
func TestLookupsArePaced(t *testing.T) {
	t.Parallel()
	f := setupAccount(t, store.NewAccount{Limits: []store.Limit{{Action: store.ActionLookup, Max: 500, Per: 24 * time.Hour}}})
	t0 := time.Now().Add(5 * time.Second) // after the targets' due time (the database's now when added)
	ts := queueLookups(t, f, t0, "a", "b", "c")
	at, err := beginAction(f.st, ts[0].ID, store.ActionLookup, t0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = beginAction(f.st, ts[1].ID, store.ActionLookup, t0)
	notNow(t, "a second lookup while the first is out", err, "another of this account's profile lookups is in flight")
	answered := t0.Add(100 * time.Millisecond)
	finishLookup(t, f, at, answered)
	_, err = beginAction(f.st, ts[1].ID, store.ActionLookup, answered.Add(time.Millisecond))
	nn := notNow(t, "a lookup just after the first's answer", err, "minimum gap between profile lookups (provider default pacing)")
	var gap time.Duration
	if err := f.db.QueryRow(context.Background(), `SELECT extract(epoch from gap)::float8 * interval '1 second' FROM sends WHERE id = $1`,
		at.SendID).Scan(&gap); err != nil {
		t.Fatal(err)
	}
	if gap < 30*time.Second || gap >= 90*time.Second {
		t.Errorf("gap drawn for the lookup = %s, want 30 s plus up to 60 s", gap)
	}
	if want := answered.Add(gap); nn.Until.Sub(want).Abs() > time.Millisecond {
		t.Errorf("the next lookup waits until %v, want the answer plus the drawn gap %v", nn.Until, want)
	}
	if _, err := beginAction(f.st, ts[1].ID, store.ActionLookup, nn.Until); err != nil {
		t.Errorf("a lookup once the gap is over: %v", err)
	}
}

// An action with limits but no gap at all (an explicit zero gap here) is
// spread evenly over its tightest window, unless the account opted out.
func TestLimitsWithoutGapAreSpread(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{store.PacingDefault, store.PacingUnlimited} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			f := setupAccount(t, store.NewAccount{Pacing: mode,
				Limits: []store.Limit{{Action: store.ActionLookup, Max: 10, Per: time.Hour}},
				Gaps:   []store.Gap{{Action: store.ActionLookup}}})
			t0 := time.Now().Add(5 * time.Second) // after the targets' due time (the database's now when added)
			ts := queueLookups(t, f, t0, "a", "b")
			at, err := beginAction(f.st, ts[0].ID, store.ActionLookup, t0)
			if err != nil {
				t.Fatal(err)
			}
			finishLookup(t, f, at, t0.Add(time.Millisecond))
			_, err = beginAction(f.st, ts[1].ID, store.ActionLookup, t0.Add(time.Second))
			if mode == store.PacingUnlimited {
				if err != nil {
					t.Errorf("opted out: second lookup: %v, want it to go", err)
				}
				return
			}
			nn := notNow(t, "second lookup", err, "(limits spread evenly)")
			// 1 h / 10 = 6 min: at least 3 min, at most 6.
			if d := nn.Until.Sub(t0); d < 3*time.Minute || d > 6*time.Minute+time.Second {
				t.Errorf("spread gap = %s, want 3 to 6 minutes", d)
			}
		})
	}
}

// No burst reaches a provider when a backlog becomes due at once: after a
// pause ends, after working hours open, after a limit is raised, after a
// restart (a new process, nothing in memory), and after an answer that
// was an error (the gap used to follow successes only). Each account has
// limits with room, so before per-action pacing each of these let the
// whole backlog go in the same instant.
func TestNoBurstWhenABacklogBecomesDue(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// A whole minute (so working hours can open at it) at least two
	// minutes ahead (after the targets' due time even on a slow machine).
	next := time.Now().Add(3 * time.Minute).UTC().Truncate(time.Minute)
	if next.Format("15:04") == "00:00" {
		next = next.Add(time.Minute) // work_start 00:00 would mean always open
	}
	for _, tc := range []struct {
		name string
		na   store.NewAccount
		// before makes the backlog wait until at; it returns the store to
		// reserve with.
		before func(t *testing.T, f fixture, at time.Time) *store.Store
		// answer is how the first call is answered.
		answer store.Outcome
	}{
		{
			name: "pause ends",
			na:   store.NewAccount{Limits: []store.Limit{{Action: store.ActionInvite, Max: 100, Per: time.Hour}}},
			before: func(t *testing.T, f fixture, at time.Time) *store.Store {
				if err := f.st.PauseAccount(ctx, f.account, at, "manual"); err != nil {
					t.Fatal(err)
				}
				return f.st
			},
		},
		{
			name: "working hours open",
			na:   store.NewAccount{Limits: []store.Limit{{Action: store.ActionInvite, Max: 100, Per: time.Hour}}},
			before: func(t *testing.T, f fixture, at time.Time) *store.Store {
				if _, err := f.db.Exec(ctx, `UPDATE accounts SET work_start = $2::time WHERE id = $1`,
					f.account, at.Format("15:04")); err != nil {
					t.Fatal(err)
				}
				return f.st
			},
		},
		{
			name: "a limit is raised",
			na:   store.NewAccount{Limits: []store.Limit{{Action: store.ActionInvite, Max: 1, Per: time.Hour}}},
			before: func(t *testing.T, f fixture, at time.Time) *store.Store {
				// The window is full of one invitation, long ago enough
				// for any gap; the limit is then raised.
				if _, err := f.db.Exec(ctx, `INSERT INTO sends (account_id, action, reserved_at, window_at, outcome, gap)
					VALUES ($1, 'invite', $2, $2, 'sent', '4 minutes')`, f.account, at.Add(-30*time.Minute)); err != nil {
					t.Fatal(err)
				}
				return nil
			},
		},
		{
			name: "a restart",
			na:   store.NewAccount{Limits: []store.Limit{{Action: store.ActionInvite, Max: 100, Per: time.Hour}}},
			before: func(t *testing.T, f fixture, at time.Time) *store.Store {
				st, err := store.Open(ctx, f.dsn)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(st.Close)
				return st
			},
		},
		{
			name:   "an error answer",
			na:     store.NewAccount{MinGap: time.Minute, Pacing: store.PacingUnlimited},
			before: func(*testing.T, fixture, time.Time) *store.Store { return nil },
			answer: store.OutcomeError,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := setupAccount(t, tc.na)
			ts := queue(t, f, next, "a", "b", "c", "d")
			st := tc.before(t, f, next)
			if tc.name == "a limit is raised" {
				_, err := beginAction(f.st, ts[0].ID, store.ActionInvite, next.Add(-30*time.Second))
				notNow(t, "before the limit is raised", err, "limit invite 1 per")
				if err := f.st.SetLimits(ctx, f.account, []store.Limit{{Action: store.ActionInvite, Max: 100, Per: time.Hour}}); err != nil {
					t.Fatal(err)
				}
			} else if tc.name != "an error answer" && tc.name != "a restart" {
				_, err := beginAction(f.st, ts[0].ID, store.ActionInvite, next.Add(-time.Second))
				var nn *store.NotNowError
				if !errors.As(err, &nn) {
					t.Fatalf("a second before the backlog is due: %v, want it to wait", err)
				}
			}
			if st == nil {
				st = f.st
			}
			// The whole backlog comes up at the same moment.
			var got *store.Attempt
			for i, target := range ts {
				at, err := beginAction(st, target.ID, store.ActionInvite, next)
				switch {
				case err == nil && got != nil:
					t.Fatalf("target %d reserved in the same instant as target %s: a burst", i, got.Target.Identifier)
				case err == nil:
					got = at
				default:
					var nn *store.NotNowError
					if !errors.As(err, &nn) {
						t.Fatal(err)
					}
				}
			}
			if got == nil {
				t.Fatal("nothing of the backlog was reserved once due")
			}
			outcome, status := store.OutcomeSent, store.TargetSent
			if tc.answer != "" {
				outcome, status = tc.answer, store.TargetQueued
			}
			answered := next.Add(10 * time.Millisecond)
			if err := st.Finish(ctx, store.Finish{SendID: got.SendID, TargetID: got.Target.ID, AccountID: f.account, Now: answered,
				Outcome: outcome, TargetStatus: status, NextAttemptAt: answered}); err != nil {
				t.Fatal(err)
			}
			for _, target := range ts {
				if target.ID == got.Target.ID {
					continue
				}
				_, err := beginAction(st, target.ID, store.ActionInvite, answered.Add(10*time.Millisecond))
				notNow(t, fmt.Sprintf("target %s just after the first answer", target.Identifier), err, "minimum gap between invitations")
			}
		})
	}
}

// The even spread of limits without a gap follows the working hours: a
// day's budget is spread over the working day, a week's over the working
// week; the tightest window wins.
func TestSpreadFollowsWorkingHours(t *testing.T) {
	t.Parallel()
	day, week := 24*time.Hour, 7*24*time.Hour
	weekdays := []int{1, 2, 3, 4, 5}
	for _, tc := range []struct {
		name   string
		limits []store.Limit
		days   []int
		hours  time.Duration // from 09:00
		want   time.Duration // the minimum gap; the jitter is as much again
	}{
		{"a day, always open", []store.Limit{{Action: "invite", Max: 24, Per: day}}, nil, 24 * time.Hour, 30 * time.Minute},
		{"a day, 9 working hours", []store.Limit{{Action: "invite", Max: 25, Per: day}}, weekdays, 9 * time.Hour,
			time.Duration(float64(day) / 25 * 9 / 24 / 2)},
		{"a week, 5 days of 8 hours", []store.Limit{{Action: "invite", Max: 100, Per: week}}, weekdays, 8 * time.Hour,
			time.Duration(float64(week) / 100 * (40.0 / 168) / 2)},
		{"the tightest of a day and a week", []store.Limit{{Action: "invite", Max: 25, Per: day}, {Action: "invite", Max: 200, Per: week}},
			weekdays, 8 * time.Hour, time.Duration(float64(week) / 200 * (40.0 / 168) / 2)},
		{"a short window ignores the hours", []store.Limit{{Action: "invite", Max: 10, Per: 10 * time.Second}}, weekdays, 8 * time.Hour,
			500 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := store.Account{Limits: tc.limits, WorkStart: 9 * time.Hour, WorkEnd: 9*time.Hour + tc.hours, WorkDays: tc.days}
			if tc.days == nil {
				a.WorkStart, a.WorkDays = 0, []int{1, 2, 3, 4, 5, 6, 7}
			}
			g := a.Pace(store.ActionInvite).Gap
			if g.Source != store.SourceSpread || (g.Min-tc.want).Abs() > time.Microsecond || g.Jitter != g.Min {
				t.Errorf("gap = %+v, want spread %s + up to %s", g, tc.want, tc.want)
			}
		})
	}
}
