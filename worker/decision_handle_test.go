package worker

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/outreach-dev/outreach/provider"
	"github.com/outreach-dev/outreach/provider/simulator"
	"github.com/outreach-dev/outreach/provider/unipile"
	"github.com/outreach-dev/outreach/store"
)

// TestHandleInterpretsEachDecision runs one task per kind of decision
// (Next and AccountChange) through the worker's mux, middleware included,
// against a fresh database and the simulator, and checks the rows it
// leaves: the target, its ledger row and its account; the task's return;
// and the outcome the middleware logged and counted.
func TestHandleInterpretsEachDecision(t *testing.T) {
	t.Parallel()
	const wrongKey = "sk-wrong-key-decisions"
	p := DefaultPolicy()
	type want struct {
		status     store.TargetStatus
		next       time.Duration // target's next_attempt_at - now
		lastError  string        // a part of the target's last_error
		errorType  string        // the target's and the ledger row's error type
		attempts   int
		deferrals  int
		ledger     store.Outcome // the ledger row's outcome
		account    store.AccountStatus
		pausedFor  time.Duration // account paused_until - now (0: not paused)
		snooze     time.Duration // the task's snooze (0: the task is done)
		metric     string        // outcome/error_type counted
		pauseCount string        // paused/kind counted ("" for none)
		logs       []string
	}
	for _, tc := range []struct {
		name     string
		slug     string
		lookup   bool   // a resolve task of an unresolved target (else an invite)
		scenario string // the simulator's error for the call
		wrongKey bool   // the worker's key is refused (this worker's configuration)
		want     want
	}{
		{name: "sent", slug: "jane-doe",
			want: want{status: store.TargetSent, ledger: store.OutcomeSent, attempts: 1, account: store.AccountActive,
				metric: "sent/", logs: []string{`"msg":"outcome"`, `"action":"invite"`, `"outcome":"sent"`, `"target_status":"sent"`}}},
		{name: "skip", slug: "connected-bob", lookup: true,
			want: want{status: store.TargetSkipped, lastError: "already connected", errorType: "already_connected", attempts: 1,
				ledger: store.OutcomeResolved, account: store.AccountActive, metric: "skipped/already_connected",
				logs: []string{`"action":"lookup"`, `"target_status":"skipped"`}}},
		{name: "fail", slug: "jane-doe", scenario: "invalid_recipient",
			want: want{status: store.TargetFailed, lastError: "invalid_recipient", errorType: "invalid_recipient", attempts: 1,
				ledger: store.OutcomeRefused, account: store.AccountActive, metric: "failed/invalid_recipient",
				logs: []string{`"target_status":"failed"`, `"error_type":"invalid_recipient"`}}},
		{name: "defer target", slug: "jane-doe", scenario: "cannot_resend_yet",
			want: want{status: store.TargetPending, next: p.ResendDefer, lastError: "cannot_resend_yet", errorType: "cannot_resend_yet",
				attempts: 1, deferrals: 1, ledger: store.OutcomeRefused, account: store.AccountActive, metric: "deferred/cannot_resend_yet",
				logs: []string{`"target_status":"pending"`}}},
		{name: "pause account", slug: "jane-doe", scenario: "limit_exceeded",
			want: want{status: store.TargetPending, next: p.LimitExceededPause, lastError: "limit_exceeded", errorType: "limit_exceeded",
				attempts: 1, ledger: store.OutcomeRefused, account: store.AccountPaused, pausedFor: p.LimitExceededPause,
				metric: "deferred/limit_exceeded", pauseCount: "paused/limit_exceeded",
				logs: []string{`"msg":"account paused"`, `provider limit exceeded`}}},
		{name: "disable account", slug: "jane-doe", scenario: "disconnected_account",
			want: want{status: store.TargetPending, lastError: "disconnected_account", errorType: "disconnected_account",
				attempts: 1, ledger: store.OutcomeRefused, account: store.AccountDisabled,
				metric: "deferred/disconnected_account", pauseCount: "paused/disabled",
				logs: []string{`"msg":"account paused"`, `disabled by the provider's answer`}}},
		{name: "retry", slug: "jane-doe", scenario: "service_unavailable",
			want: want{status: store.TargetQueued, next: p.TransientBackoff / 2, lastError: "service_unavailable",
				errorType: "service_unavailable", attempts: 1, ledger: store.OutcomeError, account: store.AccountActive,
				snooze: p.TransientBackoff / 2, metric: "retried/service_unavailable", logs: []string{`"target_status":"queued"`}}},
		{name: "hand back (lookup answered)", slug: "jane-doe", lookup: true,
			want: want{status: store.TargetPending, ledger: store.OutcomeResolved, account: store.AccountActive,
				metric: "resolved/", logs: []string{`"action":"lookup"`, `"outcome":"resolved"`}}},
		{name: "hand back (configuration refused)", slug: "jane-doe", wrongKey: true,
			want: want{status: store.TargetPending, next: 30 * time.Second, lastError: "refused this worker's configuration",
				errorType: "invalid_credentials", attempts: 1, ledger: store.OutcomeRefused, account: store.AccountActive,
				metric: "deferred/invalid_credentials",
				logs:   []string{"the provider refused this worker's configuration", `"outcome":"refused"`}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var sc []simulator.Scenario
			if tc.scenario != "" {
				sc = append(sc, simulator.Scenario{Provider: provider.Unipile, Error: tc.scenario})
			}
			f := newFixture(t, simulator.Config{Scenarios: sc})
			m := &countingMetrics{}
			cfg := Config{Metrics: m}
			if tc.wrongKey {
				cfg.Clients = func(provider.Name, string) (provider.Client, error) {
					return unipile.New(unipile.Config{BaseURL: f.simURL, APIKey: wrongKey, Timeout: 5 * time.Second})
				}
			}
			w := f.worker(cfg)
			li := f.account("li", "default")
			id := f.target(li, tc.slug, !tc.lookup)
			typ := TypeInvite
			if tc.lookup {
				typ = TypeResolve
			}
			now := f.clock()
			err := f.run(w, typ, id)
			var s *snooze
			switch {
			case tc.want.snooze == 0 && err != nil:
				t.Errorf("task: %v, want done", err)
			case tc.want.snooze != 0 && (!errors.As(err, &s) || s.after != tc.want.snooze):
				t.Errorf("task: %v, want snoozed %s", err, tc.want.snooze)
			}

			tg, err := f.st.Target(f.ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if tg.Status != tc.want.status || tg.Attempts != tc.want.attempts || tg.Deferrals != tc.want.deferrals {
				t.Errorf("target %s, %d attempts, %d deferrals; want %s, %d, %d",
					tg.Status, tg.Attempts, tg.Deferrals, tc.want.status, tc.want.attempts, tc.want.deferrals)
			}
			if got := tg.NextAttemptAt.Sub(now); !tc.want.status.Terminal() && got != tc.want.next {
				t.Errorf("target due in %s, want %s", got, tc.want.next)
			}
			if !strings.Contains(tg.LastError, tc.want.lastError) || (tc.want.lastError == "" && tg.LastError != "") {
				t.Errorf("target last error %q, want %q", tg.LastError, tc.want.lastError)
			}
			if tg.ErrorType != tc.want.errorType {
				t.Errorf("target error type %q, want %q", tg.ErrorType, tc.want.errorType)
			}
			if tc.want.status == store.TargetSent && tg.InvitationID == "" {
				t.Errorf("sent target without an invitation id")
			}

			ledger, err := f.st.TargetLedger(f.ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if len(ledger) != 1 || ledger[0].Outcome != string(tc.want.ledger) || ledger[0].At.IsZero() {
				t.Fatalf("ledger %+v, want one answered row %s", ledger, tc.want.ledger)
			}
			if (tc.scenario != "" || tc.wrongKey) && ledger[0].ErrorType != tc.want.errorType {
				t.Errorf("ledger error type %q, want %q", ledger[0].ErrorType, tc.want.errorType)
			}

			a, err := f.st.Account(f.ctx, li)
			if err != nil {
				t.Fatal(err)
			}
			if a.Status != tc.want.account {
				t.Errorf("account %s (%s), want %s", a.Status, a.PauseReason, tc.want.account)
			}
			if got := a.PausedUntil; (tc.want.pausedFor == 0 && !got.IsZero()) || (tc.want.pausedFor != 0 && got.Sub(now) != tc.want.pausedFor) {
				t.Errorf("account paused until %s, want %s after now", got, tc.want.pausedFor)
			}

			count := func(key string) int {
				outcome, typ, _ := strings.Cut(key, "/")
				return m.count(outcome, typ)
			}
			if count(tc.want.metric) != 1 {
				t.Errorf("outcomes counted %v, want one %s", m.n, tc.want.metric)
			}
			if tc.want.pauseCount != "" && count(tc.want.pauseCount) != 1 {
				t.Errorf("pauses counted %v, want one %s", m.n, tc.want.pauseCount)
			}
			if tc.want.pauseCount == "" {
				for k := range m.n {
					if strings.HasPrefix(k, "paused/") {
						t.Errorf("a pause counted (%s), want none", k)
					}
				}
			}
			logs := f.logs.String()
			for _, part := range append(tc.want.logs, `"target_id":`) {
				if !strings.Contains(logs, part) {
					t.Errorf("logs lack %s:\n%s", part, logs)
				}
			}
			if tc.want.pauseCount == "" && strings.Contains(logs, `"msg":"account paused"`) {
				t.Errorf("logs say the account paused:\n%s", logs)
			}
		})
	}
}
