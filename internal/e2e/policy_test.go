package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/outreach-dev/outreach/provider"
	"github.com/outreach-dev/outreach/provider/simulator"
	"github.com/outreach-dev/outreach/store"
	"github.com/outreach-dev/outreach/store/storetest"
)

// Each test drives one row of the outcome policy (docs/outcome-policy.md)
// through the simulator, with the policy compressed to test time
// (testPolicy).

func pid(slug string) string { return simulator.ProviderID(slug) }

// requestsOf returns the simulator's invite requests of an account, in order.
func (h *harness) requestsOf(account string) []simulator.Request {
	var out []simulator.Request
	for _, r := range h.sim.Requests() {
		if r.Op == "invite" && r.Account == account {
			out = append(out, r)
		}
	}
	return out
}

// gapAfter returns the time between the first request answered with
// outcome and the account's next request.
func (h *harness) gapAfter(account, outcome string) time.Duration {
	h.t.Helper()
	rs := h.requestsOf(account)
	for i, r := range rs {
		if r.Outcome == outcome || (outcome == "usage95" && r.Usage >= 95) {
			if i+1 < len(rs) {
				return rs[i+1].Time.Sub(r.Time)
			}
			h.t.Fatalf("no request after the %s answer", outcome)
		}
	}
	h.t.Fatalf("no %s answer in the simulator's record: %+v", outcome, rs)
	return 0
}

func TestPolicySuccessUsageSlowsThenPausesAccount(t *testing.T) {
	t.Parallel()
	h := newHarness(t, options{sim: simulator.Config{Accounts: []simulator.Account{
		{Provider: provider.Unipile, ID: "li", Limits: []simulator.Window{{Max: 10, Per: time.Hour}}}}}})
	gap := 100 * time.Millisecond
	li := h.account(accountSpec{name: "li", minGap: gap})
	c := h.campaign(li, "")
	var ids []string
	for i := 0; i < 11; i++ {
		ids = append(ids, pid("person-"+string(rune('a'+i))))
	}
	h.targets(c, ids...)
	h.start(1)
	// The 11th is over the simulator's limit: it goes out after the pause
	// and gets limit_exceeded.
	h.waitFor("the 11th request", 20*time.Second, func() bool { return len(h.requestsOf("li")) >= 11 })
	rs := h.requestsOf("li")
	for i, r := range rs[:10] {
		if r.Outcome != simulator.OutcomeSent {
			t.Fatalf("request %d: %s, want sent", i+1, r.Outcome)
		}
	}
	if rs[8].Usage < 90 {
		t.Fatalf("9th answer reports usage %.0f, want ≥ 90 (simulator limit 10)", rs[8].Usage)
	}
	// Usage ≥ 90 widens the gap (doubled).
	if g := rs[9].Time.Sub(rs[8].Time); g < 2*gap {
		t.Errorf("gap after usage %.0f%%: %s, want at least %s", rs[8].Usage, g, 2*gap)
	}
	// Usage ≥ 95 pauses the account.
	if g := h.gapAfter("li", "usage95"); g < h.policy.UsagePause {
		t.Errorf("next request %s after usage ≥ 95%%, want at least the pause of %s", g, h.policy.UsagePause)
	}
	for _, r := range rs[:10] {
		if r.InvitationID == "" {
			t.Errorf("sent request without invitation id: %+v", r)
		}
	}
}

func TestPolicyRateLimited429(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		retryAfter time.Duration
		minGap     time.Duration
	}{
		{"RetryAfter", 2 * time.Second, 2 * time.Second},
		{"Backoff", -1, 150 * time.Millisecond}, // no Retry-After: RateLimitBackoff, half of it at least
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, options{sim: simulator.Config{Scenarios: []simulator.Scenario{
				{Provider: provider.Unipile, Recipient: pid("rl-a"), Error: "too_many_requests", RetryAfter: tc.retryAfter, Times: 1}}}})
			li := h.account(accountSpec{name: "li"})
			h.targets(h.campaign(li, ""), pid("rl-a"))
			h.start(1)
			rows := h.waitTerminal(30 * time.Second)
			if r := rows[pid("rl-a")]; r.Status != "sent" {
				t.Errorf("target after a 429: %+v, want sent", r)
			}
			if gap := h.gapAfter("li", "too_many_requests"); gap < tc.minGap {
				t.Errorf("next request %s after the 429, want at least %s", gap, tc.minGap)
			}
			if n := storetest.CountCalls(t, h.db, storetest.Calls{HTTPStatus: 429}); n != 1 {
				t.Errorf("ledger has %d 429 rows, want 1", n)
			}
			storetest.OnlyTarget(t, h.db) // the target is still there
		})
	}
}

