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

// TestWarmupStepsBackOnRateLimit: an account on day 4 of its ramp (20 a
// day) gets a 429 from the provider (the simulator): the decision that
// pauses the account also steps its ramp back one stage (15 a day) and
// holds it, in the same Finish.
func TestWarmupStepsBackOnRateLimit(t *testing.T) {
	f := newFixture(t, simulator.Config{Scenarios: []simulator.Scenario{
		{Op: "invite", Error: "too_many_requests", RetryAfter: time.Second, Times: 1}}})
	w := f.worker(Config{})
	acc := f.account("warm", "default")
	storetest.AddLimit(t, f.db, acc, store.Limit{Action: store.ActionInvite, Max: 80, Per: 24 * time.Hour})
	if err := f.st.SetWarmup(f.ctx, acc, store.WarmupSettings{StartCount: 5, StepCount: 5, Step: time.Hour}); err != nil {
		t.Fatal(err)
	}
	storetest.AgeWarmups(t, f.db, 3*time.Hour+time.Minute)
	if wu, err := f.st.Warmup(f.ctx, acc); err != nil || wu.Today != 20 {
		t.Fatalf("before: %+v, %v; want 20 today", wu, err)
	}

	id := f.target(acc, "jane", true)
	if err := f.run(w, TypeInvite, id); err != nil {
		t.Logf("task: %v", err)
	}
	if n := f.simRequests("invite"); n != 1 {
		t.Fatalf("%d invitations reached the simulator, want 1", n)
	}
	wu, err := f.st.Warmup(f.ctx, acc)
	if err != nil {
		t.Fatal(err)
	}
	if wu.Stage != 2 || wu.Today != 15 || wu.HeldUntil.IsZero() || !strings.Contains(wu.LastWarning, "429") {
		t.Fatalf("after a 429: stage %d, %d today, held until %v, warning %q; want stage 2, 15 today, held, a 429",
			wu.Stage, wu.Today, wu.HeldUntil, wu.LastWarning)
	}
	a, err := f.st.Account(f.ctx, acc)
	if err != nil {
		t.Fatal(err)
	}
	if l := a.LimitsFor(store.ActionInvite); len(l) != 1 || l[0].Max != 15 {
		t.Fatalf("invitation limits after a 429: %v, want 15 per day", l)
	}
}

// TestDecideWarnsWarmup: which answers step a ramp back.
func TestDecideWarnsWarmup(t *testing.T) {
	p := DefaultPolicy()
	now := time.Now()
	at := &store.Attempt{Target: &store.Target{}, Account: &store.Account{}}
	for _, tc := range []struct {
		name string
		d    Decision
		warn bool
	}{
		{"usage 50", p.decideSent(at, sentWithUsage(50), now), false},
		{"usage 75", p.decideSent(at, sentWithUsage(75), now), true},
		{"usage 95", p.decideSent(at, sentWithUsage(95), now), true},
		{"no usage", p.decideSent(at, sentWithUsage(0), now), false},
		{"429", p.decideError(at, &provider.Error{Kind: provider.KindRateLimited, HTTPStatus: 429}, History{RateLimited: 1}, now), true},
		{"limit_exceeded", p.decideError(at, &provider.Error{Kind: provider.KindLimitExceeded, Type: "limit_exceeded"}, History{LimitExceeded: 1}, now), true},
		{"cannot_resend_yet", p.decideError(at, &provider.Error{Kind: provider.KindCannotResendYet, Type: "cannot_resend_yet"}, History{ResendRefusals: 1}, now), false},
		{"cannot_resend_yet escalated", p.decideError(at, &provider.Error{Kind: provider.KindCannotResendYet, Type: "cannot_resend_yet"},
			History{ResendRefusals: p.ResendEscalateCount}, now), true},
		{"disabled", p.decideError(at, &provider.Error{Kind: provider.KindAccount, HTTPStatus: 401}, History{}, now), false},
		{"recipient", p.decideError(at, &provider.Error{Kind: provider.KindRecipient, Type: "invalid_recipient"}, History{}, now), false},
	} {
		if got := tc.d.Account.WarmupWarning != ""; got != tc.warn {
			t.Errorf("%s: warm-up warning %q, want one: %v", tc.name, tc.d.Account.WarmupWarning, tc.warn)
		}
	}
}

func sentWithUsage(u float64) provider.Sent { return provider.Sent{InvitationID: "i", Usage: u} }
