package worker

import (
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

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

// A batch of several accounts sends each account's targets; its task again
// sends nothing more.
func TestHandleInviteBatchOfSeveralAccounts(t *testing.T) {
	t.Parallel()
	f := newFixture(t, simulator.Config{})
	w := f.worker(Config{})
	one, two := f.account("one", "default"), f.account("two", "default")
	a1, a2, b1 := f.target(one, "one-a", true), f.target(one, "one-b", true), f.target(two, "two-a", true)
	bts := append(AccountBatch(one, Payload{TargetID: a1}, Payload{TargetID: a2}), AccountBatch(two, Payload{TargetID: b1})...)
	task, opts := NewBatchTask(bts)
	if id := asynqTaskID(opts); !strings.HasPrefix(id, "invites:any:") {
		t.Errorf("task id %q, want invites:any:…", id)
	}
	if err := w.HandleInviteBatch(f.ctx, task); err != nil {
		t.Fatalf("batch: %v", err)
	}
	for _, id := range []int64{a1, a2, b1} {
		if s := f.state(id); s.Status != store.TargetSent {
			t.Errorf("target %d: %+v, want sent", id, s)
		}
	}
	before := len(f.sim.Requests())
	if err := w.HandleInviteBatch(f.ctx, task); err != nil {
		t.Fatalf("batch again: %v", err)
	}
	if after := len(f.sim.Requests()); after != before {
		t.Errorf("the batch again made %d more requests, want none", after-before)
	}
	// A target that names no account, in a batch that names none, is a
	// bad payload.
	bad, _ := NewBatchTask(append(AccountBatch(one, Payload{TargetID: a1}), BatchTarget{Payload: Payload{TargetID: b1}}))
	if err := w.HandleInviteBatch(f.ctx, bad); err == nil || !strings.Contains(err.Error(), "bad target") {
		t.Errorf("batch with a target of no account: %v, want a bad payload", err)
	}
}

// A batch whose account's window has room for part of it now reserves the
// others again, together, once the window frees a place within ShortWait
// (not one by one on the single-target path), and never over the window.
func TestHandleInviteBatchWaitsForRoom(t *testing.T) {
	t.Parallel()
	f := newFixture(t, simulator.Config{})
	w := f.worker(Config{})
	w.cfg.Now = time.Now // the windows free with the clock
	li := f.account("li", "default")
	window := store.Limit{Action: store.ActionInvite, Max: 2, Per: time.Second}
	if err := f.st.SetLimits(f.ctx, li, []store.Limit{window}); err != nil {
		t.Fatal(err)
	}
	var ps []Payload
	for _, slug := range []string{"r-one", "r-two", "r-three", "r-four"} {
		ps = append(ps, Payload{TargetID: f.target(li, slug, true)})
	}
	task, _ := NewBatchTask(AccountBatch(li, ps...))
	if err := w.HandleInviteBatch(f.ctx, task); err != nil {
		t.Fatalf("batch: %v", err)
	}
	for _, p := range ps {
		if s := f.state(p.TargetID); s.Status != store.TargetSent {
			t.Errorf("target %d: %+v, want sent", p.TargetID, s)
		}
	}
	if v := f.sim.LimitViolations([]simulator.Window{{Max: window.Max, Per: window.Per}}); len(v) > 0 {
		t.Errorf("window exceeded: %+v", v)
	}
	if !strings.Contains(f.logs.String(), "reserving these targets again") {
		t.Errorf("the batch did not wait for the room to reserve the others again; logs:\n%s", f.logs.String())
	}
}

// asynqTaskID is the task id among opts.
func asynqTaskID(opts []asynq.Option) string {
	for _, o := range opts {
		if o.Type() == asynq.TaskIDOpt {
			return o.Value().(string)
		}
	}
	return ""
}
