package worker

import (
	"strings"
	"testing"
	"time"

	"github.com/outreach-dev/outreach/provider"
	"github.com/outreach-dev/outreach/provider/simulator"
	"github.com/outreach-dev/outreach/provider/unipile"
	"github.com/outreach-dev/outreach/store"
	"github.com/outreach-dev/outreach/store/storetest"
)

// TestSettleWithRefusedKeyChangesNothing: settling an unrecorded
// invitation with a key the provider refuses is this worker's
// configuration, as for any other call: the target is handed back saying
// why, keeps its tries, never fails, and the account stays active.
func TestSettleWithRefusedKeyChangesNothing(t *testing.T) {
	t.Parallel()
	f := newFixture(t, simulator.Config{})
	bad := f.worker(Config{Clients: func(p provider.Name, ref string) (provider.Client, error) {
		return unipile.New(unipile.Config{BaseURL: f.simURL, APIKey: "sk-wrong-" + testUnipileKey[3:], Timeout: 5 * time.Second})
	}})
	li := f.account("li", "default")
	id := f.target(li, "jane-doe", true)
	// An earlier invitation whose answer was never recorded.
	at := f.clock().Add(-time.Minute)
	storetest.AddSend(t, f.db, storetest.Send{Account: li, Target: id, Action: store.ActionInvite, Reserved: at, Answered: at,
		Outcome: store.OutcomeUnknown, Detail: "worker stopped before recording the answer"})
	for i := 0; i < 8; i++ {
		f.queue(id)
		if err := f.run(bad, TypeInvite, id); err != nil {
			t.Fatalf("try %d: %v, want the task done (handed back)", i+1, err)
		}
		s := f.state(id)
		if s.Status != store.TargetPending || !strings.Contains(s.LastError, "refused this worker's configuration") {
			t.Fatalf("try %d: target %+v, want pending, handed back because of this worker's configuration", i+1, s)
		}
		f.setClock(s.Next)
	}
	a, err := f.st.Account(f.ctx, li)
	if err != nil {
		t.Fatal(err)
	}
	if a.Status != store.AccountActive {
		t.Errorf("account %s (%s), want active", a.Status, a.PauseReason)
	}
	for _, r := range f.sim.Requests() {
		if r.Op == "invite" {
			t.Errorf("an invitation was sent before the earlier one was settled: %+v", r)
		}
	}
}