func TestPolicyLimitExceededPausesAccount(t *testing.T) {
	t.Parallel()
	h := newHarness(t, options{sim: simulator.Config{Scenarios: []simulator.Scenario{
		{Provider: provider.Unipile, Recipient: pid("le-a"), Error: "limit_exceeded", Times: 1}}}})
	li := h.account(accountSpec{name: "li", minGap: 20 * time.Millisecond})
	h.targets(h.campaign(li, ""), pid("le-a"), pid("le-b"), pid("le-c"))
	h.start(1)
	rows := h.waitTerminal(30 * time.Second)
	for _, r := range rows {
		if r.Status != "sent" {
			t.Errorf("target %s: %s (%s), want sent after the pause", r.Identifier, r.Status, r.Err)
		}
	}
	// Nothing of the account goes out during the pause.
	rs := h.requestsOf("li")
	for i, r := range rs {
		if r.Outcome == "limit_exceeded" {
			for _, next := range rs[i+1:] {
				if d := next.Time.Sub(r.Time); d < h.policy.LimitExceededPause {
					t.Errorf("request %s after limit_exceeded, want none before %s", d, h.policy.LimitExceededPause)
				}
			}
		}
	}
}

func TestPolicyCannotResendYetDefersTarget(t *testing.T) {
	t.Parallel()
	h := newHarness(t, options{sim: simulator.Config{Scenarios: []simulator.Scenario{
		{Provider: provider.Unipile, Recipient: pid("cr-a"), Error: "cannot_resend_yet", Times: 2},
		{Provider: provider.Unipile, Recipient: pid("cr-b"), Error: "cannot_resend_yet"},
	}}})
	li := h.account(accountSpec{name: "li"})
	others := []string{pid("ok-1"), pid("ok-2"), pid("ok-3")}
	h.targets(h.campaign(li, ""), append([]string{pid("cr-a"), pid("cr-b")}, others...)...)
	h.start(1)
	rows := h.waitTerminal(30 * time.Second)
	if r := rows[pid("cr-a")]; r.Status != "sent" || r.Deferrals != 0 {
		t.Errorf("refused twice then accepted: %+v, want sent (deferrals reset)", r)
	}
	if r := rows[pid("cr-b")]; r.Status != "failed" || !strings.Contains(r.Err, "deferrals") {
		t.Errorf("always refused: %+v, want failed after %d deferrals", r, h.policy.ResendMaxDeferrals)
	}
	// Deferrals double: the gaps between a's attempts grow.
	var times []time.Time
	for _, r := range h.invitesTo(pid("cr-a")) {
		times = append(times, r.Time)
	}
	if len(times) != 3 {
		t.Fatalf("%d requests for the refused-twice target, want 3", len(times))
	}
	if g1, g2 := times[1].Sub(times[0]), times[2].Sub(times[1]); g1 < h.policy.ResendDefer || g2 < 2*h.policy.ResendDefer {
		t.Errorf("gaps %s, %s; want at least %s then %s", g1, g2, h.policy.ResendDefer, 2*h.policy.ResendDefer)
	}
	// One person's refusal never stalls the account: the others went first.
	for _, o := range others {
		if rows[o].Status != "sent" {
			t.Errorf("other target %s: %s, want sent", o, rows[o].Status)
		}
	}
}

