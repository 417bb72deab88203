package worker

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outreach-dev/outreach/inbound"
	"github.com/outreach-dev/outreach/provider"
	"github.com/outreach-dev/outreach/provider/simulator"
	"github.com/outreach-dev/outreach/provider/unipile"
	"github.com/outreach-dev/outreach/store"
	"github.com/outreach-dev/outreach/store/storetest"
)

const testWebhookSecret = "whsec-test-7f3a"

// sendAll invites every slug from the account through the worker and
// returns the target ids, all sent.
func (f *fixture) sendAll(w *Worker, account int64, slugs ...string) []int64 {
	f.t.Helper()
	var ids []int64
	for _, s := range slugs {
		id := f.target(account, s, true)
		if err := f.run(w, TypeInvite, id); err != nil {
			f.t.Fatalf("invite %s: %v", s, err)
		}
		if st := f.state(id); st.Status != store.TargetSent {
			f.t.Fatalf("target %s: %+v, want sent", s, st)
		}
		ids = append(ids, id)
	}
	return ids
}

// accepted reads each target's accepted_via ("" while not accepted) and
// accepted_at.
func (f *fixture) accepted(ids []int64) (map[int64]string, map[int64]time.Time) {
	f.t.Helper()
	via, at := map[int64]string{}, map[int64]time.Time{}
	for _, id := range ids {
		if v, a, ok := storetest.AcceptanceOf(f.t, f.db, id); ok {
			via[id], at[id] = v, a
		}
	}
	return via, at
}

func (f *fixture) poll(w *Worker, account int64) {
	f.t.Helper()
	task, _ := NewPollTask(account, f.clock())
	if err := w.HandlePoll(f.ctx, task); err != nil {
		f.t.Fatalf("poll: %v", err)
	}
}

