package e2e

import (
	"testing"
	"time"

	"github.com/outreach-dev/outreach/internal/system"
	"github.com/outreach-dev/outreach/provider/simulator"
	"github.com/outreach-dev/outreach/scheduler"
	"github.com/outreach-dev/outreach/store"
	"github.com/outreach-dev/outreach/store/storetest"
	"github.com/outreach-dev/outreach/worker"
)

// TestWithdrawalsCompressedWeeks runs the whole system (scheduler, two
// workers, Redis, the simulator) over a compressed "three weeks":
// invitations pending past withdraw_after are withdrawn, within the
// account's withdraw limits and gap; the one the person answered is not;
// and a withdrawn person, targeted again by another campaign, is invited
// only after the block, so LinkedIn (the simulator, refusing for the same
// time) never answers cannot_resend_yet.
func TestWithdrawalsCompressedWeeks(t *testing.T) {
	t.Parallel()
	const (
		age   = 1 * time.Second
		block = 4 * time.Second
		gap   = 300 * time.Millisecond
		max   = 2
		per   = 2 * time.Second
	)
	h := newHarness(t, options{sim: simulator.Config{ResendCooldown: block}})
	li := h.account(accountSpec{name: "li",
		limits: []store.Limit{{Action: store.ActionWithdraw, Max: max, Per: per}},
		gaps:   []store.Gap{{Action: store.ActionWithdraw, Min: gap}}})
	storetest.SetWithdrawals(t, h.db, li, age, block)
	first := h.campaign(li, "")
	people := []string{"alice-a", "bob-b", "carl-c", "dora-d"}
	// The system runs with withdrawals off until every invitation is out
	// and bob answered; then they are on.
	storetest.SetWithdrawStale(t, h.db, first, false)
	h.targets(first, people...)
	h.startWithdrawing(2)
	h.waitTerminal(30 * time.Second)
	if !h.sim.Answer("li", simulator.ProviderID("bob-b")) {
		t.Fatal("no pending invitation to bob at the simulator")
	}
	storetest.SetWithdrawStale(t, h.db, first, true)
	h.waitFor("the stale invitations withdrawn, the answered one gone", 60*time.Second, func() bool {
		withdrawn, gone := storetest.CampaignWithdrawals(t, h.db, first)
		return withdrawn == 3 && gone == 1
	})
	bobWithdrawn := storetest.WithdrawnIn(t, h.db, first, "bob-b")
	cancels := 0
	for _, r := range h.sim.Requests() {
		if r.Op == "cancel" {
			cancels++
		}
	}
	if bobWithdrawn || cancels != 3 {
		t.Errorf("bob (answered) withdrawn: %v; %d cancels at the provider, want 3", bobWithdrawn, cancels)
	}

	// Another campaign targets alice again at once: she waits for the block.
	second, err := h.st.CreateCampaign(h.ctx, store.Campaign{Name: "second", AccountID: li})
	if err != nil {
		t.Fatal(err)
	}
	h.targets(second, "alice-a")
	h.waitFor("alice invited again by the second campaign", 60*time.Second, func() bool {
		return storetest.CampaignTargetStatus(t, h.db, second) == store.TargetSent
	})
	if refused := storetest.CountCalls(t, h.db, storetest.Calls{Account: li, ErrorPrefix: "cannot_resend"}); refused != 0 {
		t.Errorf("%d invitations refused with cannot_resend_yet, want 0 (the block waits them out)", refused)
	}
	alice := simulator.ProviderID("alice-a")
	var cancelled, reinvited time.Time
	for _, r := range h.sim.Requests() {
		switch {
		case r.Op == "cancel" && r.Outcome == "ok" && cancelled.IsZero():
			for _, inv := range h.invitesTo(alice) {
				if inv.InvitationID == r.Recipient {
					cancelled = r.Time
				}
			}
		case r.Op == "invite" && r.Recipient == alice && r.Outcome == simulator.OutcomeSent:
			reinvited = r.Time
		}
	}
	if !cancelled.IsZero() && reinvited.Before(cancelled.Add(block)) {
		t.Errorf("alice invited again at %s, within the block after her withdrawal at %s", reinvited, cancelled)
	}

	// Paced: each withdraw call after the gap from the answer to the one
	// before, and never more than max in any window of per.
	calls := storetest.CallTimes(t, h.db, li, store.ActionWithdraw)
	for i := 1; i < len(calls); i++ {
		if calls[i].Reserved.Before(calls[i-1].Answered.Add(gap)) {
			t.Errorf("withdraw call %d reserved at %s, before the gap after the answer at %s", i, calls[i].Reserved, calls[i-1].Answered)
		}
		if i >= max && calls[i].Answered.Sub(calls[i-max].Answered) < per {
			t.Errorf("%d withdrawals within %s (answers %s .. %s)", max+1, per, calls[i-max].Answered, calls[i].Answered)
		}
	}
}

// startWithdrawing is start with the scheduler looking for stale
// invitations on every tick.
func (h *harness) startWithdrawing(n int) {
	h.t.Helper()
	sys, err := system.New(h.ctx, system.Config{
		Store: h.st, Redis: h.rdb, Logger: h.log,
		Scheduler: &scheduler.Config{
			Horizon: 5 * time.Second, PollInterval: 200 * time.Millisecond,
			ReconcileInterval: time.Second, ReconcileGrace: 2 * time.Second,
			RequestTimeout: h.timeout, WithdrawInterval: time.Millisecond,
		},
		Workers: n,
		Worker:  worker.Config{Clients: h.Clients, Policy: h.policy, RequestTimeout: h.timeout, HoldFor: 5 * time.Second},
		Server: worker.ServerConfig{Concurrency: 10, DelayedTaskCheckInterval: 50 * time.Millisecond,
			ShutdownTimeout: 8 * time.Second},
	})
	if err != nil {
		h.t.Fatal(err)
	}
	h.sys, h.sched = sys, sys.Scheduler
	h.t.Cleanup(sys.Close)
	if err := sys.Run(h.ctx); err != nil {
		h.t.Fatal(err)
	}
}
