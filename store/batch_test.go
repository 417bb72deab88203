package store_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/outreach-dev/outreach/store"
)

func batchReq(f fixture, now time.Time, worker int64, ts ...*store.Target) store.BatchRequest {
	req := store.BatchRequest{AccountID: f.account, Action: store.ActionInvite, Now: now, Lease: time.Minute,
		RequestTimeout: 10 * time.Second, HoldFor: time.Minute, WorkerID: worker}
	for _, t := range ts {
		req.Targets = append(req.Targets, store.BatchTarget{TargetID: t.ID, TaskGen: t.TaskGen})
	}
	return req
}

func leftErr(res *store.BatchResult, id int64) error {
	for _, l := range res.Left {
		if l.TargetID == id {
			return l.Err
		}
	}
	return nil
}

// A batch reserves its due targets in one transaction, each with its ledger
// row in flight before any call; a target with an earlier attempt to close
// (a worker died during its call) leaves for the single path, a task of
// another generation is stale; recording the answers together is
// idempotent.
func TestBeginBatchReservesAndLeaves(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	now := time.Now().Add(time.Second)
	ts := queue(t, f, now, "b1", "b2", "b3", "b4")
	// b3's earlier attempt is still in flight (its worker died).
	if _, err := f.db.Exec(ctx, `INSERT INTO sends (account_id, target_id, action, reserved_at) VALUES ($1, $2, 'invite', $3)`,
		f.account, ts[2].ID, now.Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	stale := *ts[3]
	stale.TaskGen = 7
	res, err := f.st.BeginBatch(ctx, batchReq(f, now, 0, ts[0], ts[1], ts[2], &stale))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Attempts) != 2 || res.Attempts[0].Target.ID != ts[0].ID || res.Attempts[1].Target.ID != ts[1].ID {
		t.Fatalf("reserved %+v, want b1 and b2", res.Attempts)
	}
	if err := leftErr(res, ts[2].ID); !errors.Is(err, store.ErrSingle) {
		t.Errorf("b3 with an attempt in flight: %v, want ErrSingle", err)
	}
	if err := leftErr(res, ts[3].ID); !errors.Is(err, store.ErrStale) {
		t.Errorf("b4 of another generation: %v, want ErrStale", err)
	}
	for _, at := range res.Attempts {
		var outcome, status string
		if err := f.db.QueryRow(ctx, `SELECT s.outcome, t.status FROM sends s JOIN targets t ON t.current_send_id = s.id WHERE s.id = $1`,
			at.SendID).Scan(&outcome, &status); err != nil || outcome != "in_flight" || status != "sending" {
			t.Fatalf("target %d after the reservation: %q %q %v, want in_flight and sending", at.Target.ID, outcome, status, err)
		}
	}
	// The same batch again (a redelivered task) reserves nothing more.
	again, err := f.st.BeginBatch(ctx, batchReq(f, now, 0, ts[0], ts[1]))
	if err != nil || len(again.Attempts) != 0 {
		t.Fatalf("the batch again: %+v %v, want nothing reserved", again, err)
	}
	fs := []store.Finish{
		{SendID: res.Attempts[0].SendID, TargetID: ts[0].ID, AccountID: f.account, Now: now, Outcome: store.OutcomeSent,
			InvitationID: "i1", TargetStatus: store.TargetSent},
		{SendID: res.Attempts[1].SendID, TargetID: ts[1].ID, AccountID: f.account, Now: now, Outcome: store.OutcomeRefused,
			ErrorType: "invalid_recipient", TargetStatus: store.TargetFailed, LastError: "no such person"},
	}
	for try := range 2 {
		errs, err := f.st.FinishBatch(ctx, fs)
		if err != nil || errs[0] != nil || errs[1] != nil {
			t.Fatalf("FinishBatch (try %d): %v %v", try, errs, err)
		}
	}
	for i, want := range []string{"sent", "failed"} {
		var status, outcome string
		if err := f.db.QueryRow(ctx, `SELECT t.status, s.outcome FROM targets t JOIN sends s ON s.target_id = t.id WHERE t.id = $1`,
			ts[i].ID).Scan(&status, &outcome); err != nil || status != want || outcome == "in_flight" {
			t.Errorf("target %d: %q %q %v, want %s and answered", ts[i].ID, status, outcome, err, want)
		}
	}
}