// webhookServer serves the Unipile webhook handler on the test's store.
func (f *fixture) webhookServer() *httptest.Server {
	f.t.Helper()
	h, err := inbound.NewUnipile(inbound.UnipileConfig{Store: f.st, Secret: testWebhookSecret, Now: f.clock, Logger: f.log})
	if err != nil {
		f.t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	f.t.Cleanup(srv.Close)
	return srv
}

// TestAcceptancesRecordedOnceByWebhookAndPoll: every accepted invitation
// is recorded exactly once, whether its webhook comes (twice), is lost,
// or polling finds it; nobody who did not accept is recorded; and a
// second poll or a repeated delivery changes nothing.
func TestAcceptancesRecordedOnceByWebhookAndPoll(t *testing.T) {
	t.Parallel()
	f := clockedFixture(t)
	acc := f.account("acc1", "default")
	w := f.worker(Config{})
	slugs := []string{"ann-a", "bob-b", "cat-c", "dan-d", "eve-e", "fay-f", "gus-g", "hal-h", "ivy-i", "jon-j"}
	ids := f.sendAll(w, acc, slugs...)
	f.sim.SetAcceptance(simulator.Acceptance{Probability: 0.6, Delay: time.Hour, Jitter: time.Hour, Seed: 3})
	want := map[int64]bool{}
	var accepters []string
	for i, s := range slugs {
		if _, ok := f.sim.WillAccept("acc1", simulator.ProviderID(s)); ok {
			want[ids[i]] = true
			accepters = append(accepters, simulator.ProviderID(s))
		}
	}
	if len(want) < 2 || len(want) == len(slugs) {
		t.Fatalf("seed gives %d of %d acceptances; want some but not all", len(want), len(slugs))
	}
	// Webhooks: every other acceptance is lost, each other one comes twice.
	dropped := map[string]bool{}
	for i, pid := range accepters {
		if i%2 == 1 {
			dropped[pid] = true
		}
	}
	srv := f.webhookServer()
	f.sim.SetWebhook(simulator.Webhook{URL: srv.URL, Header: inbound.DefaultHeader, Value: testWebhookSecret, Repeat: 1,
		Drop: func(e simulator.WebhookEvent) bool { return dropped[e.ProviderID] }})
	f.setClock(f.clock().Add(3 * time.Hour))
	rep, err := f.sim.DeliverWebhooks(f.ctx)
	if err != nil || rep.Failed > 0 {
		t.Fatalf("deliver: %+v, %v", rep, err)
	}
	via, _ := f.accepted(ids)
	for i, id := range ids {
		pid := simulator.ProviderID(slugs[i])
		switch {
		case want[id] && !dropped[pid] && via[id] != "webhook":
			t.Errorf("%s: webhook delivered, accepted_via %q", slugs[i], via[id])
		case (!want[id] || dropped[pid]) && via[id] != "":
			t.Errorf("%s: accepted_via %q before any poll, want not accepted", slugs[i], via[id])
		}
	}
	// The poll reconciles the lost ones.
	f.poll(w, acc)
	via, at := f.accepted(ids)
	for i, id := range ids {
		pid := simulator.ProviderID(slugs[i])
		switch {
		case !want[id] && via[id] != "":
			t.Errorf("%s did not accept, recorded via %q", slugs[i], via[id])
		case want[id] && dropped[pid] && via[id] != "poll":
			t.Errorf("%s: webhook lost, accepted_via %q, want poll", slugs[i], via[id])
		case want[id] && !dropped[pid] && via[id] != "webhook":
			t.Errorf("%s: accepted_via %q, want webhook (first seen)", slugs[i], via[id])
		}
	}
	// Again: a second poll, and every webhook delivered again, change
	// nothing.
	before := f.simRequests("relations")
	f.setClock(f.clock().Add(time.Hour))
	f.poll(w, acc)
	if got := f.simRequests("relations") - before; got != 1 {
		t.Errorf("second poll read %d pages, want 1 (it stops at the newest relation seen)", got)
	}
	for _, pid := range accepters {
		body := simulator.WebhookEvent{Kind: simulator.WebhookNewRelation, Account: "acc1", ProviderID: pid}.Body("X")
		if code := postWebhook(t, srv.URL, testWebhookSecret, string(body)); code != 200 {
			t.Errorf("repeated webhook: HTTP %d", code)
		}
	}
	if n := storetest.Accepted(t, f.db); n != len(want) {
		t.Errorf("%d targets accepted, want %d", n, len(want))
	}
	_, at2 := f.accepted(ids)
	if !mapsEqual(at, at2) {
		t.Errorf("accepted_at changed: %v then %v", at, at2)
	}
	// The poll is in the ledger, as any call of the account.
	if polls := storetest.CountCalls(t, f.db, storetest.Calls{Actions: []store.Action{store.ActionPoll},
		Outcomes: []store.Outcome{store.OutcomePolled}, NoTarget: true}); polls != 2 {
		t.Errorf("%d polls in the ledger, want 2", polls)
	}
}

// clockedFixture is a fixture whose simulator runs on the test's clock.
func clockedFixture(t *testing.T) *fixture {
	var f *fixture
	f = newFixture(t, simulator.Config{Now: func() time.Time { return f.clock() }})
	return f
}

func postWebhook(t *testing.T, url, secret, body string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if secret != "" {
		req.Header.Set(inbound.DefaultHeader, secret)
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

func mapsEqual(a, b map[int64]time.Time) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !b[k].Equal(v) {
			return false
		}
	}
	return true
}

// failingPages is a Unipile client whose relations list fails past its
// first page while fail is set.
type failingPages struct {
	*unipile.Client
	fail *atomic.Bool
}

func (c failingPages) ListRelations(ctx context.Context, account, cursor string, limit int) (provider.RelationPage, error) {
	if cursor != "" && c.fail.Load() {
		return provider.RelationPage{}, &provider.Error{Provider: provider.Unipile, Op: "relations", HTTPStatus: 503,
			Type: "service_unavailable", Scope: provider.ScopeTransient, Kind: provider.KindTransient}
	}
	return c.Client.ListRelations(ctx, account, cursor, limit)
}

// TestPollFailingMidwayReadsAgain: a poll that fails on a later page
// records what it read but keeps the newest relation seen where it was,
// so the next poll reads the rest (before the fix it moved ahead and the
// older acceptances of the failed pages were never recorded).
func TestPollFailingMidwayReadsAgain(t *testing.T) {
	t.Parallel()
	f := clockedFixture(t)
	acc := f.account("acc1", "default")
	var fail atomic.Bool
	fail.Store(true)
	clients := func(p provider.Name, ref string) (provider.Client, error) {
		c, err := f.clients(p, ref)
		if err != nil {
			return nil, err
		}
		return failingPages{Client: c.(*unipile.Client), fail: &fail}, nil
	}
	w := f.worker(Config{Clients: clients, Polls: PollConfig{PageSize: 2}})
	ids := f.sendAll(w, acc, "ann-a", "bob-b", "cat-c", "dan-d", "eve-e")
	f.sim.SetAcceptance(simulator.Acceptance{Probability: 1, Delay: time.Hour, Jitter: time.Hour, Seed: 5})
	f.setClock(f.clock().Add(3 * time.Hour))
	f.poll(w, acc)
	via, _ := f.accepted(ids)
	if len(via) != 2 {
		t.Fatalf("%d accepted after a poll that read one page of 2, want 2", len(via))
	}
	fail.Store(false)
	f.setClock(f.clock().Add(time.Hour))
	f.poll(w, acc)
	if via, _ := f.accepted(ids); len(via) != len(ids) {
		t.Errorf("%d accepted after the next poll, want all %d", len(via), len(ids))
	}
}
