package worker

import (
	"errors"
	"testing"
	"time"

	"github.com/outreach-dev/outreach/provider"
	"github.com/outreach-dev/outreach/store"
)

// TestDecideError checks each row of the outcome policy table: what
// happens to the target, the account, and the task.
// The random source of jitter is pinned (see lowest and highest), so
// every duration is exact: a broken doubling or a lost jitter fails.
func TestDecideError(t *testing.T) {
	p := DefaultPolicy()
	p.Rand = lowest
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	hold := time.Minute
	type want struct {
		status   store.TargetStatus
		retry    bool
		pause    time.Duration // account paused for exactly this (0: not paused)
		disable  bool
		deferral bool
		next     time.Duration // target due after exactly this (0: not checked)
		recount  bool          // a cannot_resend_yet refusal counted again once recorded
	}
	for _, tc := range []struct {
		name      string
		err       provider.Error
		deferrals int
		attempts  int
		orphaned  bool
		history   History
		want      want
	}{
		{"429 with Retry-After", provider.Error{Kind: provider.KindRateLimited, RetryAfter: 10 * time.Minute, HTTPStatus: 429},
			0, 1, false, History{RateLimited: 1}, want{status: store.TargetPending, pause: 10 * time.Minute, next: 10 * time.Minute}},
		{"429 without Retry-After backs off", provider.Error{Kind: provider.KindRateLimited, HTTPStatus: 429},
			0, 1, false, History{RateLimited: 1}, want{status: store.TargetPending, pause: 150 * time.Second, next: 150 * time.Second}},
		{"429 without Retry-After doubles", provider.Error{Kind: provider.KindRateLimited, HTTPStatus: 429},
			0, 1, false, History{RateLimited: 3}, want{status: store.TargetPending, pause: 10 * time.Minute, next: 10 * time.Minute}},
		{"429 backoff is capped", provider.Error{Kind: provider.KindRateLimited, HTTPStatus: 429},
			0, 1, false, History{RateLimited: 20}, want{status: store.TargetPending, pause: 3 * time.Hour, next: 3 * time.Hour}},
		{"429 short Retry-After keeps the task", provider.Error{Kind: provider.KindRateLimited, RetryAfter: 5 * time.Second},
			0, 1, false, History{RateLimited: 1}, want{status: store.TargetQueued, retry: true, pause: 5 * time.Second, next: 5 * time.Second}},
		{"limit_exceeded pauses an hour at least", provider.Error{Kind: provider.KindLimitExceeded, Type: "limit_exceeded"},
			0, 1, false, History{LimitExceeded: 1}, want{status: store.TargetPending, pause: time.Hour, next: time.Hour}},
		{"limit_exceeded again doubles", provider.Error{Kind: provider.KindLimitExceeded, Type: "limit_exceeded"},
			0, 1, false, History{LimitExceeded: 2}, want{status: store.TargetPending, pause: 2 * time.Hour, next: 2 * time.Hour}},
		{"limit_exceeded is capped", provider.Error{Kind: provider.KindLimitExceeded, Type: "limit_exceeded"},
			0, 1, false, History{LimitExceeded: 9}, want{status: store.TargetPending, pause: 24 * time.Hour, next: 24 * time.Hour}},
		{"limit_exceeded takes a longer Retry-After", provider.Error{Kind: provider.KindLimitExceeded, Type: "limit_exceeded", RetryAfter: 3 * time.Hour},
			0, 1, false, History{LimitExceeded: 1}, want{status: store.TargetPending, pause: 3 * time.Hour, next: 3 * time.Hour}},
		{"cannot_resend_yet defers a day", provider.Error{Kind: provider.KindCannotResendYet, Type: "cannot_resend_yet"},
			0, 1, false, History{ResendRefusals: 1}, want{status: store.TargetPending, deferral: true, next: 24 * time.Hour, recount: true}},
		{"cannot_resend_yet doubles", provider.Error{Kind: provider.KindCannotResendYet, Type: "cannot_resend_yet"},
			2, 3, false, History{ResendRefusals: 1}, want{status: store.TargetPending, deferral: true, next: 96 * time.Hour, recount: true}},
		{"cannot_resend_yet deferral is capped", provider.Error{Kind: provider.KindCannotResendYet, Type: "cannot_resend_yet"},
			5, 6, false, History{ResendRefusals: 1}, want{status: store.TargetPending, deferral: true, next: 21 * 24 * time.Hour, recount: true}},
		{"cannot_resend_yet from several people pauses the account", provider.Error{Kind: provider.KindCannotResendYet, Type: "cannot_resend_yet"},
			0, 1, false, History{ResendRefusals: 3}, want{status: store.TargetPending, deferral: true, next: 24 * time.Hour, pause: 24 * time.Hour}},
		{"cannot_resend_yet gives up eventually", provider.Error{Kind: provider.KindCannotResendYet, Type: "cannot_resend_yet"},
			6, 7, false, History{ResendRefusals: 1}, want{status: store.TargetFailed}},
		{"already_invited_recently defers", provider.Error{Kind: provider.KindAlreadyInvited, Type: "already_invited_recently"},
			0, 1, false, History{}, want{status: store.TargetPending, deferral: true, next: 24 * time.Hour}},
		{"already_invited_recently doubles", provider.Error{Kind: provider.KindAlreadyInvited, Type: "already_invited_recently"},
			2, 3, false, History{}, want{status: store.TargetPending, deferral: true, next: 96 * time.Hour}},
		{"already_invited_recently skips after a few", provider.Error{Kind: provider.KindAlreadyInvited, Type: "already_invited_recently"},
			3, 4, false, History{}, want{status: store.TargetSkipped}},
		{"already_invited_recently after a lost answer is sent", provider.Error{Kind: provider.KindAlreadyInvited, Type: "already_invited_recently"},
			0, 2, true, History{}, want{status: store.TargetSent}},
		{"Partoo five minutes", provider.Error{Kind: provider.KindTooSoon, RetryAfter: 5 * time.Minute},
			0, 1, false, History{}, want{status: store.TargetPending, next: 5 * time.Minute}},
		{"recipient refusal fails", provider.Error{Kind: provider.KindRecipient, Type: "blocked_recipient"},
			0, 1, false, History{}, want{status: store.TargetFailed}},
		{"404 fails", provider.Error{Kind: provider.KindNotFound, HTTPStatus: 404},
			0, 1, false, History{}, want{status: store.TargetFailed}},
		{"400 fails", provider.Error{Kind: provider.KindBadInput, Type: "invalid_parameters"},
			0, 1, false, History{}, want{status: store.TargetFailed}},
		{"401/403 disables the account", provider.Error{Kind: provider.KindAccount, Type: "disconnected_account"},
			0, 1, false, History{}, want{status: store.TargetPending, disable: true}},
		{"transient retries", provider.Error{Kind: provider.KindTransient, HTTPStatus: 503},
			0, 1, false, History{}, want{status: store.TargetQueued, retry: true, next: 15 * time.Second}},
		{"transient backoff doubles", provider.Error{Kind: provider.KindTransient, HTTPStatus: 503},
			0, 2, false, History{}, want{status: store.TargetQueued, retry: true, next: 30 * time.Second}},
		{"transient backoff doubles again", provider.Error{Kind: provider.KindTransient, HTTPStatus: 503},
			0, 4, false, History{}, want{status: store.TargetPending, next: 2 * time.Minute}},
		{"transient gives up", provider.Error{Kind: provider.KindTransient, HTTPStatus: 503},
			0, 5, false, History{}, want{status: store.TargetFailed}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			at := &store.Attempt{SendID: 1, Target: &store.Target{ID: 2, Deferrals: tc.deferrals, Attempts: tc.attempts},
				Account: &store.Account{ID: 3}, Orphaned: tc.orphaned}
			e := tc.err
			d := p.decideError(at, &e, tc.history, now)
			f, retry, retryIn := d.finish(at, hold)
			if f.TargetStatus != tc.want.status {
				t.Errorf("target status %q, want %q (%s)", f.TargetStatus, tc.want.status, f.LastError)
			}
			if retry != tc.want.retry {
				t.Errorf("retry %v, want %v", retry, tc.want.retry)
			}
			if f.Disable != tc.want.disable {
				t.Errorf("disable %v, want %v", f.Disable, tc.want.disable)
			}
			if f.CountDeferral != tc.want.deferral {
				t.Errorf("deferral counted %v, want %v", f.CountDeferral, tc.want.deferral)
			}
			if paused := f.PauseUntil.Sub(now); tc.want.pause > 0 && paused != tc.want.pause || tc.want.pause == 0 && !f.PauseUntil.IsZero() {
				t.Errorf("account paused for %s, want %s", paused, tc.want.pause)
			}
			if tc.want.next > 0 {
				if got := f.NextAttemptAt.Sub(now); got != tc.want.next {
					t.Errorf("target due in %s, want %s", got, tc.want.next)
				}
			}
			if retry && retryIn != f.NextAttemptAt.Sub(now) {
				t.Errorf("task retries in %s, target due in %s", retryIn, f.NextAttemptAt.Sub(now))
			}
			if d.resendRefusal != tc.want.recount {
				t.Errorf("recount after recording %v, want %v", d.resendRefusal, tc.want.recount)
			}
			if f.TargetStatus != store.TargetSent && f.LastError == "" {
				t.Errorf("no reason recorded")
			}
		})
	}
}