// The batch counts the account's windows once, from the ledger: with room
// for one more, one target is reserved and the others leave for the single
// path (which waits or hands back as Begin does).
func TestBeginBatchCountsWindowsOnce(t *testing.T) {
	t.Parallel()
	f := setup(t, store.Limit{Action: store.ActionInvite, Max: 3, Per: time.Hour})
	ctx := context.Background()
	now := time.Now().Add(time.Second)
	ts := queue(t, f, now, "w1", "w2", "w3", "w4")
	at, err := begin(f, ts[0].ID, now)
	if err != nil {
		t.Fatal(err)
	}
	finishSent(t, f, at, now)
	if _, err := begin(f, ts[1].ID, now); err != nil { // in flight: counts too
		t.Fatal(err)
	}
	res, err := f.st.BeginBatch(ctx, batchReq(f, now, 0, ts[2], ts[3]))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Attempts) != 1 || res.Attempts[0].Target.ID != ts[2].ID {
		t.Fatalf("reserved %+v, want only w3", res.Attempts)
	}
	if err := leftErr(res, ts[3].ID); !errors.Is(err, store.ErrSingle) {
		t.Errorf("w4 beyond the window: %v, want ErrSingle", err)
	}
	var n int
	if err := f.db.QueryRow(ctx, `SELECT count(*) FROM sends WHERE account_id = $1`, f.account).Scan(&n); err != nil || n != 3 {
		t.Errorf("ledger rows: %d %v, want 3 (the window's max)", n, err)
	}
}

// A paused account's batch hands its targets back, as Begin would.
func TestBeginBatchPausedAccount(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	now := time.Now().Add(time.Second)
	ts := queue(t, f, now, "p1", "p2")
	if err := f.st.ExtendPause(ctx, f.account, now.Add(2*time.Hour), "test"); err != nil {
		t.Fatal(err)
	}
	res, err := f.st.BeginBatch(ctx, batchReq(f, now, 0, ts...))
	if err != nil || len(res.Attempts) != 0 || len(res.Left) != 2 {
		t.Fatalf("batch of a paused account: %+v %v, want both left", res, err)
	}
	var nn *store.NotNowError
	if !errors.As(res.Left[0].Err, &nn) || !nn.Released {
		t.Fatalf("left: %v, want handed back", res.Left[0].Err)
	}
	var pending int
	if err := f.db.QueryRow(ctx, `SELECT count(*) FROM targets WHERE campaign_id = $1 AND status = 'pending'`, f.campaign).Scan(&pending); err != nil || pending != 2 {
		t.Errorf("pending targets: %d %v, want 2", pending, err)
	}
}

