package store_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/outreach-dev/outreach/internal/testenv"
	"github.com/outreach-dev/outreach/store"
)

// setupWarm makes a Unipile account as na says, with the providers'
// default ramps for new accounts turned on (the test template turns them
// off), and a campaign of it.
func setupWarm(t *testing.T, na store.NewAccount) fixture {
	t.Helper()
	st, dsn := testenv.Store(t)
	db := testenv.DB(t, dsn)
	ctx := context.Background()
	if _, err := db.Exec(ctx, `UPDATE provider_warmup SET new_accounts = true WHERE provider = 'unipile'`); err != nil {
		t.Fatal(err)
	}
	na.Name, na.ProviderAccountID, na.Provider = "warm", "u1", "unipile"
	acc, err := st.CreateAccount(ctx, na)
	if err != nil {
		t.Fatal(err)
	}
	camp, err := st.CreateCampaign(ctx, store.Campaign{Name: "c", AccountID: acc, MessageTemplate: "Hi"})
	if err != nil {
		t.Fatal(err)
	}
	return fixture{st, acc, camp, dsn, db}
}

// inviteLimits returns the account's invitation limits as the planner and
// the reservation read them.
func inviteLimits(t *testing.T, f fixture) []store.Limit {
	t.Helper()
	a, err := f.st.Account(context.Background(), f.account)
	if err != nil {
		t.Fatal(err)
	}
	return a.LimitsFor(store.ActionInvite)
}

