package worker

import (
	"errors"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/outreach-dev/outreach/provider"
	"github.com/outreach-dev/outreach/provider/simulator"
	"github.com/outreach-dev/outreach/store"
	"github.com/outreach-dev/outreach/store/storetest"
)

// A compressed "three weeks": invitations become stale after withdrawAge
// and LinkedIn (the simulator) refuses a new one for withdrawBlock after a
// withdrawal. The block outlasts the withdrawals of a test (three windows of
// withdrawPer at most), so that the clock is still within the block of the
// latest withdrawal whichever order the withdrawal tasks ran in (with 60 s,
// the accepted invitation's task running last moved the clock past it).
const (
	withdrawAge   = 30 * time.Second
	withdrawBlock = 5 * time.Minute
	// The account's own pacing of withdrawals: a gap of withdrawGap and at
	// most withdrawMax per withdrawPer.
	withdrawGap = 10 * time.Second
	withdrawMax = 2
	withdrawPer = 100 * time.Second
)

// withdrawFixture is a fixture whose simulator shares its clock.
func withdrawFixture(t *testing.T) *fixture {
	var f *fixture
	f = newFixture(t, simulator.Config{ResendCooldown: withdrawBlock, Now: func() time.Time { return f.clock() }})
	return f
}

// withdrawAccount creates an account with compressed withdrawal settings
// and pacing of withdrawals, counting outside invitations or not.
func (f *fixture) withdrawAccount(name string, countOutside bool) int64 {
	f.t.Helper()
	id := f.account(name, "default")
	storetest.SetWithdrawals(f.t, f.db, id, withdrawAge, withdrawBlock)
	storetest.SetSentListReads(f.t, f.db, id, countOutside, 0)
	if err := f.st.SetLimits(f.ctx, id, []store.Limit{{Action: store.ActionWithdraw, Max: withdrawMax, Per: withdrawPer}}); err != nil {
		f.t.Fatal(err)
	}
	if err := f.st.SetGaps(f.ctx, id, []store.Gap{{Action: store.ActionWithdraw, Min: withdrawGap}}); err != nil {
		f.t.Fatal(err)
	}
	return id
}

// invite sends the target's invitation through the worker.
func (f *fixture) invite(w *Worker, id int64) {
	f.t.Helper()
	if err := f.run(w, TypeInvite, id); err != nil {
		f.t.Fatalf("invite target %d: %v", id, err)
	}
	if s := f.state(id); s.Status != store.TargetSent {
		f.t.Fatalf("target %d after its invitation: %+v, want sent", id, s)
	}
}

// withdrawAll plays the scheduler and asynq for withdrawals until none is
// left to plan: it plans them at the clock, runs each due task, keeps
// snoozed tasks for later, and moves the clock to the next moment anything
// is due. It returns the planned withdrawals.
func (f *fixture) withdrawAll(w *Worker) int {
	f.t.Helper()
	tasks := map[int64]time.Time{} // target -> when its task runs
	planned := map[int64]bool{}
	for round := 0; round < 500; round++ {
		now := f.clock()
		ids, err := f.st.PlanWithdrawals(f.ctx, now, 100, 10*time.Minute, []provider.Name{provider.Unipile})
		if err != nil {
			f.t.Fatal(err)
		}
		for _, id := range ids {
			if _, ok := tasks[id]; !ok {
				tasks[id] = now
				planned[id] = true
			}
		}
		ran := false
		for id, at := range tasks {
			if at.After(now) {
				continue
			}
			ran = true
			task, _ := NewWithdrawTask(id)
			err := w.HandleWithdraw(f.ctx, task)
			var sn *snooze
			switch {
			case errors.As(err, &sn):
				tasks[id] = now.Add(max(sn.after, time.Millisecond))
			case err != nil:
				f.t.Fatalf("withdraw target %d: %v", id, err)
			default:
				delete(tasks, id)
			}
		}
		if ran {
			continue
		}
		// Nothing due: move to the next task or planned withdrawal.
		var next time.Time
		for _, at := range tasks {
			if next.IsZero() || at.Before(next) {
				next = at
			}
		}
		if plan := storetest.NextWithdrawal(f.t, f.db); plan != nil && (next.IsZero() || plan.Before(next)) {
			next = *plan
		}
		if next.IsZero() {
			return len(planned)
		}
		if next.Before(now.Add(time.Millisecond)) {
			next = now.Add(time.Millisecond)
		}
		f.setClock(next)
	}
	f.t.Fatal("withdrawals did not settle in 500 rounds")
	return len(planned)
}