func TestPolicyCannotResendYetEscalatesToAccountPause(t *testing.T) {
	t.Parallel()
	// Three different targets refused once each (the escalation counts
	// targets, not refusals: with the first three requests refused, a busy
	// machine retried one target before sending the others, and two
	// targets never escalated), counted whatever time they take.
	policy := testPolicy()
	policy.ResendEscalateWindow = time.Hour
	var refused []simulator.Scenario
	for _, slug := range []string{"e-1", "e-2", "e-3"} {
		refused = append(refused, simulator.Scenario{Provider: provider.Unipile, Recipient: pid(slug), Error: "cannot_resend_yet", Times: 1})
	}
	h := newHarness(t, options{policy: policy, sim: simulator.Config{Scenarios: refused}})
	// One request at a time, as LinkedIn accounts are paced: each refusal
	// is on the record before the next request.
	li := h.account(accountSpec{name: "li", minGap: 20 * time.Millisecond})
	h.targets(h.campaign(li, ""), pid("e-1"), pid("e-2"), pid("e-3"), pid("e-4"))
	h.start(1)
	// The pause is read from the event stream, which keeps it: the
	// account's row shows it only while it lasts (1.5 s).
	h.waitFor("an account-wide pause", 20*time.Second, func() bool {
		evs, err := h.st.EventsAfter(h.ctx, store.EventCursor{}, store.EventFilter{Kinds: []store.EventKind{"account.paused"}}, 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			if e.AccountID == li && strings.Contains(string(e.Data), "account-wide") {
				return true
			}
		}
		return false
	})
	rows := h.waitTerminal(30 * time.Second)
	for _, r := range rows {
		if r.Status != "sent" {
			t.Errorf("%s: %s (%s), want sent once the pause ends", r.Identifier, r.Status, r.Err)
		}
	}
}

func TestPolicyAlreadyInvitedRecentlySkipsAfterDeferrals(t *testing.T) {
	t.Parallel()
	h := newHarness(t, options{sim: simulator.Config{Scenarios: []simulator.Scenario{
		{Provider: provider.Unipile, Recipient: pid("ai-a"), Error: "already_invited_recently"}}}})
	li := h.account(accountSpec{name: "li"})
	h.targets(h.campaign(li, ""), pid("ai-a"))
	h.start(1)
	rows := h.waitTerminal(30 * time.Second)
	r := rows[pid("ai-a")]
	if r.Status != "skipped" || !strings.Contains(r.Err, "already invited") {
		t.Errorf("target: %+v, want skipped (already invited)", r)
	}
	if n := len(h.invitesTo(pid("ai-a"))); n != h.policy.AlreadyInvitedMax+1 {
		t.Errorf("%d requests, want %d (one per deferral plus the first)", n, h.policy.AlreadyInvitedMax+1)
	}
}

func TestPolicyRecipientRefusalsFail(t *testing.T) {
	t.Parallel()
	h := newHarness(t, options{})
	li := h.account(accountSpec{name: "li"})
	types := []string{"invalid_recipient", "blocked_recipient", "user_unreachable", "no_connection_with_recipient", "cannot_invite_attendee", "invalid_parameters"}
	var ids []string
	for _, typ := range types {
		ids = append(ids, "fail-"+typ+"-x")
	}
	ids = append(ids, "unknown-person")
	h.targets(h.campaign(li, ""), ids...)
	h.start(1)
	rows := h.waitTerminal(30 * time.Second)
	for i, id := range ids {
		r := rows[id]
		if r.Status != "failed" {
			t.Errorf("%s: %s (%s), want failed", id, r.Status, r.Err)
		}
		if i < len(types) && r.ErrType != types[i] {
			t.Errorf("%s: error_type %q, want %q", id, r.ErrType, types[i])
		}
		if n := len(h.invitesTo(pid(id))); i < len(types) && n != 1 {
			t.Errorf("%s: %d invite requests, want exactly 1 (no retry)", id, n)
		}
	}
}

func TestPolicyMessageTooLongFailsBeforeSending(t *testing.T) {
	t.Parallel()
	h := newHarness(t, options{})
	li := h.account(accountSpec{name: "li"})
	c := h.campaign(li, "{{.Vars.note}}")
	ok := strings.Repeat("é", 300)   // 300 characters, 600 bytes: fits
	long := strings.Repeat("é", 301) // one character too many
	if _, err := h.st.AddTargets(h.ctx, c, []store.NewTarget{
		{Identifier: pid("m-ok"), Vars: map[string]any{"note": ok}},
		{Identifier: pid("m-long"), Vars: map[string]any{"note": long}},
		{Identifier: pid("m-missing")},
	}); err != nil {
		t.Fatal(err)
	}
	h.start(1)
	rows := h.waitTerminal(30 * time.Second)
	if r := rows[pid("m-ok")]; r.Status != "sent" {
		t.Errorf("300-character note: %+v, want sent", r)
	}
	if r := rows[pid("m-long")]; r.Status != "failed" || r.ErrType != "too_many_characters" || !strings.Contains(r.Err, "301 characters") {
		t.Errorf("301-character note: %+v, want failed too_many_characters", r)
	}
	if r := rows[pid("m-missing")]; r.Status != "failed" || !strings.Contains(r.Err, "note") {
		t.Errorf("missing variable: %+v, want failed naming the variable", r)
	}
	if n := len(h.invitesTo(pid("m-long"))) + len(h.invitesTo(pid("m-missing"))); n != 0 {
		t.Errorf("%d requests for targets that should fail before sending", n)
	}
}