// lowest and highest pin the policy's random source to the ends of its
// range: a jittered duration is then exactly half of its step, or all of
// it less a nanosecond.
func lowest(int64) int64    { return 0 }
func highest(n int64) int64 { return n - 1 }

// TestBackoffDoubles checks the backoff exactly at both ends of its
// jitter: base·2^n, capped, between half and all of it.
func TestBackoffDoubles(t *testing.T) {
	for _, tc := range []struct {
		n         int
		base, max time.Duration
		low, high time.Duration
	}{
		{0, 30 * time.Second, 30 * time.Minute, 15 * time.Second, 30*time.Second - 1},
		{1, 30 * time.Second, 30 * time.Minute, 30 * time.Second, time.Minute - 1},
		{2, 30 * time.Second, 30 * time.Minute, time.Minute, 2*time.Minute - 1},
		{5, 30 * time.Second, 30 * time.Minute, 8 * time.Minute, 16*time.Minute - 1},
		{6, 30 * time.Second, 30 * time.Minute, 15 * time.Minute, 30*time.Minute - 1},
		{100, 30 * time.Second, 30 * time.Minute, 15 * time.Minute, 30*time.Minute - 1},
		{0, time.Second, time.Minute, 500 * time.Millisecond, time.Second - 1},
	} {
		if got := backoff(tc.n, tc.base, tc.max, lowest); got != tc.low {
			t.Errorf("backoff(%d, %s, %s) at lowest jitter = %s, want %s", tc.n, tc.base, tc.max, got, tc.low)
		}
		if got := backoff(tc.n, tc.base, tc.max, highest); got != tc.high {
			t.Errorf("backoff(%d, %s, %s) at highest jitter = %s, want %s", tc.n, tc.base, tc.max, got, tc.high)
		}
	}
}

