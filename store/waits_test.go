package store_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/outreach-dev/outreach/store"
)

// wantWait checks a target's row of target_waits.
func wantWait(t *testing.T, st *store.Store, id int64, wait, reason string, until time.Time) *store.TargetWait {
	t.Helper()
	got, err := st.TargetWait(context.Background(), id)
	if err != nil {
		t.Fatalf("target_waits of target %d: %v", id, err)
	}
	batch, err := st.Waits(context.Background(), []int64{id})
	if err != nil {
		t.Fatalf("Waits of target %d: %v", id, err)
	}
	if b := batch[id]; b.Reason != got.Reason || !b.Until.Equal(got.Until) {
		t.Errorf("target %d: Waits says %+v, the view %q until %v", id, b, got.Reason, got.Until)
	}
	if got.Wait != wait || !strings.Contains(got.Reason, reason) {
		t.Errorf("target %d waits %q (%q), want %q containing %q", id, got.Wait, got.Reason, wait, reason)
	}
	if !got.Until.Equal(until) && (until.IsZero() || got.Until.Sub(until).Abs() > time.Millisecond) {
		t.Errorf("target %d (%s) waits until %v, want %v", id, wait, got.Until, until)
	}
	return got
}

// TestTargetWaitsStates walks one target through the states the store
// decides and checks what target_waits says of each.
func TestTargetWaitsStates(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	pool := f.db
	if _, err := f.st.AddTargets(ctx, f.campaign, []store.NewTarget{{Identifier: "a"}}); err != nil {
		t.Fatal(err)
	}
	var id int64
	if err := pool.QueryRow(ctx, `SELECT id FROM targets`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	wantWait(t, f.st, id, "new", "not read its identifier", time.Time{})
	if _, err := f.st.PrepareTargets(ctx, 10, normalizeAsIs); err != nil {
		t.Fatal(err)
	}
	wantWait(t, f.st, id, "due", "its turn", time.Time{})

	// Queued: its task's planned slot.
	now := time.Now()
	slot := now.Add(40 * time.Second).Truncate(time.Microsecond)
	got, err := f.st.ClaimTargets(ctx, f.account, false, 1, now, now, func(store.Claimed) store.Prepared {
		return store.Prepared{Message: "hi", At: slot}
	})
	if err != nil || len(got) != 1 {
		t.Fatalf("claim: %d, %v", len(got), err)
	}
	wantWait(t, f.st, id, "queued", "task is in Redis", slot)

	// Sending: until its lease ends.
	at, err := begin(f, id, now)
	if err != nil {
		t.Fatal(err)
	}
	wantWait(t, f.st, id, "sending", "calling the provider", now.Add(time.Minute).Truncate(time.Microsecond))

	// Deferred by the provider: until its next attempt, after the error.
	later := now.Add(24 * time.Hour).Truncate(time.Microsecond)
	if err := f.st.Finish(ctx, store.Finish{SendID: at.SendID, TargetID: id, AccountID: f.account, Now: now,
		Outcome: store.OutcomeRefused, ErrorType: "cannot_resend_yet", LastError: "cannot_resend_yet: not yet",
		TargetStatus: store.TargetPending, NextAttemptAt: later, CountDeferral: true}); err != nil {
		t.Fatal(err)
	}
	wantWait(t, f.st, id, "deferred", "deferred after cannot_resend_yet", later)

	// The account's state comes first.
	pauseEnd := now.Add(2 * time.Hour).Truncate(time.Microsecond)
	if err := f.st.PauseAccount(ctx, f.account, pauseEnd, "holiday"); err != nil {
		t.Fatal(err)
	}
	wantWait(t, f.st, id, "account_paused", "account paused (holiday)", pauseEnd)
	if err := f.st.DisableAccount(ctx, f.account, "checkpoint"); err != nil {
		t.Fatal(err)
	}
	wantWait(t, f.st, id, "account_disabled", "account disabled (checkpoint); run `outreach resume account acc`", time.Time{})
	if err := f.st.SetCampaignStatus(ctx, f.campaign, "paused"); err != nil {
		t.Fatal(err)
	}
	wantWait(t, f.st, id, "campaign_paused", "campaign paused; run `outreach resume campaign c`", time.Time{})
	if err := f.st.SetCampaignStatus(ctx, f.campaign, "active"); err != nil {
		t.Fatal(err)
	}
	if err := f.st.ResumeAccount(ctx, f.account); err != nil {
		t.Fatal(err)
	}
	wantWait(t, f.st, id, "deferred", "cannot_resend_yet", later)

	// Handed back by code that writes only last_error ("waiting: ...").
	if _, err := pool.Exec(ctx, `UPDATE targets SET last_error = 'waiting: no worker has credentials for li', error_type = NULL
		WHERE id = $1`, id); err != nil {
		t.Fatal(err)
	}
	wantWait(t, f.st, id, "handed_back", "no worker has credentials for li", later)
	if _, err := pool.Exec(ctx, `UPDATE targets SET error_type = 'cannot_resend_yet', last_error = 'cannot_resend_yet: not yet'
		WHERE id = $1`, id); err != nil {
		t.Fatal(err)
	}

	// The planner's account waits apply to due targets only, while they
	// hold.
	if _, err := pool.Exec(ctx, `UPDATE targets SET next_attempt_at = now() - interval '1 minute' WHERE id = $1`, id); err != nil {
		t.Fatal(err)
	}
	open := now.Add(5 * time.Hour).Truncate(time.Microsecond)
	if _, err := f.st.SetAccountWaits(ctx, []store.AccountWait{{AccountID: f.account, Action: store.ActionInvite,
		Kind: store.WaitHours, Reason: "outside working hours", Until: open}}); err != nil {
		t.Fatal(err)
	}
	wantWait(t, f.st, id, "hours", "outside working hours", open)
	if n, err := f.st.SetAccountWaits(ctx, []store.AccountWait{{AccountID: f.account, Action: store.ActionInvite,
		Kind: store.WaitHours, Reason: "outside working hours", Until: open}}); err != nil || n != 0 {
		t.Errorf("writing the same account wait again changed %d rows (%v), want 0", n, err)
	}
	if _, err := f.st.SetAccountWaits(ctx, []store.AccountWait{{AccountID: f.account, Action: store.ActionLookup,
		Kind: store.WaitWindow, Reason: "window full", Until: open}}); err != nil {
		t.Fatal(err)
	}
	wantWait(t, f.st, id, "hours", "outside working hours", open) // a resolved target waits for invites only
	if _, err := pool.Exec(ctx, `UPDATE account_waits SET until = now() - interval '1 second'`); err != nil {
		t.Fatal(err)
	}
	wantWait(t, f.st, id, "due", "its turn", time.Time{}) // a wait that passed says nothing
	if _, err := f.st.SetAccountWaits(ctx, []store.AccountWait{{AccountID: f.account, Action: store.ActionInvite}}); err != nil {
		t.Fatal(err)
	}
	var left int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM account_waits WHERE action = 'invite'`).Scan(&left); err != nil || left != 0 {
		t.Errorf("after clearing, %d invite waits are left (%v)", left, err)
	}

	// Terminal targets are not in the view.
	if _, err := pool.Exec(ctx, `UPDATE targets SET status = 'sent' WHERE id = $1`, id); err != nil {
		t.Fatal(err)
	}
	if _, err := f.st.TargetWait(ctx, id); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a sent target's wait: %v, want ErrNotFound", err)
	}
	if w, err := f.st.Waits(ctx, []int64{id}); err != nil || len(w) != 0 {
		t.Errorf("a sent target's Waits: %v, %v; want none", w, err)
	}
}

// TestResumeClearsHandedBackWaits: a target a worker handed back while
// its account was paused waits with that reason until the pause's end;
// `resume` makes it due at once, its reason and the planner's account
// waits gone.
func TestResumeClearsHandedBackWaits(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	now := time.Now().Add(time.Second) // after the targets' default next_attempt_at
	ts := queue(t, f, now, "a")
	pauseEnd := now.Add(3 * time.Hour).Truncate(time.Microsecond)
	if err := f.st.PauseAccount(ctx, f.account, pauseEnd, "limit_exceeded"); err != nil {
		t.Fatal(err)
	}
	_, err := begin(f, ts[0].ID, now)
	var nn *store.NotNowError
	if !errors.As(err, &nn) || !nn.Released {
		t.Fatalf("begin on a paused account: %v, want a target handed back", err)
	}
	if _, err := f.st.SetAccountWaits(ctx, []store.AccountWait{{AccountID: f.account, Action: store.ActionInvite,
		Kind: store.WaitWindow, Reason: "window full", Until: now.Add(time.Hour)}}); err != nil {
		t.Fatal(err)
	}
	// While paused, the account's state says it; the handed-back reason
	// is kept for after.
	wantWait(t, f.st, ts[0].ID, "account_paused", "limit_exceeded", pauseEnd)
	if _, err := f.db.Exec(ctx, `UPDATE accounts SET status = 'active', paused_until = NULL`); err != nil {
		t.Fatal(err)
	}
	wantWait(t, f.st, ts[0].ID, "handed_back", "account paused: limit_exceeded", pauseEnd)

	if err := f.st.PauseAccount(ctx, f.account, pauseEnd, "limit_exceeded"); err != nil {
		t.Fatal(err)
	}
	if err := f.st.ResumeAccount(ctx, f.account); err != nil {
		t.Fatal(err)
	}
	wantWait(t, f.st, ts[0].ID, "due", "its turn", time.Time{})
	var reason *string
	var due bool
	if err := f.db.QueryRow(ctx, `SELECT wait_reason, next_attempt_at <= now() FROM targets WHERE id = $1`, ts[0].ID).
		Scan(&reason, &due); err != nil {
		t.Fatal(err)
	}
	if reason != nil || !due {
		t.Errorf("after resume: wait_reason %v, due %v; want none and due", reason, due)
	}
	var waits int
	if err := f.db.QueryRow(ctx, `SELECT count(*) FROM account_waits`).Scan(&waits); err != nil || waits != 0 {
		t.Errorf("after resume: %d account waits (%v), want none", waits, err)
	}
}
