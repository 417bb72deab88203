package scheduler

import (
	"context"
	"testing"
	"time"

	"github.com/outreach-dev/outreach/store"
	"github.com/outreach-dev/outreach/store/storetest"
)

// TestRulesCacheFollowsNotifications checks the wiring of the scheduler's
// cache of accounts' limits and gaps (store.RulesCache): used only while
// the scheduler listens, and emptied by the notification of a change, so
// that the tick after it plans with the new limits.
func TestRulesCacheFollowsNotifications(t *testing.T) {
	e := newEnv(t, nil)
	a := e.account("a")
	storetest.AddLimit(t, e.db, a, store.Limit{Action: store.ActionInvite, Max: 1, Per: time.Hour})
	ids := e.add(e.campaign(a, "c", store.CampaignActive), members(1, 3)...)
	if e.tick(); e.s.rules.Len() != 0 {
		t.Fatalf("not listening: the cache holds %d accounts, want 0", e.s.rules.Len())
	}
	e.wantStatus(store.TargetQueued, ids[0])
	e.wantStatus(store.TargetPending, ids[1:]...)

	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.s.listen(ctx)
	}()
	defer func() {
		cancel()
		<-done
	}()
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(60 * time.Second); !cond(); {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// Once it listens, a tick fills the cache; the one limit lets nothing
	// more go.
	waitFor("the cache in use", func() bool { e.tick(); return e.s.rules.Len() == 1 })
	e.wantStatus(store.TargetPending, ids[1:]...)

	storetest.RaiseLimits(t, e.db, a, 3)
	waitFor("the notification to empty the cache", func() bool { return e.s.rules.Len() == 0 })
	e.tick()
	e.wantStatus(store.TargetQueued, ids...)
}
