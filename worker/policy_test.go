package worker

import (
	"testing"
	"time"

	"github.com/outreach-dev/outreach/provider"
	"github.com/outreach-dev/outreach/store"
)

// TestDecideError checks each row of the outcome policy table: what
// happens to the target, the account, and the task.
func TestDecideError(t *testing.T) {
	p := DefaultPolicy()
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	hold := time.Minute
	type want struct {
		status   string
		retry    bool
		pause    time.Duration // account paused for at least this (0: not paused)
		disable  bool
		deferral bool
		next     time.Duration // target due after at least this
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
			0, 1, false, History{RateLimited: 3}, want{status: store.TargetPending, pause: 10 * time.Minute, next: 10 * time.Minute}},
		{"429 short Retry-After keeps the task", provider.Error{Kind: provider.KindRateLimited, RetryAfter: 5 * time.Second},
			0, 1, false, History{RateLimited: 1}, want{status: store.TargetQueued, retry: true, pause: 5 * time.Second, next: 5 * time.Second}},
		{"limit_exceeded pauses an hour at least", provider.Error{Kind: provider.KindLimitExceeded, Type: "limit_exceeded"},
			0, 1, false, History{LimitExceeded: 1}, want{status: store.TargetPending, pause: time.Hour, next: time.Hour}},
		{"limit_exceeded again doubles", provider.Error{Kind: provider.KindLimitExceeded, Type: "limit_exceeded"},
			0, 1, false, History{LimitExceeded: 2}, want{status: store.TargetPending, pause: 2 * time.Hour, next: 2 * time.Hour}},
		{"cannot_resend_yet defers a day", provider.Error{Kind: provider.KindCannotResendYet, Type: "cannot_resend_yet"},
			0, 1, false, History{ResendRefusals: 1}, want{status: store.TargetPending, deferral: true, next: 24 * time.Hour}},
		{"cannot_resend_yet doubles", provider.Error{Kind: provider.KindCannotResendYet, Type: "cannot_resend_yet"},
			2, 3, false, History{ResendRefusals: 1}, want{status: store.TargetPending, deferral: true, next: 96 * time.Hour}},
		{"cannot_resend_yet from several people pauses the account", provider.Error{Kind: provider.KindCannotResendYet, Type: "cannot_resend_yet"},
			0, 1, false, History{ResendRefusals: 3}, want{status: store.TargetPending, deferral: true, next: 24 * time.Hour, pause: 24 * time.Hour}},
		{"cannot_resend_yet gives up eventually", provider.Error{Kind: provider.KindCannotResendYet, Type: "cannot_resend_yet"},
			6, 7, false, History{ResendRefusals: 1}, want{status: store.TargetFailed}},
		{"already_invited_recently defers", provider.Error{Kind: provider.KindAlreadyInvited, Type: "already_invited_recently"},
			0, 1, false, History{}, want{status: store.TargetPending, deferral: true, next: 24 * time.Hour}},
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
		{"transient gives up", provider.Error{Kind: provider.KindTransient, HTTPStatus: 503},
			0, 5, false, History{}, want{status: store.TargetFailed}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			at := &store.Attempt{SendID: 1, Target: &store.Target{ID: 2, Deferrals: tc.deferrals, Attempts: tc.attempts},
				Account: &store.Account{ID: 3}, Orphaned: tc.orphaned}
			e := tc.err
			d := p.decideError(at, &e, tc.history, now, hold)
			f := d.Finish
			if f.TargetStatus != tc.want.status {
				t.Errorf("target status %q, want %q (%s)", f.TargetStatus, tc.want.status, f.LastError)
			}
			if d.Retry != tc.want.retry {
				t.Errorf("retry %v, want %v", d.Retry, tc.want.retry)
			}
			if f.Disable != tc.want.disable {
				t.Errorf("disable %v, want %v", f.Disable, tc.want.disable)
			}
			if f.CountDeferral != tc.want.deferral {
				t.Errorf("deferral counted %v, want %v", f.CountDeferral, tc.want.deferral)
			}
			if paused := f.PauseUntil.Sub(now); tc.want.pause > 0 && paused < tc.want.pause/2 || tc.want.pause == 0 && !f.PauseUntil.IsZero() {
				t.Errorf("account paused for %s, want %s", paused, tc.want.pause)
			}
			if tc.want.next > 0 {
				if got := f.NextAttemptAt.Sub(now); got < tc.want.next/2 || got > tc.want.next*2 {
					t.Errorf("target due in %s, want about %s", got, tc.want.next)
				}
			}
			if f.TargetStatus != store.TargetSent && f.LastError == "" {
				t.Errorf("no reason recorded")
			}
		})
	}
}

func TestDecideSentUsage(t *testing.T) {
	p := DefaultPolicy()
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	acc := &store.Account{ID: 1, MinGap: time.Minute,
		Limits: []store.Limit{{Action: store.ActionInvite, Max: 25, Per: 24 * time.Hour}}}
	at := &store.Attempt{SendID: 1, Target: &store.Target{ID: 2}, Account: acc}

	d := p.decideSent(at, provider.Sent{InvitationID: "i", Usage: 50}, now)
	if d.Finish.TargetStatus != store.TargetSent || d.Finish.InvitationID != "i" || !d.Finish.PauseUntil.IsZero() {
		t.Errorf("usage 50: %+v, want sent, no pause", d.Finish)
	}
	if g := d.Finish.NextSendAt.Sub(now); g != time.Minute {
		t.Errorf("usage 50: gap %s, want the minimum gap", g)
	}
	d = p.decideSent(at, provider.Sent{Usage: 90}, now)
	if g := d.Finish.NextSendAt.Sub(now); g < 24*time.Hour/25 {
		t.Errorf("usage 90: gap %s, want widened to at least an even spread of the window (%s)", g, 24*time.Hour/25)
	}
	if d.Finish.SlowUntil.IsZero() {
		t.Errorf("usage 90: no slowdown recorded")
	}
	d = p.decideSent(at, provider.Sent{Usage: 95}, now)
	if d.Finish.PauseUntil.Sub(now) < 24*time.Hour {
		t.Errorf("usage 95: paused until %s, want for the window", d.Finish.PauseUntil)
	}
}
