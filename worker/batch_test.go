package worker

import (
	"strings"
	"testing"
	"time"

	"github.com/outreach-dev/outreach/provider"
	"github.com/outreach-dev/outreach/provider/simulator"
	"github.com/outreach-dev/outreach/store"
	"github.com/outreach-dev/outreach/store/storetest"
)

// A batch task sends its targets' invitations and records every answer
// before it returns: a target whose answer asks for a retry is handed back
// to the scheduler (the batch's task is not its own to snooze), and a
// target with an uncertain earlier attempt leaves the batch for the single
// path, which settles it with the provider before sending again.
func TestHandleInviteBatch(t *testing.T) {
	t.Parallel()
	f := newFixture(t, simulator.Config{Scenarios: []simulator.Scenario{
		{Provider: provider.Unipile, Recipient: simulator.ProviderID("busy-one"), Error: "service_unavailable"}}})
	w := f.worker(Config{})
	li := f.account("li", "default")
	plain1, plain2 := f.target(li, "plain-one", true), f.target(li, "plain-two", true)
	busy := f.target(li, "busy-one", true)
	orphan := f.target(li, "orphan-one", true)
	// orphan's earlier invitation got no answer (a timeout): unsettled.
	at := f.clock().Add(-time.Minute)
	storetest.AddSend(t, f.db, storetest.Send{Account: li, Target: orphan, Action: store.ActionInvite, Reserved: at, Answered: at,
		Outcome: store.OutcomeUnknown})
	task, _ := NewBatchTask(AccountBatch(li, Payload{TargetID: plain1}, Payload{TargetID: plain2}, Payload{TargetID: busy}, Payload{TargetID: orphan}))
	if err := w.HandleInviteBatch(f.ctx, task); err != nil {
		t.Fatalf("batch: %v", err)
	}
	for _, id := range []int64{plain1, plain2} {
		if s := f.state(id); s.Status != store.TargetSent {
			t.Errorf("target %d: %+v, want sent", id, s)
		}
	}
	if s := f.state(busy); s.Status != store.TargetPending || !s.Next.After(f.clock()) {
		t.Errorf("target answered 503: %+v, want handed back (pending) for later", s)
	}
	if inFlight := storetest.InFlight(t, f.db); inFlight != 0 {
		t.Errorf("ledger rows in flight after the batch: %d, want 0 (every answer recorded before acknowledging)", inFlight)
	}
	// The uncertain target is settled with the provider (a lookup) before
	// anything else.
	if ledger := storetest.ActionsOf(t, f.db, orphan); !strings.HasPrefix(ledger, "invite,lookup") {
		t.Errorf("the uncertain target's ledger: %q, want its settling lookup after the unknown invite", ledger)
	}
	if d := f.sim.DuplicateInvites(); len(d) > 0 {
		t.Errorf("duplicate invitations: %+v", d)
	}
	// The task again (asynq redelivers it) sends nothing more.
	before := len(f.sim.Requests())
	if err := w.HandleInviteBatch(f.ctx, task); err != nil {
		t.Fatalf("batch again: %v", err)
	}
	if after := len(f.sim.Requests()); after != before {
		t.Errorf("the batch again made %d more requests, want none", after-before)
	}
}
