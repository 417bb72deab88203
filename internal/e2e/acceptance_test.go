package e2e

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/outreach-dev/outreach/inbound"
	"github.com/outreach-dev/outreach/internal/system"
	"github.com/outreach-dev/outreach/provider/simulator"
	"github.com/outreach-dev/outreach/scheduler"
	"github.com/outreach-dev/outreach/store"
	"github.com/outreach-dev/outreach/store/storetest"
	"github.com/outreach-dev/outreach/worker"
)

// TestAcceptancesExactlyOnce runs a campaign through the whole system
// (scheduler, workers, Redis, Postgres, the simulator) while people accept
// invitations: every acceptance is recorded exactly once, by webhook or by
// the paced poll, whether its webhook came twice or was lost; nobody who
// did not accept is recorded.
func TestAcceptancesExactlyOnce(t *testing.T) {
	t.Parallel()
	h := newHarness(t, options{})
	const secret = "whsec-e2e-acceptances"
	ih, err := inbound.NewUnipile(inbound.UnipileConfig{Store: h.st, Secret: secret, Logger: h.log})
	if err != nil {
		t.Fatal(err)
	}
	hook := httptest.NewServer(ih)
	t.Cleanup(hook.Close)
	h.sim.SetAcceptance(simulator.Acceptance{Probability: 0.5, Delay: time.Second, Seed: 11})
	var slugs []string
	accepters := map[string]bool{}
	for i := 0; i < 16; i++ {
		s := fmt.Sprintf("person-%02d", i)
		slugs = append(slugs, s)
		if _, ok := h.sim.WillAccept("li", simulator.ProviderID(s)); ok {
			accepters[simulator.ProviderID(s)] = true
		}
	}
	if len(accepters) < 3 || len(accepters) == len(slugs) {
		t.Fatalf("seed gives %d acceptances of %d; want some, not all", len(accepters), len(slugs))
	}
	n := 0
	dropped := map[string]bool{}
	for pid := range accepters {
		if n%2 == 0 {
			dropped[pid] = true
		}
		n++
	}
	h.sim.SetWebhook(simulator.Webhook{URL: hook.URL, Header: inbound.DefaultHeader, Value: secret, Repeat: 2,
		Drop: func(e simulator.WebhookEvent) bool { return dropped[e.ProviderID] }})
	li := h.account(accountSpec{name: "li"})
	h.targets(h.campaign(li, "Hi {{.FirstName}}"), slugs...)

	sys, err := system.New(h.ctx, system.Config{
		Store: h.st, Redis: h.rdb, Logger: h.log,
		Scheduler: &scheduler.Config{Horizon: 5 * time.Second, PollInterval: 200 * time.Millisecond,
			ReconcileInterval: time.Second, ReconcileGrace: 2 * time.Second, RequestTimeout: h.timeout},
		Workers: 2,
		Worker: worker.Config{Clients: h.Clients, Policy: h.policy, RequestTimeout: h.timeout, HoldFor: 5 * time.Second,
			Polls: worker.PollConfig{Pending: 300 * time.Millisecond, Idle: 300 * time.Millisecond, PageSize: 3}},
		Server: worker.ServerConfig{Concurrency: 10, DelayedTaskCheckInterval: 50 * time.Millisecond, ShutdownTimeout: 8 * time.Second},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sys.Close)
	if err := sys.Run(h.ctx); err != nil {
		t.Fatal(err)
	}
	// Webhooks go out as people accept, racing the polls.
	go h.sim.RunWebhooks(h.ctx, 100*time.Millisecond)
	rows := h.waitTerminal(60 * time.Second)
	for _, r := range rows {
		if r.Status != "sent" {
			t.Fatalf("target %s %s (%s), want sent", r.Identifier, r.Status, r.Err)
		}
	}
	accepted := func() map[string]string { return storetest.Acceptances(t, h.db) }
	h.waitFor("every acceptance recorded", 30*time.Second, func() bool { return len(accepted()) >= len(accepters) })
	got := accepted()
	for pid, via := range got {
		if !accepters[pid] {
			t.Errorf("%s did not accept, recorded via %s", pid, via)
		}
	}
	for pid := range accepters {
		if _, ok := got[pid]; !ok {
			t.Errorf("%s accepted, not recorded", pid)
		}
	}
	polls, bad := storetest.Polls(t, h.db)
	if polls == 0 || bad > 0 {
		t.Errorf("%d polls in the ledger, %d not answered well", polls, bad)
	}
	times := storetest.AcceptanceTimes(t, h.db)
	// Later polls and webhooks delivered again change nothing.
	for pid := range accepters {
		body := simulator.WebhookEvent{Kind: simulator.WebhookNewRelation, Account: "li", ProviderID: pid}.Body("")
		req, _ := http.NewRequest(http.MethodPost, hook.URL, bytes.NewReader(body))
		req.Header.Set(inbound.DefaultHeader, secret)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
	}
	pollsBefore := polls
	h.waitFor("two more polls", 30*time.Second, func() bool {
		n := storetest.CountCalls(t, h.db, storetest.Calls{Actions: []store.Action{store.ActionPoll}, Outcomes: []store.Outcome{store.OutcomePolled}})
		return n >= pollsBefore+2
	})
	again := storetest.AcceptanceTimes(t, h.db)
	if strings.Join(times, ",") != strings.Join(again, ",") {
		t.Errorf("accepted_at changed after more polls:\n%v\n%v", times, again)
	}
}

// TestDisconnectedAccountWaitsThenResumes: an account Unipile reports
// disconnected is paused before any LinkedIn call is spent on it (no
// lookup, no invitation reaches the simulator), and once the simulator
// reports it running again it resumes by itself and its campaign is sent.
func TestDisconnectedAccountWaitsThenResumes(t *testing.T) {
	t.Parallel()
	h := newHarness(t, options{})
	h.sim.SetAccountStatus("li", simulator.StatusCredentials)
	li := h.account(accountSpec{name: "li"})
	h.targets(h.campaign(li, "Hi {{.FirstName}}"), "ann-a", "bob-b", "cat-c")
	sys, err := system.New(h.ctx, system.Config{
		Store: h.st, Redis: h.rdb, Logger: h.log,
		Scheduler: &scheduler.Config{Horizon: 5 * time.Second, PollInterval: 200 * time.Millisecond,
			ReconcileInterval: time.Second, ReconcileGrace: 2 * time.Second, RequestTimeout: h.timeout},
		Workers: 1,
		Worker: worker.Config{Clients: h.Clients, Policy: h.policy, RequestTimeout: h.timeout, HoldFor: 5 * time.Second,
			Polls: worker.PollConfig{Pending: 300 * time.Millisecond, Unhealthy: 300 * time.Millisecond, HealthMaxAge: -1}},
		Server: worker.ServerConfig{Concurrency: 10, DelayedTaskCheckInterval: 50 * time.Millisecond, ShutdownTimeout: 8 * time.Second},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sys.Close)
	if err := sys.Run(h.ctx); err != nil {
		t.Fatal(err)
	}
	h.waitFor("the account paused for its health", 30*time.Second, func() bool {
		a := h.accountRow(li)
		return a.Status == "paused" && strings.HasPrefix(a.PauseReason, "provider reports the account CREDENTIALS")
	})
	// Two more status checks while it is down: still no call.
	h.waitFor("two status checks", 30*time.Second, func() bool {
		n := 0
		for _, r := range h.sim.Requests() {
			if r.Op == "account" {
				n++
			}
		}
		return n >= 3
	})
	for _, r := range h.sim.Requests() {
		if r.Account == "li" && r.Op != "account" {
			t.Fatalf("a %s call was spent on the disconnected account: %+v", r.Op, r)
		}
	}
	h.sim.SetAccountStatus("li", simulator.StatusOK)
	rows := h.waitTerminal(60 * time.Second)
	for _, r := range rows {
		if r.Status != "sent" {
			t.Errorf("target %s %s (%s), want sent", r.Identifier, r.Status, r.Err)
		}
	}
	if a := h.accountRow(li); a.Status != "active" {
		t.Errorf("account %s %q, want active", a.Status, a.PauseReason)
	}
}