func (f *fixture) withdrawState(id int64) storetest.Withdrawal {
	f.t.Helper()
	return storetest.WithdrawalOf(f.t, f.db, id)
}

// TestWithdrawStaleInvitations runs a compressed three weeks: stale
// invitations are withdrawn, paced by the account's withdraw limits and
// gap; an answered (accepted) one is not withdrawn; the withdrawn people
// are not invited again by another campaign within the block, and are
// after it; invitations sent outside outreach count against the
// invitation limits of the account that counts them, once, and not for
// the one that does not.
func TestWithdrawStaleInvitations(t *testing.T) {
	t.Parallel()
	f := withdrawFixture(t)
	w := f.worker(Config{ShortWait: time.Nanosecond})
	li := f.withdrawAccount("li", true)
	li2 := f.withdrawAccount("li2", false)
	t0 := f.clock()

	slugs := []string{"ann-a", "bob-b", "cid-c", "dee-d", "eve-e"}
	var ids []int64
	for _, s := range slugs {
		id := f.target(li, s, true)
		f.invite(w, id)
		ids = append(ids, id)
	}
	other := f.target(li2, "fay-f", true)
	f.invite(w, other)
	accepted := ids[1]
	if !f.sim.Answer("li", simulator.ProviderID("bob-b")) {
		t.Fatal("the simulator had no pending invitation to accept")
	}
	outside := f.sim.InviteOutside("li", simulator.ProviderID("out-side"), t0.Add(-time.Hour))
	f.sim.InviteOutside("li2", simulator.ProviderID("out-side"), t0.Add(-time.Hour))

	// Not stale yet: nothing is planned.
	f.setClock(t0.Add(withdrawAge - time.Second))
	if n := f.withdrawAll(w); n != 0 {
		t.Fatalf("%d withdrawals planned before the invitations were stale", n)
	}
	f.setClock(t0.Add(withdrawAge + time.Second))
	if n := f.withdrawAll(w); n != len(ids)+1 {
		t.Errorf("%d withdrawals planned, want %d", n, len(ids)+1)
	}
	for _, id := range append(ids, other) {
		s := f.withdrawState(id)
		switch {
		case s.Status != store.TargetSent:
			t.Errorf("target %d: status %s, want sent kept", id, s.Status)
		case id == accepted && (s.Withdrawn || !s.Gone):
			t.Errorf("accepted target %d: %+v, want gone, not withdrawn", id, s)
		case id != accepted && !s.Withdrawn:
			t.Errorf("target %d: %+v, want withdrawn", id, s)
		}
	}
	if n := f.simRequests("cancel"); n != len(ids) {
		t.Errorf("%d cancels at the provider, want %d (one per stale pending invitation, none for the accepted)", n, len(ids))
	}

	// Paced: every withdraw call of an account waited for the gap after
	// the answer to the one before, and no window held more than its max.
	for _, acc := range []int64{li, li2} {
		calls := storetest.CallTimes(t, f.db, acc, store.ActionWithdraw)
		for i := 1; i < len(calls); i++ {
			if calls[i].Reserved.Before(calls[i-1].Answered.Add(withdrawGap)) {
				t.Errorf("account %d: withdraw call %d at %s, before the gap after the answer at %s", acc, i, calls[i].Reserved, calls[i-1].Answered)
			}
		}
		var at []time.Time
		for _, c := range calls {
			at = append(at, c.Answered)
		}
		sort.Slice(at, func(i, j int) bool { return at[i].Before(at[j]) })
		for i := withdrawMax; i < len(at); i++ {
			if at[i].Sub(at[i-withdrawMax]) < withdrawPer {
				t.Errorf("account %d: %d withdrawals within %s (ending %s)", acc, withdrawMax+1, withdrawPer, at[i])
			}
		}
	}

	// Outside invitations: counted once for li (which read its list five
	// times), as an invitation sent when LinkedIn says; not for li2.
	liOutside, outsideAt := storetest.LatestAnswer(t, f.db, storetest.Calls{Account: li, Actions: []store.Action{store.ActionInvite},
		Outcomes: []store.Outcome{store.OutcomeOutside}, InvitationID: outside})
	li2Outside := storetest.CountCalls(t, f.db, storetest.Calls{Account: li2, Outcomes: []store.Outcome{store.OutcomeOutside}})
	if liOutside != 1 || !outsideAt.Equal(t0.Add(-time.Hour).Truncate(time.Second)) {
		t.Errorf("li: %d outside invitations sent at %s, want 1 at %s", liOutside, outsideAt, t0.Add(-time.Hour).Truncate(time.Second))
	}
	if li2Outside != 0 {
		t.Errorf("li2 (not counting outside invitations): %d outside rows, want 0", li2Outside)
	}
	if otherRows := storetest.CountCalls(t, f.db, storetest.Calls{Account: li, Outcomes: []store.Outcome{store.OutcomeOutside}}); otherRows != 1 {
		t.Errorf("li: %d outside rows, want 1 (its own invitations are not outside)", otherRows)
	}

	// The block: another campaign's target of a withdrawn person waits,
	// with the reason and until when, at planning and at reservation.
	// (The latest withdrawn person: the clock is still within its block.)
	withdrawnAt, slug := storetest.LatestWithdrawn(t, f.db, li)
	camp2, err := f.st.CreateCampaign(f.ctx, store.Campaign{Name: "second", AccountID: li})
	if err != nil {
		t.Fatal(err)
	}
	again := storetest.AddResolvedTarget(t, f.db, camp2, slug, simulator.ProviderID(slug), f.clock())
	if _, err := f.st.HoldWithdrawnPeople(f.ctx, f.clock()); err != nil {
		t.Fatal(err)
	}
	wt, ok := storetest.WaitOf(t, f.db, again)
	if !ok || wt.Until == nil {
		t.Fatalf("target of a withdrawn person: no wait with an end in target_waits (%+v)", wt)
	}
	if !wt.Until.Equal(withdrawnAt.Add(withdrawBlock)) || wt.Reason == "" {
		t.Errorf("target of a withdrawn person waits %q (%s) until %s, want until %s with a reason", wt.Wait, wt.Reason, *wt.Until, withdrawnAt.Add(withdrawBlock))
	}
	// The reservation checks again (a task already queued).
	storetest.QueueDue(t, f.db, again, f.clock())
	invites := f.simRequests("invite")
	if err := f.run(w, TypeInvite, again); err != nil {
		t.Fatal(err)
	}
	if s := f.state(again); s.Status != store.TargetPending || !s.Next.Equal(withdrawnAt.Add(withdrawBlock)) {
		t.Errorf("queued target of a withdrawn person: %+v, want pending until %s", s, withdrawnAt.Add(withdrawBlock))
	}
	if n := f.simRequests("invite"); n != invites {
		t.Errorf("%d invitations sent within the block, want none", n-invites)
	}
	// After the block it is invited, and LinkedIn takes it.
	f.setClock(withdrawnAt.Add(withdrawBlock + time.Second))
	storetest.Queue(t, f.db, again)
	f.invite(w, again)
}

