package scheduler

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/outreach-dev/outreach/store"
	"github.com/outreach-dev/outreach/store/storetest"
	"github.com/outreach-dev/outreach/worker"
)

// With BatchMax, an account without a gap gets its due first-attempt
// invitations in batch tasks of at most BatchMax targets; an account with
// a gap between invitations gets a task per target; a target recovered
// from a dead worker (a later task generation) is never batched.
func TestTickBatchesInvitations(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.BatchMax = 3 })
	bulk := e.account("bulk")
	paced := e.account("paced")
	if err := e.st.SetGaps(e.ctx, paced, []store.Gap{{Action: store.ActionInvite, Min: time.Second}}); err != nil {
		t.Fatal(err)
	}
	bc, pc := e.campaign(bulk, "b", store.CampaignActive), e.campaign(paced, "p", store.CampaignActive)
	bids := e.add(bc, members(1, 5)...)
	pids := e.add(pc, members(100, 2)...)
	// The fifth was recovered from a dead worker once: its own task.
	storetest.SetTaskGen(t, e.db, bids[4], 1)
	st := e.tick()
	if st.Enqueued != 7 {
		t.Errorf("enqueued %d, want 7 targets", st.Enqueued)
	}
	got := e.tasks()
	var batched [][]int64
	singles := map[string]bool{}
	for id, ti := range got {
		if ti.Type == worker.TypeInviteBatch {
			var p worker.BatchPayload
			if err := json.Unmarshal(ti.Payload, &p); err != nil || p.AccountID != bulk || ti.Queue != worker.QueueInvites {
				t.Fatalf("batch task %s: %+v %v", id, p, err)
			}
			var ids []int64
			for _, tp := range p.Targets {
				ids = append(ids, tp.TargetID)
			}
			batched = append(batched, ids)
			continue
		}
		singles[id] = true
	}
	slices.SortFunc(batched, func(a, b []int64) int { return int(a[0] - b[0]) })
	for _, id := range pids {
		if !singles[invite(id)] {
			t.Errorf("paced account's target %d: no task of its own in %v", id, singles)
		}
	}
	if !singles[worker.TaskIDGen(worker.TypeInvite, bids[4], 1)] {
		t.Errorf("recovered target %d: no task of its own in %v", bids[4], singles)
	}
	if len(batched) != 1 || !slices.Equal(batched[0], bids[:3]) || !singles[invite(bids[3])] {
		t.Errorf("batches %v and singles %v; want one batch of %v and a task of its own for %d", batched, singles, bids[:3], bids[3])
	}
}

func TestClaimChunks(t *testing.T) {
	want := func(ns ...int) []store.ClaimWant {
		var out []store.ClaimWant
		for i, n := range ns {
			out = append(out, store.ClaimWant{AccountID: int64(i + 1), N: n})
		}
		return out
	}
	sizes := func(chunks [][]store.ClaimWant) []int {
		var out []int
		for _, c := range chunks {
			out = append(out, len(c))
		}
		return out
	}
	for _, tc := range []struct {
		wants []store.ClaimWant
		sizes []int
	}{
		{nil, nil},
		{want(200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200), []int{10, 1}},
		{want(5000, 1, 1), []int{1, 2}},
		{want(1, 1, 5000), []int{2, 1}},
		{make([]store.ClaimWant, 1001), []int{500, 500, 1}},
	} {
		if got := sizes(claimChunks(tc.wants)); !slices.Equal(got, tc.sizes) {
			t.Errorf("claimChunks(%d wants) sizes %v, want %v", len(tc.wants), got, tc.sizes)
		}
	}
}