// TestDecideErrorUsesItsRandomSource checks that the policy's jitter comes
// from Policy.Rand: the same answer backs off by the other end of the
// range when the source gives its highest value.
func TestDecideErrorUsesItsRandomSource(t *testing.T) {
	p := DefaultPolicy()
	p.Rand = highest
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	at := &store.Attempt{SendID: 1, Target: &store.Target{ID: 2, Attempts: 1}, Account: &store.Account{ID: 3}}
	f, _, _ := p.decideError(at, &provider.Error{Kind: provider.KindTransient, HTTPStatus: 503}, History{}, now).finish(at, time.Minute)
	if got, want := f.NextAttemptAt.Sub(now), 30*time.Second-1; got != want {
		t.Errorf("first transient backoff %s, want %s", got, want)
	}
	f, _, _ = p.decideError(at, &provider.Error{Kind: provider.KindRateLimited, HTTPStatus: 429}, History{RateLimited: 2}, now).finish(at, time.Minute)
	if got, want := f.PauseUntil.Sub(now), 10*time.Minute-1; got != want {
		t.Errorf("second 429 pause %s, want %s", got, want)
	}
}

func TestDecideSentUsage(t *testing.T) {
	p := DefaultPolicy()
	p.Rand = lowest
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	acc := &store.Account{ID: 1, MinGap: time.Minute,
		Limits: []store.Limit{{Action: store.ActionInvite, Max: 25, Per: 24 * time.Hour}}}
	at := &store.Attempt{SendID: 1, Target: &store.Target{ID: 2}, Account: acc}

	d := finished(p.decideSent(at, provider.Sent{InvitationID: "i", Usage: 50}, now), at)
	if d.TargetStatus != store.TargetSent || d.InvitationID != "i" || !d.PauseUntil.IsZero() {
		t.Errorf("usage 50: %+v, want sent, no pause", d)
	}
	if g := d.NextSendAt.Sub(now); g != time.Minute {
		t.Errorf("usage 50: gap %s, want the minimum gap", g)
	}
	d = finished(p.decideSent(at, provider.Sent{Usage: 90}, now), at)
	if g := d.NextSendAt.Sub(now); g != 24*time.Hour/25 {
		t.Errorf("usage 90: gap %s, want widened to an even spread of the window (%s)", g, 24*time.Hour/25)
	}
	if d.SlowUntil.IsZero() {
		t.Errorf("usage 90: no slowdown recorded")
	}
	d = finished(p.decideSent(at, provider.Sent{Usage: 95}, now), at)
	if d.PauseUntil.Sub(now) != 24*time.Hour {
		t.Errorf("usage 95: paused until %s, want for the window", d.PauseUntil)
	}
}