func TestPolicyAccountErrorDisablesUntilResumed(t *testing.T) {
	t.Parallel()
	for _, typ := range []string{"disconnected_account", "account_restricted"} {
		t.Run(typ, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, options{sim: simulator.Config{Accounts: []simulator.Account{{Provider: provider.Unipile, ID: "li", Error: typ}}}})
			// A minimum gap keeps one request in flight at a time, as for
			// any LinkedIn account.
			li := h.account(accountSpec{name: "li", minGap: 50 * time.Millisecond})
			h.targets(h.campaign(li, ""), pid("d-1"), pid("d-2"), pid("d-3"))
			h.start(1)
			h.waitFor("the account to be disabled", 20*time.Second, func() bool { return h.accountRow(li).Status == store.AccountDisabled })
			if r := h.accountRow(li); !strings.Contains(r.PauseReason, typ) {
				t.Errorf("pause reason %q, want it to name %s", r.PauseReason, typ)
			}
			// Its targets wait, and nothing more is sent.
			h.waitFor("every target to be handed back", 20*time.Second, func() bool {
				return storetest.TargetsIn(t, h.db, store.TargetPending) == 3
			})
			before := len(h.requestsOf("li"))
			if before != 1 {
				t.Errorf("%d requests after the account error, want 1", before)
			}
			// An operator fixes the account and resumes it.
			h.sim.SetAccount(simulator.Account{Provider: provider.Unipile, ID: "li"})
			if err := h.st.ResumeAccount(h.ctx, li); err != nil {
				t.Fatal(err)
			}
			rows := h.waitTerminal(30 * time.Second)
			for _, r := range rows {
				if r.Status != "sent" {
					t.Errorf("%s after resume: %s (%s), want sent", r.Identifier, r.Status, r.Err)
				}
			}
		})
	}
}

func TestPolicyTransientRetriesThenFails(t *testing.T) {
	t.Parallel()
	h := newHarness(t, options{sim: simulator.Config{Scenarios: []simulator.Scenario{
		{Provider: provider.Unipile, Recipient: pid("t-flaky"), Error: "service_unavailable", Times: 2},
		{Provider: provider.Unipile, Recipient: pid("t-down"), Error: "request_timeout"},
	}}})
	li := h.account(accountSpec{name: "li"})
	h.targets(h.campaign(li, ""), pid("t-flaky"), pid("t-down"))
	h.start(1)
	rows := h.waitTerminal(30 * time.Second)
	if r := rows[pid("t-flaky")]; r.Status != "sent" || r.Attempts != 3 {
		t.Errorf("flaky: %+v, want sent on the 3rd attempt", r)
	}
	if r := rows[pid("t-down")]; r.Status != "failed" || !strings.Contains(r.Err, "gave up after 3 attempts") {
		t.Errorf("down: %+v, want failed after %d attempts", r, h.policy.TransientAttempts)
	}
}

func TestPolicyPartooFiveMinuteRuleWaits(t *testing.T) {
	t.Parallel()
	h := newHarness(t, options{sim: simulator.Config{Scenarios: []simulator.Scenario{
		{Provider: provider.Partoo, Recipient: "u-1", Error: "too_soon", RetryAfter: time.Second, Times: 1}}}})
	pa := h.account(accountSpec{name: "pa", provider: "partoo"})
	h.targets(h.campaign(pa, ""), "u-1")
	h.start(1)
	rows := h.waitTerminal(30 * time.Second)
	if r := rows["u-1"]; r.Status != "sent" {
		t.Errorf("target: %+v, want sent once the wait is over", r)
	}
	rs := h.invitesTo("u-1")
	if len(rs) != 2 || rs[1].Time.Sub(rs[0].Time) < time.Second {
		t.Errorf("requests %+v, want 2 at least 1s apart", rs)
	}
}
