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

// The batchable invitations of several accounts whose slots lie within
// BatchSpread share a batch, run at its latest slot (none before its own),
// of at most BatchMax targets; a lone one, a retried one and one of an
// account with a gap get tasks of their own.
func TestBatchTasksAcrossAccounts(t *testing.T) {
	s := &Scheduler{cfg: Config{BatchMax: 3, BatchSpread: 100 * time.Millisecond}}
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	ms := func(n int) time.Time { return now.Add(time.Duration(n) * time.Millisecond) }
	a := &store.Account{ID: 1}
	b := &store.Account{ID: 2}
	gapped := &store.Account{ID: 3, Gaps: []store.Gap{{Action: store.ActionInvite, Min: time.Minute}}}
	if gapped.Pace(store.ActionInvite).Gap.IsZero() {
		t.Fatal("the gapped account has no gap")
	}
	tg := func(id, account int64, attempts int) *store.Target {
		return &store.Target{ID: id, AccountID: account, Attempts: attempts}
	}
	claimed := map[int64][]*store.Target{
		1: {tg(10, 1, 0), tg(11, 1, 0), tg(12, 1, 0), tg(13, 1, 1)},
		2: {tg(20, 2, 0), tg(21, 2, 0)},
		3: {tg(30, 3, 0)},
	}
	plans := map[int64]planned{
		1: {account: a, slots: []time.Time{ms(0), ms(60), ms(1000), ms(0)}},
		2: {account: b, slots: []time.Time{ms(20), ms(90)}},
		3: {account: gapped, slots: []time.Time{ms(0)}},
	}
	var st TickStats
	tasks := s.batchTasks(worker.TypeInvite, claimed, plans, now, &st)
	type task struct {
		at      time.Time
		ids     []int64
		batched bool
	}
	var got []task
	slots := map[int64]time.Time{}
	for id, ts := range claimed {
		for j, t := range ts {
			slots[t.ID] = plans[id].slots[j]
		}
	}
	for _, pt := range tasks {
		k := task{at: pt.at, batched: pt.batch}
		for _, tg := range pt.targets {
			k.ids = append(k.ids, tg.ID)
			if pt.at.Before(slots[tg.ID]) {
				t.Errorf("target %d runs at %v, before its slot %v", tg.ID, pt.at, slots[tg.ID])
			}
		}
		got = append(got, k)
	}
	want := []task{
		// 10 (a, 0 ms), 20 (b, 20 ms), 11 (a, 60 ms): the most a batch takes.
		{ms(60), []int64{10, 20, 11}, true},
		// 21 (b, 90 ms) alone: within 100 ms of 10's batch, which is full.
		{ms(90), []int64{21}, false},
		{ms(1000), []int64{12}, false},
	}
	for _, w := range want {
		if !slices.ContainsFunc(got, func(g task) bool { return g.at.Equal(w.at) && slices.Equal(g.ids, w.ids) && g.batched == w.batched }) {
			t.Errorf("no task %+v in %+v", w, got)
		}
	}
	for _, own := range []int64{13, 30} { // retried; of an account with a gap
		if !slices.ContainsFunc(got, func(g task) bool { return !g.batched && slices.Equal(g.ids, []int64{own}) }) {
			t.Errorf("target %d: no task of its own in %+v", own, got)
		}
	}
	if len(got) != 5 {
		t.Errorf("%d tasks %+v, want 5", len(got), got)
	}
}
