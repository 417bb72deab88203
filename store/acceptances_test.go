package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/outreach-dev/outreach/store"
)

// TestBeginPollIsPaced: a relations poll is a call of the account like
// any other: its provider's default pacing for 'poll' (a gap, a daily
// limit) holds, a paused account makes none, and each poll is a ledger
// row reserved before the call.
func TestBeginPollIsPaced(t *testing.T) {
	t.Parallel()
	f := setupAccount(t, store.NewAccount{}) // default pacing: Unipile's poll defaults
	ctx := context.Background()
	now := time.Now()
	at, err := f.st.BeginPoll(ctx, f.account, now, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	var outcome string
	if err := f.db.QueryRow(ctx, `SELECT outcome FROM sends WHERE id = $1 AND action = 'poll' AND target_id IS NULL`, at.SendID).Scan(&outcome); err != nil || outcome != "in_flight" {
		t.Fatalf("reservation: %q, %v; want an in_flight poll row", outcome, err)
	}
	var nn *store.NotNowError
	if _, err := f.st.BeginPoll(ctx, f.account, now, time.Minute); !errors.As(err, &nn) {
		t.Fatalf("second poll while the first is out: %v, want NotNowError", err)
	}
	if err := f.st.FinishPoll(ctx, store.PollFinish{SendID: at.SendID, AccountID: f.account, Now: now,
		Outcome: store.OutcomePolled, NextPollAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	_, err = f.st.BeginPoll(ctx, f.account, now.Add(time.Minute), time.Minute)
	if !errors.As(err, &nn) || nn.Until.Before(now.Add(10*time.Minute)) {
		t.Fatalf("poll a minute later: %v, want NotNowError until the 10-minute gap is over", err)
	}
	// The daily limit (48) holds whatever the gap.
	if _, err := f.db.Exec(ctx, `INSERT INTO sends (account_id, action, reserved_at, window_at, outcome)
		SELECT $1, 'poll', $2::timestamptz - make_interval(mins => g * 10), $2::timestamptz - make_interval(mins => g * 10), 'polled'
		FROM generate_series(1, 47) g`, f.account, now); err != nil {
		t.Fatal(err)
	}
	_, err = f.st.BeginPoll(ctx, f.account, now.Add(time.Hour), time.Minute)
	if !errors.As(err, &nn) {
		t.Fatalf("49th poll in a day: %v, want NotNowError", err)
	}
	if err := f.st.PauseAccount(ctx, f.account, now.Add(48*time.Hour), "operator"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.st.BeginPoll(ctx, f.account, now.Add(25*time.Hour), time.Minute); !errors.As(err, &nn) || nn.Reason != "account paused: operator" {
		t.Errorf("poll of a paused account: %v, want NotNowError for the pause", err)
	}
}
