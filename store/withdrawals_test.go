package store_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/outreach-dev/outreach/provider"
	"github.com/outreach-dev/outreach/store"
)

// TestBeginWithdraw checks the reservation of a withdrawal: only a sent
// invitation not yet withdrawn, gone or held is reserved; the account's
// working hours and pause apply as to every call (a long wait plans the
// withdrawal again when it ends, with nothing written to the ledger); a
// reservation writes its ledger row (action withdraw) before the call, and
// its answer is recorded once.
func TestBeginWithdraw(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	var sent, pending int64
	if err := f.db.QueryRow(ctx, `INSERT INTO targets (campaign_id, identifier, provider_id, status, invitation_id, finished_at)
		VALUES ($1, 'a', 'ACoAApersonA', 'sent', 'inv-a', $2) RETURNING id`, f.campaign, now.Add(-30*24*time.Hour)).Scan(&sent); err != nil {
		t.Fatal(err)
	}
	if err := f.db.QueryRow(ctx, `INSERT INTO targets (campaign_id, identifier, provider_id) VALUES ($1, 'b', 'ACoAApersonB') RETURNING id`,
		f.campaign).Scan(&pending); err != nil {
		t.Fatal(err)
	}
	req := func(id int64, at time.Time) store.WithdrawRequest {
		return store.WithdrawRequest{TargetID: id, Now: at, Lease: time.Minute, RequestTimeout: 30 * time.Second, HoldFor: time.Minute}
	}
	ledger := func() int {
		var n int
		if err := f.db.QueryRow(ctx, `SELECT count(*) FROM sends WHERE action = 'withdraw'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if _, err := f.st.BeginWithdraw(ctx, req(pending, now)); !errors.Is(err, store.ErrStale) {
		t.Errorf("withdrawal of a target not sent: %v, want ErrStale", err)
	}

	// Outside working hours (09:00-10:00 closed now): planned again when
	// they open, nothing in the ledger.
	if _, err := f.db.Exec(ctx, `UPDATE accounts SET work_start = '11:00', work_end = '12:00' WHERE id = $1`, f.account); err != nil {
		t.Fatal(err)
	}
	var nn *store.NotNowError
	if _, err := f.st.BeginWithdraw(ctx, req(sent, now)); !errors.As(err, &nn) || !nn.Released || !strings.Contains(nn.Reason, "working hours") {
		t.Fatalf("withdrawal outside working hours: %v, want a released wait for working hours", err)
	}
	var next time.Time
	if err := f.db.QueryRow(ctx, `SELECT withdraw_next_at FROM targets WHERE id = $1`, sent).Scan(&next); err != nil {
		t.Fatal(err)
	}
	if !next.Equal(now.Add(time.Hour)) || ledger() != 0 {
		t.Errorf("after the wait: planned again at %s with %d ledger rows, want %s and 0", next, ledger(), now.Add(time.Hour))
	}
	if ids, err := f.st.PlanWithdrawals(ctx, now, 10, time.Minute, []provider.Name{provider.Unipile}); err != nil || len(ids) != 0 {
		t.Errorf("planned before its time: %v, %v", ids, err)
	}

	open := now.Add(time.Hour)
	at, err := f.st.BeginWithdraw(ctx, req(sent, open))
	if err != nil {
		t.Fatalf("withdrawal in working hours: %v", err)
	}
	if at.InvitationID != "inv-a" || ledger() != 1 {
		t.Errorf("reserved %+v with %d ledger rows, want inv-a and 1", at, ledger())
	}
	if _, err := f.st.BeginWithdraw(ctx, req(sent, open)); !errors.As(err, &nn) || nn.Released {
		t.Errorf("second withdrawal while the first is out: %v, want a wait for the other worker", err)
	}
	fin := store.WithdrawFinish{SendID: at.SendID, TargetID: sent, AccountID: f.account, Now: open, Outcome: store.OutcomeWithdrawn}
	for i := 0; i < 2; i++ { // recorded once, however often
		if err := f.st.FinishWithdraw(ctx, fin); err != nil {
			t.Fatal(err)
		}
	}
	var withdrawnAt time.Time
	var status string
	if err := f.db.QueryRow(ctx, `SELECT withdrawn_at, status FROM targets WHERE id = $1`, sent).Scan(&withdrawnAt, &status); err != nil {
		t.Fatal(err)
	}
	if !withdrawnAt.Equal(open) || status != "sent" {
		t.Errorf("withdrawn target: withdrawn_at %s, status %s; want %s, sent", withdrawnAt, status, open)
	}
	if _, err := f.st.BeginWithdraw(ctx, req(sent, open.Add(time.Minute))); !errors.Is(err, store.ErrStale) {
		t.Errorf("withdrawal of a withdrawn target: %v, want ErrStale", err)
	}
}
