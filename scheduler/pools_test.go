package scheduler

import (
	"testing"
	"time"

	"github.com/outreach-dev/outreach/store"
	"github.com/outreach-dev/outreach/store/storetest"
)

// A pool's targets go, when planned, to the senders with slots now, in
// proportion to their slots: none to a sender whose window is full. When
// no sender has a slot, the pool's targets wait and say so. A disabled
// sender's waiting targets go back to the pool.
func TestTickSpreadsPoolTargetsBySlots(t *testing.T) {
	// Hourly windows, planned 50 minutes ahead: the waits end well after
	// the database's clock, whatever the test's own clock says.
	e := newEnv(t, func(c *Config) { c.Horizon = 50 * time.Minute })
	big, small, full := e.account("big"), e.account("small"), e.account("full")
	for id, l := range map[int64]store.Limit{
		big:   {Action: store.ActionInvite, Max: 4, Per: time.Hour},
		small: {Action: store.ActionInvite, Max: 2, Per: time.Hour},
		full:  {Action: store.ActionInvite, Max: 1, Per: 3 * time.Hour},
	} {
		if err := e.st.SetLimits(e.ctx, id, []store.Limit{l}); err != nil {
			t.Fatal(err)
		}
	}
	// The full sender sent its one invitation of the hour.
	storetest.AddSend(t, e.db, storetest.Send{Account: full, Action: store.ActionInvite, Reserved: e.clock().Add(-time.Minute),
		Answered: e.clock().Add(-time.Minute), Outcome: store.OutcomeSent})
	campaign, err := e.st.CreatePoolCampaign(e.ctx, store.Campaign{Name: "pool"}, []int64{big, small, full})
	if err != nil {
		t.Fatal(err)
	}
	e.add(campaign, members(1, 20)...)

	e.tick()
	queued := func() map[int64]int { return storetest.QueuedBySender(t, e.db) }
	q := queued()
	t.Logf("queued by sender after one tick: big %d, small %d, full %d", q[big], q[small], q[full])
	if q[full] != 0 || q[small] == 0 || q[big] <= q[small] {
		t.Errorf("queued by sender: big %d, small %d, full %d; want none for the full sender and more for the bigger budget",
			q[big], q[small], q[full])
	}
	// They are sent: every sender's window is full, the pool waits and
	// says until when.
	storetest.SendQueued(t, e.db, e.clock())
	e.tick()
	pw := storetest.PoolWait(t, e.db, campaign)
	wait, reason, until := pw.Wait, pw.Reason, pw.Until
	if wait != "pool" || reason != "pool out of budget" || until == nil || !until.After(e.clock()) {
		t.Errorf("an unassigned target of a pool without slots waits %q: %q until %v", wait, reason, until)
	}
	// An hour later the windows are free again (not the full sender's);
	// the small sender is disabled with its targets handed back: they go
	// back to the pool, due at once.
	e.advance(time.Hour + time.Minute)
	e.tick()
	if q := queued(); q[big] != 4 || q[small] != 2 {
		t.Fatalf("queued an hour later: %v; want 4 and 2 again", q)
	}
	storetest.HandBackQueued(t, e.db, small, "account disabled", e.clock().Add(time.Hour))
	if err := e.st.DisableAccount(e.ctx, small, "test"); err != nil {
		t.Fatal(err)
	}
	e.tick()
	held, back := storetest.PendingOf(t, e.db, small), storetest.DueInPool(t, e.db, e.clock().Add(time.Minute))
	if held != 0 || back != 20-6-4 {
		t.Errorf("after the small sender was disabled: it holds %d waiting targets, %d are due in the pool; want 0 and %d",
			held, back, 20-6-4)
	}
}
