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
)

// A compressed "three weeks": invitations become stale after withdrawAge
// and LinkedIn (the simulator) refuses a new one for withdrawBlock after a
// withdrawal.
const (
	withdrawAge   = 30 * time.Second
	withdrawBlock = 60 * time.Second
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
	f.exec(`UPDATE accounts SET withdraw_after = make_interval(secs => $2), withdraw_block = make_interval(secs => $3),
		count_outside_invites = $4 WHERE id = $1`, id, withdrawAge.Seconds(), withdrawBlock.Seconds(), countOutside)
	if err := f.st.SetLimits(f.ctx, id, []store.Limit{{Action: store.ActionWithdraw, Max: withdrawMax, Per: withdrawPer}}); err != nil {
		f.t.Fatal(err)
	}
	if err := f.st.SetGaps(f.ctx, id, []store.Gap{{Action: store.ActionWithdraw, Min: withdrawGap}}); err != nil {
		f.t.Fatal(err)
	}
	return id
}

func (f *fixture) exec(sql string, args ...any) {
	f.t.Helper()
	if _, err := f.db.Exec(f.ctx, sql, args...); err != nil {
		f.t.Fatal(err)
	}
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
		var plan *time.Time
		if err := f.db.QueryRow(f.ctx, `SELECT min(withdraw_next_at) FROM targets WHERE withdrawn_at IS NULL
			AND invitation_gone_at IS NULL AND status = 'sent'`).Scan(&plan); err != nil {
			f.t.Fatal(err)
		}
		if plan != nil && (next.IsZero() || plan.Before(next)) {
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

type withdrawState struct {
	Withdrawn, Gone bool
	Status          store.TargetStatus
}

func (f *fixture) withdrawState(id int64) withdrawState {
	f.t.Helper()
	var s withdrawState
	if err := f.db.QueryRow(f.ctx, `SELECT withdrawn_at IS NOT NULL, invitation_gone_at IS NOT NULL, status FROM targets WHERE id = $1`, id).
		Scan(&s.Withdrawn, &s.Gone, &s.Status); err != nil {
		f.t.Fatal(err)
	}
	return s
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
		rows, err := f.db.Query(f.ctx, `SELECT reserved_at, window_at FROM sends WHERE account_id = $1 AND action = 'withdraw' ORDER BY reserved_at`, acc)
		if err != nil {
			t.Fatal(err)
		}
		var calls [][2]time.Time
		for rows.Next() {
			var c [2]time.Time
			if err := rows.Scan(&c[0], &c[1]); err != nil {
				t.Fatal(err)
			}
			calls = append(calls, c)
		}
		rows.Close()
		for i := 1; i < len(calls); i++ {
			if calls[i][0].Before(calls[i-1][1].Add(withdrawGap)) {
				t.Errorf("account %d: withdraw call %d at %s, before the gap after the answer at %s", acc, i, calls[i][0], calls[i-1][1])
			}
		}
		var at []time.Time
		for _, c := range calls {
			at = append(at, c[1])
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
	var liOutside, li2Outside int
	var outsideAt time.Time
	if err := f.db.QueryRow(f.ctx, `SELECT count(*), max(window_at) FROM sends WHERE account_id = $1 AND action = 'invite' AND outcome = 'outside'
		AND invitation_id = $2`, li, outside).Scan(&liOutside, &outsideAt); err != nil {
		t.Fatal(err)
	}
	if err := f.db.QueryRow(f.ctx, `SELECT count(*) FROM sends WHERE account_id = $1 AND outcome = 'outside'`, li2).Scan(&li2Outside); err != nil {
		t.Fatal(err)
	}
	if liOutside != 1 || !outsideAt.Equal(t0.Add(-time.Hour).Truncate(time.Second)) {
		t.Errorf("li: %d outside invitations sent at %s, want 1 at %s", liOutside, outsideAt, t0.Add(-time.Hour).Truncate(time.Second))
	}
	if li2Outside != 0 {
		t.Errorf("li2 (not counting outside invitations): %d outside rows, want 0", li2Outside)
	}
	var otherRows int
	if err := f.db.QueryRow(f.ctx, `SELECT count(*) FROM sends WHERE account_id = $1 AND outcome = 'outside'`, li).Scan(&otherRows); err != nil {
		t.Fatal(err)
	}
	if otherRows != 1 {
		t.Errorf("li: %d outside rows, want 1 (its own invitations are not outside)", otherRows)
	}

	// The block: another campaign's target of a withdrawn person waits,
	// with the reason and until when, at planning and at reservation.
	// (The latest withdrawn person: the clock is still within its block.)
	var withdrawnAt time.Time
	var slug string
	if err := f.db.QueryRow(f.ctx, `SELECT withdrawn_at, identifier FROM targets WHERE account_id = $1 AND withdrawn_at IS NOT NULL
		ORDER BY withdrawn_at DESC LIMIT 1`, li).Scan(&withdrawnAt, &slug); err != nil {
		t.Fatal(err)
	}
	camp2, err := f.st.CreateCampaign(f.ctx, store.Campaign{Name: "second", AccountID: li})
	if err != nil {
		t.Fatal(err)
	}
	var again int64
	if err := f.db.QueryRow(f.ctx, `INSERT INTO targets (campaign_id, identifier, normalized_identifier, provider_id, status, next_attempt_at)
		VALUES ($1, $2, $2, $3, 'pending', $4) RETURNING id`, camp2, slug, simulator.ProviderID(slug), f.clock()).Scan(&again); err != nil {
		t.Fatalf("a new target of a withdrawn person: %v", err)
	}
	if _, err := f.st.HoldWithdrawnPeople(f.ctx, f.clock()); err != nil {
		t.Fatal(err)
	}
	var wait, reason string
	var until time.Time
	if err := f.db.QueryRow(f.ctx, `SELECT wait, reason, until FROM target_waits WHERE target_id = $1`, again).Scan(&wait, &reason, &until); err != nil {
		t.Fatal(err)
	}
	if !until.Equal(withdrawnAt.Add(withdrawBlock)) || reason == "" {
		t.Errorf("target of a withdrawn person waits %q (%s) until %s, want until %s with a reason", wait, reason, until, withdrawnAt.Add(withdrawBlock))
	}
	// The reservation checks again (a task already queued).
	f.exec(`UPDATE targets SET status = 'queued', next_attempt_at = $2 WHERE id = $1`, again, f.clock())
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
	f.exec(`UPDATE targets SET status = 'queued' WHERE id = $1`, again)
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
	var unsettled int
	if err := f.db.QueryRow(f.ctx, `SELECT count(*) FROM sends WHERE action = 'withdraw' AND outcome IN ('in_flight', 'unknown', 'error') AND settled_at IS NULL`).
		Scan(&unsettled); err != nil {
		t.Fatal(err)
	}
	if unsettled != 0 {
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
		f.exec(`UPDATE accounts SET withdraw_after = NULL, sent_list_every = '60 seconds', count_outside_invites = $2 WHERE id = $1`, id, id == li)
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
		var n int
		if err := f.db.QueryRow(f.ctx, `SELECT count(*) FROM sends WHERE account_id = $1 AND action = 'invite' AND outcome = 'outside'`, account).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
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
	var polls int
	if err := f.db.QueryRow(f.ctx, `SELECT count(*) FROM sends WHERE account_id = $1 AND action = 'poll' AND outcome = 'resolved'`, li).Scan(&polls); err != nil {
		t.Fatal(err)
	}
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