// TestWithdrawSettlesLostAnswer checks that a withdrawal whose answer was
// lost (the worker died after the cancel) is settled from the sent list:
// the target is recorded withdrawn and the provider gets no second cancel;
// and that one whose call never reached the provider is made again.
func TestWithdrawSettlesLostAnswer(t *testing.T) {
	t.Parallel()
	f := withdrawFixture(t)
	w := f.worker(Config{ShortWait: time.Nanosecond})
	li := f.withdrawAccount("li", false)
	done := f.target(li, "ann-a", true)
	lost := f.target(li, "bob-b", true)
	f.invite(w, done)
	f.invite(w, lost)
	f.setClock(f.clock().Add(withdrawAge + time.Second))

	for _, id := range []int64{done, lost} {
		if _, err := f.st.BeginWithdraw(f.ctx, store.WithdrawRequest{TargetID: id, Now: f.clock(), Lease: w.cfg.Lease,
			RequestTimeout: w.cfg.RequestTimeout, HoldFor: time.Hour}); err != nil {
			t.Fatalf("reserve withdrawal of %d: %v", id, err)
		}
		if id == done {
			// The call went out; the worker died before recording it.
			if !f.sim.Withdraw("li", simulator.ProviderID("ann-a")) {
				t.Fatal("nothing to withdraw at the simulator")
			}
		} // else the worker died before the call.
		// The scheduler closes the rows of workers gone past their lease.
		f.setClock(f.clock().Add(w.cfg.Lease + withdrawPer))
		if _, err := f.st.ExpireOrphanSends(f.ctx, f.clock(), w.cfg.Lease, w.cfg.RequestTimeout); err != nil {
			t.Fatal(err)
		}
	}
	cancels := f.simRequests("cancel")
	f.withdrawAll(w)
	if s := f.withdrawState(done); !s.Withdrawn || s.Gone {
		t.Errorf("target whose withdrawal's answer was lost: %+v, want withdrawn (settled)", s)
	}
	if s := f.withdrawState(lost); !s.Withdrawn {
		t.Errorf("target whose withdrawal never reached the provider: %+v, want withdrawn", s)
	}
	if n := f.simRequests("cancel") - cancels; n != 1 {
		t.Errorf("%d cancels after recovery, want 1 (only the one that never went out)", n)
	}
	if unsettled := storetest.CountCalls(t, f.db, storetest.Calls{Actions: []store.Action{store.ActionWithdraw},
		Outcomes: []store.Outcome{store.OutcomeInFlight, store.OutcomeUnknown, store.OutcomeError}, Unsettled: true}); unsettled != 0 {
		t.Errorf("%d withdraw ledger rows left uncertain, want 0", unsettled)
	}
}

