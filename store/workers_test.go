package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/outreach-dev/outreach/store"
)

// A worker whose heartbeat stops is found dead: its in-flight send becomes
// 'unknown' and its target is queued again under a new task generation.
// The dead worker's old task is refused; the new one gets an attempt
// marked uncertain, which a provider able to settle turns into a lookup.
// A live worker (fresh heartbeat) is left alone, however long its call.
func TestRecoverDeadWorker(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	now := time.Now().Add(time.Second)
	ts := queue(t, f, now, "dead-1", "live-1")
	hb := f.st.HeartbeatConn()
	defer hb.Close(ctx)
	dead, err := hb.Register(ctx, "host", 1)
	if err != nil {
		t.Fatal(err)
	}
	live, err := hb.Register(ctx, "host", 2)
	if err != nil {
		t.Fatal(err)
	}
	req := func(id int64, gen int, worker int64) store.BeginRequest {
		return store.BeginRequest{TargetID: id, Action: store.ActionInvite, Now: now, Lease: time.Hour,
			RequestTimeout: 10 * time.Minute, HoldFor: time.Minute, TaskGen: gen, WorkerID: worker}
	}
	a1, err := f.st.Begin(ctx, req(ts[0].ID, 0, dead))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.st.Begin(ctx, req(ts[1].ID, 0, live)); err != nil {
		t.Fatal(err)
	}
	// The dead worker's heartbeat is 20 s old; the live one's fresh.
	if _, err := f.db.Exec(ctx, `UPDATE workers SET heartbeat_at = now() - interval '20 seconds' WHERE id = $1`, dead); err != nil {
		t.Fatal(err)
	}
	if err := hb.Heartbeat(ctx, live); err != nil {
		t.Fatal(err)
	}
	ds, rec, err := f.st.RecoverDeadWorkers(ctx, now, 8*time.Second, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 1 || ds[0].ID != dead || ds[0].Sends != 1 {
		t.Fatalf("dead workers %+v, want worker %d with 1 send", ds, dead)
	}
	if len(rec) != 1 || rec[0].ID != ts[0].ID || rec[0].TaskGen != 1 {
		t.Fatalf("recovered %+v, want target %d at generation 1", rec, ts[0].ID)
	}
	// Nothing more to do a second time.
	if ds, rec, err := f.st.RecoverDeadWorkers(ctx, now, 8*time.Second, 10*time.Minute); err != nil || len(ds)+len(rec) > 0 {
		t.Fatalf("second recovery: %+v %+v %v, want nothing", ds, rec, err)
	}
	if err := hb.Heartbeat(ctx, dead); !errors.Is(err, store.ErrRecovered) {
		t.Errorf("heartbeat of a recovered worker: %v, want ErrRecovered", err)
	}
	var outcome string
	if err := f.db.QueryRow(ctx, `SELECT outcome FROM sends WHERE id = $1`, a1.SendID).Scan(&outcome); err != nil || outcome != "unknown" {
		t.Fatalf("the dead worker's send: %q %v, want unknown", outcome, err)
	}
	// The dead worker's task (generation 0) is refused.
	if _, err := f.st.Begin(ctx, req(ts[0].ID, 0, live)); !errors.Is(err, store.ErrStale) {
		t.Errorf("Begin of the old task: %v, want ErrStale", err)
	}
	// The new task settles first when the provider can.
	r := req(ts[0].ID, 1, live)
	r.Settle = func(*store.Account) bool { return true }
	at, err := f.st.Begin(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	if !at.Orphaned || !at.Settle {
		t.Fatalf("attempt %+v, want orphaned and settling", at)
	}
	var action string
	if err := f.db.QueryRow(ctx, `SELECT action FROM sends WHERE id = $1`, at.SendID).Scan(&action); err != nil || action != "lookup" {
		t.Errorf("settling reservation: %q %v, want a lookup", action, err)
	}
}

// Finish is idempotent (a retry after a lost acknowledgement changes
// nothing), and a late answer of a worker taken for dead still reaches its
// target when nothing was tried since.
func TestFinishIdempotentAndLateAnswer(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	now := time.Now().Add(time.Second)
	ts := queue(t, f, now, "late-1")
	hb := f.st.HeartbeatConn()
	defer hb.Close(ctx)
	w, err := hb.Register(ctx, "host", 1)
	if err != nil {
		t.Fatal(err)
	}
	at, err := f.st.Begin(ctx, store.BeginRequest{TargetID: ts[0].ID, Action: store.ActionInvite, Now: now, Lease: time.Hour,
		RequestTimeout: time.Minute, HoldFor: time.Minute, WorkerID: w})
	if err != nil {
		t.Fatal(err)
	}
	// Taken for dead while its answer waits for Postgres.
	if err := hb.Stopped(ctx, w); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.st.RecoverDeadWorkers(ctx, now, 8*time.Second, time.Minute); err != nil {
		t.Fatal(err)
	}
	fin := store.Finish{SendID: at.SendID, TargetID: ts[0].ID, AccountID: f.account, Now: now.Add(time.Second),
		Outcome: store.OutcomeSent, InvitationID: "inv-1", TargetStatus: store.TargetSent}
	for i := 0; i < 2; i++ {
		if err := f.st.Finish(ctx, fin); err != nil {
			t.Fatalf("finish #%d: %v", i+1, err)
		}
	}
	tg, err := f.st.Target(ctx, ts[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if tg.Status != store.TargetSent || tg.InvitationID != "inv-1" {
		t.Errorf("target %s %q, want sent with inv-1", tg.Status, tg.InvitationID)
	}
}

// An answer whose reservation the database lost (a crash or failover that
// undid an acknowledged commit) is still recorded: a new ledger row, and
// the waiting target takes it.
func TestFinishAfterLostReservation(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	now := time.Now().Add(time.Second)
	ts := queue(t, f, now, "lost-1")
	at, err := begin(f, ts[0].ID, now)
	if err != nil {
		t.Fatal(err)
	}
	// What a lost commit leaves: no ledger row, the target queued again.
	if _, err := f.db.Exec(ctx, `UPDATE targets SET status = 'queued', current_send_id = NULL, locked_until = NULL WHERE id = $1;`, ts[0].ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.db.Exec(ctx, `DELETE FROM sends WHERE id = $1`, at.SendID); err != nil {
		t.Fatal(err)
	}
	if err := f.st.Finish(ctx, store.Finish{SendID: at.SendID, TargetID: ts[0].ID, AccountID: f.account, Now: now,
		Action: store.ActionInvite, Outcome: store.OutcomeSent, InvitationID: "inv-lost", TargetStatus: store.TargetSent}); err != nil {
		t.Fatal(err)
	}
	tg, err := f.st.Target(ctx, ts[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := f.db.QueryRow(ctx, `SELECT count(*) FROM sends WHERE target_id = $1 AND outcome = 'sent' AND invitation_id = 'inv-lost'`,
		ts[0].ID).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if tg.Status != store.TargetSent || tg.InvitationID != "inv-lost" || n != 1 {
		t.Errorf("target %s %q, %d ledger rows; want sent with inv-lost, 1 row", tg.Status, tg.InvitationID, n)
	}
}
