package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/outreach-dev/outreach/store"
)

// TestTargetReadsTaskGen checks that Store.Target reads the target's task
// generation: a target recovered from a dead worker is queued under a new
// generation, and Target says which, as RecoverDeadWorkers did.
func TestTargetReadsTaskGen(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	now := time.Now().Add(time.Second)
	ts := queue(t, f, now, "gen-1")
	hb := f.st.HeartbeatConn()
	defer hb.Close(ctx)
	dead, err := hb.Register(ctx, "host", 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.st.Begin(ctx, store.BeginRequest{TargetID: ts[0].ID, Action: store.ActionInvite, Now: now, Lease: time.Hour,
		RequestTimeout: 10 * time.Minute, HoldFor: time.Minute, WorkerID: dead}); err != nil {
		t.Fatal(err)
	}
	if got, err := f.st.Target(ctx, ts[0].ID); err != nil || got.TaskGen != 0 {
		t.Fatalf("before recovery: Target %+v, %v; want generation 0", got, err)
	}
	if _, err := f.db.Exec(ctx, `UPDATE workers SET heartbeat_at = now() - interval '20 seconds' WHERE id = $1`, dead); err != nil {
		t.Fatal(err)
	}
	_, rec, err := f.st.RecoverDeadWorkers(ctx, now, 8*time.Second, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if len(rec) != 1 || rec[0].TaskGen != 1 {
		t.Fatalf("recovered %+v, want one target at generation 1", rec)
	}
	got, err := f.st.Target(ctx, ts[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.TaskGen != 1 || got.Status != store.TargetQueued {
		t.Errorf("Target: status %s, generation %d; want queued at generation 1", got.Status, got.TaskGen)
	}
}