// A worker that dies mid-batch leaves its ledger rows in flight under its
// id: recovery closes them and queues each target again under a new task
// generation, whose reservation (the single path) settles first.
func TestBatchWorkerDiesMidBatch(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	now := time.Now().Add(time.Second)
	ts := queue(t, f, now, "d1", "d2", "d3")
	hb := f.st.HeartbeatConn()
	defer hb.Close(ctx)
	dead, err := hb.Register(ctx, "host", 1)
	if err != nil {
		t.Fatal(err)
	}
	res, err := f.st.BeginBatch(ctx, batchReq(f, now, dead, ts...))
	if err != nil || len(res.Attempts) != 3 {
		t.Fatalf("batch: %+v %v", res, err)
	}
	// One answer was recorded before the worker died.
	if errs, err := f.st.FinishBatch(ctx, []store.Finish{{SendID: res.Attempts[0].SendID, TargetID: ts[0].ID, AccountID: f.account,
		Now: now, Outcome: store.OutcomeSent, InvitationID: "i", TargetStatus: store.TargetSent}}); err != nil || errs[0] != nil {
		t.Fatal(errs, err)
	}
	if _, err := f.db.Exec(ctx, `UPDATE workers SET heartbeat_at = now() - interval '20 seconds' WHERE id = $1`, dead); err != nil {
		t.Fatal(err)
	}
	_, rec, err := f.st.RecoverDeadWorkers(ctx, now, 8*time.Second, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if len(rec) != 2 {
		t.Fatalf("recovered %+v, want d2 and d3", rec)
	}
	for _, r := range rec {
		if r.TaskGen != 1 || r.ID == ts[0].ID {
			t.Errorf("recovered %+v, want d2 or d3 at generation 1", r)
		}
		req := store.BeginRequest{TargetID: r.ID, Action: store.ActionInvite, Now: now, Lease: time.Minute,
			RequestTimeout: 10 * time.Second, HoldFor: time.Minute, TaskGen: 1, Settle: func(*store.Account) bool { return true }}
		at, err := f.st.Begin(ctx, req)
		if err != nil || !at.Settle || !at.Orphaned {
			t.Errorf("recovered target's reservation: %+v %v, want an orphaned, settling attempt", at, err)
		}
	}
}

// A batch applies the checks Begin makes of a person, in its own
// transaction: a do-not-contact entry the insert trigger missed skips the
// target there; a person connected to another account, or under the block
// after a withdrawal, leaves for Begin; every other invited person is
// claimed for the account (one owner per person) with the ledger row.
func TestBeginBatchChecksThePerson(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	now := time.Now().Add(time.Second)
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := f.db.Exec(ctx, sql, args...); err != nil {
			t.Fatalf("%v\n%s", err, sql)
		}
	}
	ts := queue(t, f, now, "p-free", "p-dnc", "p-other", "p-free2", "p-blocked")
	// The account withdrew its invitation to p-blocked an hour ago (another
	// target of the person, in the same campaign): the block after a
	// withdrawal holds.
	exec(`INSERT INTO targets (campaign_id, account_id, identifier, normalized_identifier, provider_id, status, invitation_id,
		finished_at, withdrawn_at) VALUES ($1, $2, 'p-blocked-before', 'p-blocked-before', 'p-blocked', 'sent', 'inv-1',
		$3::timestamptz - interval '30 days', $3::timestamptz - interval '1 hour')`, f.campaign, f.account, now)
	var other int64
	if err := f.db.QueryRow(ctx, `INSERT INTO accounts (name, provider, provider_account_id) VALUES ('other', 'unipile', 'u2')
		RETURNING id`).Scan(&other); err != nil {
		t.Fatal(err)
	}
	exec(`INSERT INTO person_owners (provider, provider_id, account_id, kind, since) VALUES ('unipile', 'p-other', $1, 'connected', $2)`,
		other, now.Add(-time.Hour))
	// An entry added while the skip trigger is off: only the batch's own
	// check can stop its target.
	exec(`ALTER TABLE do_not_contact DISABLE TRIGGER do_not_contact_skip`)
	exec(`INSERT INTO do_not_contact (provider_id, provider, reason) VALUES ('p-dnc', 'unipile', 'asked')`)
	exec(`ALTER TABLE do_not_contact ENABLE TRIGGER do_not_contact_skip`)

	res, err := f.st.BeginBatch(ctx, batchReq(f, now, 0, ts...))
	if err != nil {
		t.Fatal(err)
	}
	var reserved []string
	for _, at := range res.Attempts {
		reserved = append(reserved, at.Target.ProviderID)
	}
	if len(reserved) != 2 || reserved[0] != "p-free" || reserved[1] != "p-free2" {
		t.Fatalf("reserved %v, want p-free and p-free2", reserved)
	}
	if err := leftErr(res, ts[1].ID); !errors.Is(err, store.ErrStale) {
		t.Errorf("p-dnc: %v, want ErrStale (skipped in the batch)", err)
	}
	if err := leftErr(res, ts[2].ID); !errors.Is(err, store.ErrSingle) {
		t.Errorf("p-other, connected to another account: %v, want ErrSingle (Begin skips it)", err)
	}
	if err := leftErr(res, ts[4].ID); !errors.Is(err, store.ErrSingle) {
		t.Errorf("p-blocked, withdrawn an hour ago: %v, want ErrSingle (Begin makes it wait)", err)
	}
	var status, errType string
	if err := f.db.QueryRow(ctx, `SELECT status, coalesce(error_type, '') FROM targets WHERE id = $1`, ts[1].ID).Scan(&status, &errType); err != nil ||
		status != "skipped" || errType != store.ErrorTypeDoNotContact {
		t.Errorf("p-dnc after the batch: %q %q %v, want skipped by do-not-contact", status, errType, err)
	}
	var owners int
	if err := f.db.QueryRow(ctx, `SELECT count(*) FROM person_owners WHERE account_id = $1 AND kind = 'invited'
		AND provider_id IN ('p-free', 'p-free2')`, f.account).Scan(&owners); err != nil || owners != 2 {
		t.Errorf("claims of the reserved people: %d %v, want 2", owners, err)
	}
	// Begin then skips the person another account is connected to.
	_, err = f.st.Begin(ctx, store.BeginRequest{TargetID: ts[2].ID, Action: store.ActionInvite, Now: now, Lease: time.Minute,
		RequestTimeout: 10 * time.Second})
	if !errors.Is(err, store.ErrStale) {
		t.Fatalf("Begin of p-other: %v, want ErrStale (skipped)", err)
	}
	var reason string
	if err := f.db.QueryRow(ctx, `SELECT status, coalesce(last_error, '') FROM targets WHERE id = $1`, ts[2].ID).Scan(&status, &reason); err != nil ||
		status != "skipped" || !strings.Contains(reason, "connected to account other") {
		t.Errorf("p-other after Begin: %q %q %v", status, reason, err)
	}
}