func warmupOf(t *testing.T, f fixture) *store.Warmup {
	t.Helper()
	w, err := f.st.Warmup(context.Background(), f.account)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

const day, week = 24 * time.Hour, 7 * 24 * time.Hour

// TestWarmupRamp: a new Unipile account starts on its provider's ramp (5 a
// day, +5 a stage, up to its daily limit of 80); its daily and weekly
// windows hold today's share; the ramp grows with its compressed stages
// (step '1 hour', stage_since moved back instead of waiting), steps back
// one stage on a provider's warning and holds there; a second warning
// while held does not step back again.
func TestWarmupRamp(t *testing.T) {
	ctx := context.Background()
	f := setupWarm(t, store.NewAccount{Pacing: store.PacingUnlimited,
		Limits: []store.Limit{{Action: store.ActionInvite, Max: 80, Per: day}, {Action: store.ActionInvite, Max: 200, Per: week}}})

	w := warmupOf(t, f)
	if w.Day != 1 || w.Today != 5 || w.FullCount != 80 || w.Done {
		t.Fatalf("new account's ramp: day %d, %d today of %d (done %v), want day 1, 5 of 80", w.Day, w.Today, w.FullCount, w.Done)
	}
	want := []store.Limit{{Action: store.ActionInvite, Max: 5, Per: day}, {Action: store.ActionInvite, Max: 13, Per: week}}
	if diff := cmp.Diff(want, inviteLimits(t, f)); diff != "" {
		t.Fatalf("limits on day 1 (-want +got):\n%s", diff)
	}

	// Day 1: five invitations, then the ramp's daily window is full.
	now := time.Now().Add(time.Second) // after the targets' next_attempt_at
	ids := make([]string, 30)
	for i := range ids {
		ids[i] = "p" + string(rune('a'+i%26)) + string(rune('a'+i/26))
	}
	targets := queue(t, f, now, ids...)
	for _, tg := range targets[:5] {
		at, err := begin(f, tg.ID, now)
		if err != nil {
			t.Fatal(err)
		}
		finishSent(t, f, at, now)
	}
	_, err := begin(f, targets[5].ID, now)
	notNow(t, "sixth invitation on day 1", err, "limit invite 5 per 24h0m0s reached")

	// Compress the stages to an hour; three of them have passed: day 4.
	if _, err := f.db.Exec(ctx, `UPDATE account_warmups SET step = '1 hour', stage_since = now() - interval '3 hours 1 minute'`); err != nil {
		t.Fatal(err)
	}
	w = warmupOf(t, f)
	if w.Day != 4 || w.Today != 20 {
		t.Fatalf("after three stages: day %d, %d today; want day 4, 20 today", w.Day, w.Today)
	}
	want = []store.Limit{{Action: store.ActionInvite, Max: 20, Per: day}, {Action: store.ActionInvite, Max: 50, Per: week}}
	if diff := cmp.Diff(want, inviteLimits(t, f)); diff != "" {
		t.Fatalf("limits on day 4 (-want +got):\n%s", diff)
	}
	at, err := begin(f, targets[6].ID, now) // targets[5] was handed back
	if err != nil {
		t.Fatalf("sixth invitation on day 4: %v", err)
	}

	// A warning of the provider, recorded with the answer: one stage back
	// (day 3, 15 a day), held for hold_for.
	if err := f.st.Finish(ctx, store.Finish{SendID: at.SendID, TargetID: at.Target.ID, AccountID: f.account, Now: time.Now(),
		Outcome: store.OutcomeSent, InvitationID: "inv", TargetStatus: store.TargetSent,
		WarmupWarning: "provider reports 90% of its limit used"}); err != nil {
		t.Fatal(err)
	}
	w = warmupOf(t, f)
	if w.Stage != 2 || w.Today != 15 || w.HeldUntil.Before(time.Now().Add(w.HoldFor-time.Minute)) ||
		w.LastWarning != "provider reports 90% of its limit used" {
		t.Fatalf("after a warning: stage %d, %d today, held until %v, warning %q; want stage 2, 15 today, held for %v",
			w.Stage, w.Today, w.HeldUntil, w.LastWarning, w.HoldFor)
	}
	if got := inviteLimits(t, f)[0].Max; got != 15 {
		t.Fatalf("daily limit after a warning: %d, want 15", got)
	}

	// Another warning while held extends the hold, no second step back.
	if err := f.st.WarmupWarning(ctx, f.account, time.Now(), "rate limited (HTTP 429)"); err != nil {
		t.Fatal(err)
	}
	if w2 := warmupOf(t, f); w2.Stage != 2 || w2.LastWarning != "rate limited (HTTP 429)" {
		t.Fatalf("a second warning while held: stage %d (warning %q), want 2", w2.Stage, w2.LastWarning)
	}

	// Changed while running: a larger step takes effect at once.
	if _, err := f.db.Exec(ctx, `UPDATE account_warmups SET step_count = 30`); err != nil {
		t.Fatal(err)
	}
	if got := inviteLimits(t, f)[0].Max; got != 65 {
		t.Fatalf("daily limit with step_count 30 at stage 2: %d, want 65", got)
	}
	// Grown past full_count: done, the limits apply in full.
	if _, err := f.db.Exec(ctx, `UPDATE account_warmups SET stage = 10, stage_since = now()`); err != nil {
		t.Fatal(err)
	}
	if w := warmupOf(t, f); !w.Done || w.Today != 80 {
		t.Fatalf("past full: done %v, %d today; want done, 80", w.Done, w.Today)
	}
	want = []store.Limit{{Action: store.ActionInvite, Max: 80, Per: day}, {Action: store.ActionInvite, Max: 200, Per: week}}
	if diff := cmp.Diff(want, inviteLimits(t, f)); diff != "" {
		t.Fatalf("limits when done (-want +got):\n%s", diff)
	}
}

// TestWarmupDefaultsAndOptOut: a new account without limits of its own
// ramps its provider's default limits; NoWarmup keeps it off the ramp; a
// ramp added by SQL takes the provider's defaults; invalid values are
// refused naming the column.
func TestWarmupDefaultsAndOptOut(t *testing.T) {
	ctx := context.Background()
	f := setupWarm(t, store.NewAccount{})
	// Unipile's defaults: 80 a day, 200 a week.
	want := []store.Limit{{Action: store.ActionInvite, Max: 5, Per: day}, {Action: store.ActionInvite, Max: 13, Per: week}}
	if diff := cmp.Diff(want, inviteLimits(t, f)); diff != "" {
		t.Fatalf("default limits on day 1 (-want +got):\n%s", diff)
	}
	a, err := f.st.Account(ctx, f.account)
	if err != nil {
		t.Fatal(err)
	}
	if got := a.LimitsFor(store.ActionLookup); len(got) != 1 || got[0].Max != 100 {
		t.Fatalf("lookups are not ramped: %v, want 100 a day", got)
	}

	cold, err := f.st.CreateAccount(ctx, store.NewAccount{Name: "cold", Provider: "unipile", ProviderAccountID: "u2", NoWarmup: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.st.Warmup(ctx, cold); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("account created with NoWarmup: warm-up %v, want ErrNotFound", err)
	}
	if _, err := f.db.Exec(ctx, `INSERT INTO account_warmups (account_id, step) VALUES ($1, '2 days')`, cold); err != nil {
		t.Fatal(err)
	}
	w, err := f.st.Warmup(ctx, cold)
	if err != nil {
		t.Fatal(err)
	}
	if w.StartCount != 5 || w.StepCount != 5 || w.Step != 48*time.Hour || w.HoldFor != 72*time.Hour {
		t.Fatalf("ramp inserted by SQL: %+v, want start 5, step 5 every 48h, hold 72h", w)
	}

	for _, tc := range []struct{ sql, want string }{
		{`UPDATE account_warmups SET start_count = 0`, "account_warmups.start_count: 0 is outside 1..1000000"},
		{`UPDATE account_warmups SET step = '0 seconds'`, "account_warmups.step: 00:00:00 is not a length"},
		{`UPDATE account_warmups SET stage = -1`, "account_warmups.stage: -1 is negative"},
		{`UPDATE account_warmups SET full_count = 0`, "account_warmups.full_count: 0 is outside"},
	} {
		_, err := f.db.Exec(ctx, tc.sql)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error containing %q", tc.sql, err, tc.want)
		}
	}
}