// TestSentListCountsOutsideInvites checks the read of the sent list of an
// account that counts invitations sent outside outreach, without any
// withdrawal: planned only for such an account and only once per
// sent_list_every, each outside invitation is written to the ledger once
// (its own invitations are not), and the account's weekly invitation limit
// then counts them; an account that does not count them sends as before.
func TestSentListCountsOutsideInvites(t *testing.T) {
	t.Parallel()
	f := withdrawFixture(t)
	w := f.worker(Config{ShortWait: time.Nanosecond})
	week := []store.Limit{{Action: store.ActionInvite, Max: 3, Per: 7 * 24 * time.Hour}}
	li := f.account("li", "default")
	li2 := f.account("li2", "default")
	for _, id := range []int64{li, li2} {
		storetest.StopWithdrawals(t, f.db, id)
		storetest.SetSentListReads(t, f.db, id, id == li, 60*time.Second)
		if err := f.st.SetLimits(f.ctx, id, week); err != nil {
			t.Fatal(err)
		}
		f.invite(w, f.target(id, "own-"+strconv.FormatInt(id, 10), true))
	}
	t0 := f.clock()
	f.sim.InviteOutside("li", simulator.ProviderID("out-one"), t0.Add(-2*time.Hour))
	f.sim.InviteOutside("li2", simulator.ProviderID("out-one"), t0.Add(-2*time.Hour))

	read := func(want ...int64) {
		t.Helper()
		ids, err := f.st.PlanSentListReads(f.ctx, f.clock(), 10*time.Minute, []provider.Name{provider.Unipile})
		if err != nil {
			t.Fatal(err)
		}
		if len(ids) != len(want) || len(ids) == 1 && ids[0] != want[0] {
			t.Fatalf("sent list reads planned for %v, want %v", ids, want)
		}
		for _, id := range ids {
			task, _ := NewSentListTask(id)
			if err := w.HandleSentList(f.ctx, task); err != nil {
				t.Fatalf("read the sent list of %d: %v", id, err)
			}
		}
	}
	outside := func(account int64) int {
		t.Helper()
		return storetest.CountCalls(t, f.db, storetest.Calls{Account: account, Actions: []store.Action{store.ActionInvite},
			Outcomes: []store.Outcome{store.OutcomeOutside}})
	}
	read(li)
	read() // read a moment ago
	if n := outside(li); n != 1 {
		t.Errorf("li: %d outside invitations recorded, want 1", n)
	}
	f.sim.InviteOutside("li", simulator.ProviderID("out-two"), t0)
	f.setClock(t0.Add(61 * time.Second))
	read(li)
	if n := outside(li); n != 2 {
		t.Errorf("li after a second read: %d outside invitations recorded, want 2 (each once)", n)
	}
	if n := outside(li2); n != 0 {
		t.Errorf("li2 (not counting): %d outside invitations recorded, want 0", n)
	}
	polls := storetest.CountCalls(t, f.db, storetest.Calls{Account: li, Actions: []store.Action{store.ActionPoll},
		Outcomes: []store.Outcome{store.OutcomeResolved}})
	if polls != 2 || f.simRequests("list_sent") != 2 {
		t.Errorf("%d poll rows in the ledger and %d list requests, want 2 each", polls, f.simRequests("list_sent"))
	}

	// The weekly limit of 3: li has sent one and two went outside, so the
	// next waits for the window; li2 has room for two more.
	next := f.target(li, "next-li", true)
	if err := f.run(w, TypeInvite, next); err != nil {
		t.Fatal(err)
	}
	if s := f.state(next); s.Status == store.TargetSent || !strings.Contains(s.LastError, "limit") {
		t.Errorf("li's next invitation: %+v, want it to wait for the weekly limit", s)
	}
	f.invite(w, f.target(li2, "next-li2", true))
}