// TestDecideSentGapJitter checks the gap after an invitation exactly at
// both ends of the jitter, and its doubling while the provider's usage is
// high.
func TestDecideSentGapJitter(t *testing.T) {
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	acc := &store.Account{ID: 1, MinGap: time.Minute, GapJitter: 30 * time.Second}
	at := &store.Attempt{SendID: 1, Target: &store.Target{ID: 2}, Account: acc}
	for _, tc := range []struct {
		name string
		rnd  func(int64) int64
		slow bool
		want time.Duration
	}{
		{"lowest", lowest, false, time.Minute},
		{"highest", highest, false, 90*time.Second - 1},
		{"lowest while slowed", lowest, true, 2 * time.Minute},
		{"highest while slowed", highest, true, 180*time.Second - 2},
	} {
		p := DefaultPolicy()
		p.Rand = tc.rnd
		acc.SlowUntil = time.Time{}
		if tc.slow {
			acc.SlowUntil = now.Add(time.Hour)
		}
		d := finished(p.decideSent(at, provider.Sent{InvitationID: "i"}, now), at)
		if got := d.NextSendAt.Sub(now); got != tc.want {
			t.Errorf("%s: gap %s, want %s", tc.name, got, tc.want)
		}
	}
}

// finished is the store.Finish that records d.
func finished(d Decision, at *store.Attempt) store.Finish {
	f, _, _ := d.finish(at, time.Minute)
	return f
}

