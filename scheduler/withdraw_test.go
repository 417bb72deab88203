package scheduler

import (
	"strings"
	"testing"
	"time"

	"github.com/outreach-dev/outreach/store"
	"github.com/outreach-dev/outreach/store/storetest"
	"github.com/outreach-dev/outreach/worker"
)

// TestTickPlansWithdrawals checks the tick's withdrawal step against
// Postgres and Redis: a stale invitation (older than its account's
// withdraw_after, or its campaign's own) gets one withdrawal task in the
// withdrawals queue, under its deterministic id, once; a fresh one, one of
// a campaign that does not withdraw and a withdrawn one get none; a task
// lost with Redis is planned again after the requeue time (with the
// one that became stale meanwhile); and a new
// target of a person the account withdrew waits for the block with its
// reason instead of being planned for an invitation.
func TestTickPlansWithdrawals(t *testing.T) {
	e := newEnv(t, nil)
	a := e.account("a")
	storetest.SetWithdrawals(t, e.db, a, 30*time.Second, time.Hour)
	c1 := e.campaign(a, "c1", store.CampaignActive)
	off := e.campaign(a, "off", store.CampaignActive)
	own := e.campaign(a, "own", store.CampaignActive)
	storetest.SetWithdrawStale(t, e.db, off, false)
	storetest.SetCampaignWithdrawAfter(t, e.db, own, time.Hour)
	ids := e.add(c1, members(0, 4)...)
	offIDs := e.add(off, member(10))
	ownIDs := e.add(own, member(20))
	now := e.clock()
	sent := func(id int64, age time.Duration) {
		storetest.MarkInvited(t, e.db, id, now.Add(-age))
	}
	stale, fresh, withdrawn := ids[0], ids[1], ids[2]
	sent(stale, time.Minute)
	sent(ids[3], 2*time.Minute)
	sent(fresh, 10*time.Second)
	sent(withdrawn, time.Minute)
	storetest.MarkWithdrawn(t, e.db, withdrawn, now.Add(-time.Second))
	sent(offIDs[0], time.Minute)
	sent(ownIDs[0], time.Minute)
	// Another campaign's target of the withdrawn person.
	later := e.campaign(a, "later", store.CampaignActive)
	again := e.add(later, member(2))[0]

	e.tick()
	want := map[string]bool{worker.WithdrawTaskID(stale): true, worker.WithdrawTaskID(ids[3]): true}
	check := func(when string) {
		t.Helper()
		got := map[string]bool{}
		for id, ti := range e.tasks() {
			if strings.HasPrefix(id, "withdraw:") {
				if ti.Queue != worker.QueueWithdrawals || ti.Type != worker.TypeWithdraw {
					t.Errorf("%s: task %s in queue %s of type %s", when, id, ti.Queue, ti.Type)
				}
				got[id] = true
			} else if ti.Type != worker.TypePoll { // the account's relation polls are planned too
				t.Errorf("%s: unexpected task %s (the withdrawn person's target must wait)", when, id)
			}
		}
		if len(got) != len(want) {
			t.Errorf("%s: withdrawal tasks %v, want %v", when, got, want)
		}
		for id := range want {
			if !got[id] {
				t.Errorf("%s: no task %s", when, id)
			}
		}
	}
	check("first tick")
	status := storetest.StatusOf(t, e.db, again)
	var reason string
	until := time.Unix(0, 0)
	if w, ok := storetest.WaitOf(t, e.db, again); ok {
		reason = w.Reason
		if w.Until != nil {
			until = *w.Until
		}
	}
	if status != "pending" || !strings.Contains(reason, "withdrawn") || !until.Equal(now.Add(-time.Second).Add(time.Hour)) {
		t.Errorf("target of a withdrawn person: %s, %q until %s; want pending, waiting for the block until %s",
			status, reason, until, now.Add(-time.Second).Add(time.Hour))
	}

	e.tick()
	check("second tick")

	// Redis loses the tasks: planned again once the requeue time is over.
	if err := e.rdb.FlushAll(e.ctx).Err(); err != nil {
		t.Fatal(err)
	}
	e.advance(withdrawRequeue + time.Second)
	e.reconcile(time.Minute) // as Run does: the queues are registered again
	e.tick()
	want[worker.WithdrawTaskID(fresh)] = true // stale by now
	check("after a Redis loss")
}
