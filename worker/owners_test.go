package worker

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/outreach-dev/outreach/provider/simulator"
	"github.com/outreach-dev/outreach/store"
	"github.com/outreach-dev/outreach/store/storetest"
)

// TestOneOwnerAcrossAccountsUnderRace: two campaigns on two accounts, both
// with the organisation-wide rule (owner_days 30), hold the same people;
// two workers take each person's two tasks at the same moment. Every
// person gets exactly one invitation at the simulator; the other target is
// skipped, naming the account that invited and the date.
func TestOneOwnerAcrossAccountsUnderRace(t *testing.T) {
	f := newFixture(t, simulator.Config{})
	w1, w2 := f.worker(Config{}), f.worker(Config{})
	a, b := f.account("alice", "default"), f.account("bob", "default")
	const people = 12
	type pair struct{ ta, tb int64 }
	var pairs []pair
	for i := range people {
		slug := fmt.Sprintf("person-%d", i)
		pairs = append(pairs, pair{f.target(a, slug, true), f.target(b, slug, true)})
	}
	storetest.SetOwnerDays(t, f.db, 30)
	for _, p := range pairs {
		start := make(chan struct{})
		var wg sync.WaitGroup
		for _, run := range []struct {
			w  *Worker
			id int64
		}{{w1, p.ta}, {w2, p.tb}} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				if err := f.run(run.w, TypeInvite, run.id); err != nil {
					t.Errorf("task of target %d: %v", run.id, err)
				}
			}()
		}
		close(start)
		wg.Wait()
	}

	invites := map[string]int{}
	for _, r := range f.sim.Requests() {
		if r.Op == "invite" {
			invites[r.Recipient]++
		}
	}
	today := f.clock().UTC().Format("2006-01-02")
	for i, p := range pairs {
		pid := simulator.ProviderID(fmt.Sprintf("person-%d", i))
		if invites[pid] != 1 {
			t.Errorf("person %d got %d invitations, want 1", i, invites[pid])
		}
		sa, sb := f.state(p.ta), f.state(p.tb)
		sent, skipped, owner := sa, sb, "alice"
		if sb.Status == store.TargetSent {
			sent, skipped, owner = sb, sa, "bob"
		}
		if sent.Status != store.TargetSent || skipped.Status != store.TargetSkipped {
			t.Errorf("person %d: targets %s and %s, want one sent and one skipped", i, sa.Status, sb.Status)
			continue
		}
		want := "already invited by account " + owner + " on " + today
		if !strings.Contains(skipped.LastError, want) {
			t.Errorf("person %d: skipped with %q, want it to say %q", i, skipped.LastError, want)
		}
	}
}

// TestOwnerRuleOffKeepsAccountsApart: without the rule (owner_days NULL)
// each account invites its own target of the same person, as before.
func TestOwnerRuleOffKeepsAccountsApart(t *testing.T) {
	f := newFixture(t, simulator.Config{})
	w := f.worker(Config{})
	a, b := f.account("alice", "default"), f.account("bob", "default")
	ta, tb := f.target(a, "jane", true), f.target(b, "jane", true)
	for _, id := range []int64{ta, tb} {
		if err := f.run(w, TypeInvite, id); err != nil && !errors.Is(err, store.ErrStale) {
			t.Fatal(err)
		}
		if s := f.state(id); s.Status != store.TargetSent {
			t.Fatalf("target %d: %s (%s), want sent", id, s.Status, s.LastError)
		}
	}
}