// TestOutcomeTable reads as the outcome policy table of
// docs/outcome-policy.md: each answer, and what happens next as the
// policy's Decision says it (the target's Next, then the account's
// change), durations from the answer.
func TestOutcomeTable(t *testing.T) {
	p := DefaultPolicy()
	p.Rand = lowest
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	w, err := New(Config{Store: &store.Store{}, Clients: func(provider.Name, string) (provider.Client, error) { return nil, nil }, Policy: &p})
	if err != nil {
		t.Fatal(err)
	}
	acc := &store.Account{ID: 3, Provider: provider.Unipile, CredentialsRef: "default",
		Limits: []store.Limit{{Action: store.ActionInvite, Max: 25, Per: 24 * time.Hour}}}
	attempt := func(deferrals, attempts int, orphaned bool) *store.Attempt {
		return &store.Attempt{SendID: 1, Target: &store.Target{ID: 2, Deferrals: deferrals, Attempts: attempts}, Account: acc, Orphaned: orphaned}
	}
	refused := func(kind provider.Kind, typ string, status int, deferrals, attempts int, h History) Decision {
		return p.decideError(attempt(deferrals, attempts, false), &provider.Error{Kind: kind, Type: typ, HTTPStatus: status}, h, now)
	}
	for _, row := range []struct {
		answer string
		d      Decision
		want   string
	}{
		{"success", p.decideSent(attempt(0, 1, false), provider.Sent{InvitationID: "i"}, now), "sent"},
		{"success, usage ≥ 95", p.decideSent(attempt(0, 1, false), provider.Sent{InvitationID: "i", Usage: 95}, now),
			"sent; pause account +24h0m0s"},
		{"HTTP 429 with Retry-After", p.decideError(attempt(0, 1, false),
			&provider.Error{Kind: provider.KindRateLimited, HTTPStatus: 429, RetryAfter: 10 * time.Minute}, History{RateLimited: 1}, now),
			"wait +10m0s; pause account +10m0s"},
		{"limit_exceeded", refused(provider.KindLimitExceeded, "limit_exceeded", 422, 0, 1, History{LimitExceeded: 1}),
			"wait +1h0m0s; pause account +1h0m0s"},
		{"cannot_resend_yet", refused(provider.KindCannotResendYet, "cannot_resend_yet", 422, 0, 1, History{ResendRefusals: 1}),
			"defer target +24h0m0s"},
		{"cannot_resend_yet, 3 people within an hour", refused(provider.KindCannotResendYet, "cannot_resend_yet", 422, 0, 1, History{ResendRefusals: 3}),
			"defer target +24h0m0s; pause account +24h0m0s"},
		{"cannot_resend_yet after 6 deferrals", refused(provider.KindCannotResendYet, "cannot_resend_yet", 422, 6, 7, History{ResendRefusals: 1}),
			"fail"},
		{"already_invited_recently", refused(provider.KindAlreadyInvited, "already_invited_recently", 422, 0, 1, History{}),
			"defer target +24h0m0s"},
		{"already_invited_recently after 3 deferrals", refused(provider.KindAlreadyInvited, "already_invited_recently", 422, 3, 4, History{}),
			"skip"},
		{"already_invited_recently after an unrecorded attempt", p.decideError(attempt(0, 2, true),
			&provider.Error{Kind: provider.KindAlreadyInvited, Type: "already_invited_recently"}, History{}, now), "sent"},
		{"recipient refusal", refused(provider.KindRecipient, "blocked_recipient", 422, 0, 1, History{}), "fail"},
		{"404", refused(provider.KindNotFound, "", 404, 0, 1, History{}), "fail"},
		{"400", refused(provider.KindBadInput, "invalid_parameters", 400, 0, 1, History{}), "fail"},
		{"401/403 about the account", refused(provider.KindAccount, "disconnected_account", 401, 0, 1, History{}),
			"hand back +0s; disable account"},
		{"our own configuration refused", w.configRefused(attempt(0, 1, false),
			&provider.Error{Kind: provider.KindConfig, Type: "invalid_credentials", HTTPStatus: 401}, now),
			"hand back +30s"},
		{"no client any more for a reserved account", w.droppedClient(attempt(0, 1, false), errors.New("UNIPILE_API_KEY is not set"), now),
			"requeue +30s"},
		{"5xx", refused(provider.KindTransient, "", 503, 0, 1, History{}), "retry after +15s"},
		{"5xx after 5 attempts", refused(provider.KindTransient, "", 503, 0, 5, History{}), "fail"},
		{"Partoo: the same user within 5 minutes", refused(provider.KindTooSoon, "too_soon", 400, 0, 1, History{}), "wait +5m0s"},
	} {
		if got := describe(row.d, now); got != row.want {
			t.Errorf("%s: %s, want %s", row.answer, got, row.want)
		}
	}
}

// describe says what a decision does next, as the outcome table does.
func describe(d Decision, now time.Time) string {
	n := d.Next
	s := map[nextKind]string{nextSent: "sent", nextSkip: "skip", nextFail: "fail", nextWait: "wait", nextRetry: "retry after",
		nextHandBack: "hand back", nextRequeue: "requeue"}[n.kind]
	if n.kind == nextWait && n.deferrals > 0 {
		s = "defer target"
	}
	if n.kind != nextSent && n.kind != nextSkip && n.kind != nextFail {
		s += " +" + n.until.Sub(now).String()
	}
	switch a := d.Account; {
	case a.Disable:
		s += "; disable account"
	case !a.PauseUntil.IsZero():
		s += "; pause account +" + a.PauseUntil.Sub(now).String()
	}
	return s
}
