package scheduler

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/outreach-dev/outreach/store/storetest"
	"github.com/outreach-dev/outreach/worker"
)

// polls returns the account ids of the poll tasks in Redis.
func (e *env) polls() []int64 {
	e.t.Helper()
	var out []int64
	for _, ti := range e.tasks() {
		if ti.Type != worker.TypePoll {
			continue
		}
		var p worker.PollPayload
		if err := json.Unmarshal(ti.Payload, &p); err != nil || ti.Queue != worker.QueuePolls {
			e.t.Fatalf("poll task %s in %s: %q", ti.ID, ti.Queue, ti.Payload)
		}
		out = append(out, p.AccountID)
	}
	return out
}

// TestTickPlansPollsOnce: an account with sent invitations awaiting an
// answer gets one poll task when its poll is due, not one per tick, and
// again once the lease of a lost poll ends; an account with nothing sent
// gets none.
func TestTickPlansPollsOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	busy, idle := e.account("busy"), e.account("idle")
	ids := e.add(e.campaign(busy, "c1", "active"), "ann-a")
	e.add(e.campaign(idle, "c2", "active"), "bob-b")
	storetest.MarkSentTo(t, e.db, ids[0], "ACoAAann")
	storetest.DuePolls(t, e.db, e.clock().Add(-time.Second))
	e.tick()
	if got := e.polls(); len(got) != 1 || got[0] != busy {
		t.Fatalf("polls after a tick: %v, want [%d]", got, busy)
	}
	e.tick()
	if got := e.polls(); len(got) != 1 {
		t.Errorf("polls after a second tick: %v, want the same one", got)
	}
	// The poll is lost (its task gone from Redis): it comes again after
	// its lease.
	for id, ti := range e.tasks() {
		if ti.Type == worker.TypePoll {
			if err := e.insp.DeleteTask(ti.Queue, id); err != nil {
				t.Fatal(err)
			}
		}
	}
	e.tick()
	if got := e.polls(); len(got) != 0 {
		t.Errorf("polls within the lease: %v, want none", got)
	}
	e.advance(pollLease + time.Second)
	e.tick()
	if got := e.polls(); len(got) != 1 || got[0] != busy {
		t.Errorf("polls after the lease: %v, want [%d]", got, busy)
	}
}
