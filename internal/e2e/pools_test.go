package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/outreach-dev/outreach/scheduler"
	"github.com/outreach-dev/outreach/store"
	"github.com/outreach-dev/outreach/store/storetest"
)

// TestPoolSpreadsOneCampaignOverItsSenders runs one campaign of 1,000
// targets over a pool of 10 accounts with compressed windows, under two
// schedulers and two workers. Midway one sender is paused and another
// disabled: their waiting targets go to the others. Every target ends; no
// account exceeds its limit; no person is invited twice or by two
// accounts; every sender got work while work waited, and the senders with
// twice the budget sent more.
func TestPoolSpreadsOneCampaignOverItsSenders(t *testing.T) {
	t.Parallel()
	const n = 1000
	h := newHarness(t, options{})
	big := store.Limit{Action: store.ActionInvite, Max: 10, Per: 2 * time.Second}
	small := store.Limit{Action: store.ActionInvite, Max: 5, Per: 2 * time.Second}
	var ids []int64
	limitOf := map[string]store.Limit{}
	for i := range 10 {
		l := big
		if i >= 5 {
			l = small
		}
		name := fmt.Sprintf("pool-%d", i)
		limitOf[name] = l
		ids = append(ids, h.account(accountSpec{name: name, limits: []store.Limit{l}}))
	}
	campaign, err := h.st.CreatePoolCampaign(h.ctx, store.Campaign{Name: "pool", MessageTemplate: "Hi {{.FirstName}}"}, ids)
	if err != nil {
		t.Fatal(err)
	}
	var idents []string
	for i := range n {
		idents = append(idents, fmt.Sprintf("https://www.linkedin.com/in/pool-person-%04d/", i))
	}
	h.targets(campaign, idents...)
	if unassigned := storetest.Unassigned(t, h.db); unassigned != n {
		t.Fatalf("%d of %d targets of the pool have no sender when inserted; want all", unassigned, n)
	}

	h.start(2)
	// A second scheduler against the same database and Redis.
	second, err := scheduler.New(scheduler.Config{Store: h.st, Redis: h.rdb, Logger: h.log,
		Horizon: 5 * time.Second, PollInterval: 200 * time.Millisecond, ReconcileInterval: time.Second,
		ReconcileGrace: 2 * time.Second, RequestTimeout: h.timeout})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- second.Run(h.ctx) }()
	t.Cleanup(func() { h.cancel(); <-done })

	invites := func(account string) int {
		k := 0
		for _, r := range h.sim.Requests() {
			if r.Op == "invite" && r.Status < 300 && (account == "" || r.Account == account) {
				k++
			}
		}
		return k
	}
	// Every sender gets work while work waits (before any sender stops).
	h.waitFor("every sender to send while work waits", 2*time.Minute, func() bool {
		for i := range 10 {
			if invites(fmt.Sprintf("pool-%d", i)) == 0 {
				return false
			}
		}
		return true
	})
	if waiting := storetest.TargetsIn(t, h.db, store.TargetPending); waiting == 0 {
		t.Fatal("no target waits any more: the pool did not have to share")
	}

	// Pause one sender (for an hour) and disable another, mid-run.
	paused, disabled := ids[2], ids[6]
	if err := h.st.PauseAccount(h.ctx, paused, time.Now().Add(time.Hour), "test: a sender paused mid-run"); err != nil {
		t.Fatal(err)
	}
	if err := h.st.DisableAccount(h.ctx, disabled, "test: a sender disabled mid-run"); err != nil {
		t.Fatal(err)
	}
	stoppedAt := storetest.Now(t, h.db)

	rows := h.waitTerminal(4 * time.Minute)
	sent := 0
	for _, r := range rows {
		if r.Status == store.TargetSent {
			sent++
		} else {
			t.Errorf("target %s ended %s: %s", r.Identifier, r.Status, r.Err)
		}
	}
	if sent != n {
		t.Errorf("%d of %d targets sent", sent, n)
	}

	// No person invited twice, nor by two accounts; each target's
	// invitation went out from the sender recorded on it.
	if d := h.sim.DuplicateInvites(); len(d) > 0 {
		t.Errorf("duplicate invitations: %+v", d)
	}
	twoSenders, wrongSender := storetest.SenderMismatches(t, h.db)
	if twoSenders > 0 || wrongSender > 0 {
		t.Errorf("%d targets invited by two accounts, %d invitations from another account than the target's", twoSenders, wrongSender)
	}
	byAccount := map[string][]time.Time{}
	for _, r := range h.sim.Requests() {
		if r.Op == "invite" {
			byAccount[r.Account] = append(byAccount[r.Account], r.Time)
		}
	}
	for name, times := range byAccount {
		l := limitOf[name]
		if most, at := fullestWindow(times, l.Per, time.Time{}); most > l.Max {
			t.Errorf("%s: %d invitations within %s ending at %s, over its limit %s", name, most, l.Per, at.Format("15:04:05.000"), l)
		}
	}
	// The stopped senders reserved nothing after they stopped, and their
	// waiting targets went to the others (every target ended while they
	// are still stopped).
	if late := storetest.CountCalls(t, h.db, storetest.Calls{Accounts: []int64{paused, disabled}, ReservedAfter: stoppedAt}); late > 0 {
		t.Errorf("%d calls reserved for the paused or disabled sender after it stopped", late)
	}
	moved := storetest.LookedUpForOthers(t, h.db, []int64{paused, disabled})
	t.Logf("%d targets looked up by a stopped sender were invited by another", moved)
	bigSent, smallSent := 0, 0
	for i := range 10 {
		name := fmt.Sprintf("pool-%d", i)
		if ids[i] == paused || ids[i] == disabled {
			continue
		}
		if i < 5 {
			bigSent += invites(name)
		} else {
			smallSent += invites(name)
		}
		t.Logf("%s (%s): %d invitations", name, limitOf[name], invites(name))
	}
	// Four senders of each kind kept sending; those with twice the
	// budget must have sent more.
	if bigSent <= smallSent {
		t.Errorf("senders with %s sent %d invitations, those with %s sent %d: the spread does not follow the budgets",
			big, bigSent, small, smallSent)
	}
}
