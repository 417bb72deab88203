package worker

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/outreach-dev/outreach/provider"
	"github.com/outreach-dev/outreach/store"
)

// Policy holds the numbers of the outcome policy. The zero value is not
// useful; start from DefaultPolicy. Tests compress the durations.
type Policy struct {
	// RateLimitBackoff is the first account pause after an HTTP 429 without
	// Retry-After; it doubles with each 429 of the account within
	// RateLimitMax, up to RateLimitMax.
	RateLimitBackoff, RateLimitMax time.Duration
	// LimitExceededPause is the shortest account pause after
	// limit_exceeded (doubling with repeats within a day, up to
	// LimitExceededMax).
	LimitExceededPause, LimitExceededMax time.Duration
	// ResendDefer is the first deferral of a target after
	// cannot_resend_yet; it doubles per deferral up to ResendDeferMax.
	ResendDefer, ResendDeferMax time.Duration
	// ResendMaxDeferrals is how many cannot_resend_yet deferrals a target
	// gets before it fails (LinkedIn keeps refusing for up to three weeks
	// after a withdrawal; past that, something else is wrong).
	ResendMaxDeferrals int
	// ResendEscalateCount different targets of one account refused with
	// cannot_resend_yet within ResendEscalateWindow pause the account for
	// ResendEscalatePause.
	ResendEscalateCount                       int
	ResendEscalateWindow, ResendEscalatePause time.Duration
	// AlreadyInvitedDefer is the first deferral after
	// already_invited_recently (doubling); after AlreadyInvitedMax
	// deferrals the target is skipped.
	AlreadyInvitedDefer time.Duration
	AlreadyInvitedMax   int
	// TransientAttempts is how many calls a target gets when the provider
	// fails transiently (5xx, timeouts), with backoff from TransientBackoff
	// up to TransientBackoffMax between them; then it fails.
	TransientAttempts                     int
	TransientBackoff, TransientBackoffMax time.Duration
	// UsageSlowdown is how long the gap stays widened after the provider
	// reports usage of 90% or more; UsagePause how long the account pauses
	// at 95% (when it has no invite window of its own to wait for).
	UsageSlowdown, UsagePause time.Duration
	// WarmupUsage is the provider's usage (percent of its limit) from
	// which a sent invitation steps the account's ramp back
	// (docs/warmup.md); 0 never does. 429s, limit_exceeded and escalated
	// cannot_resend_yet always do.
	WarmupUsage float64
	// Rand returns a uniform random number in [0, n) for the jitter of
	// backoffs and gaps; nil means math/rand/v2's Int64N. Tests pin it to
	// assert exact durations.
	Rand func(n int64) int64
}

// rand returns the policy's random source.
func (p Policy) rand() func(n int64) int64 {
	if p.Rand != nil {
		return p.Rand
	}
	return rand.Int64N
}

// DefaultPolicy returns the policy documented in docs/outcome-policy.md.
func DefaultPolicy() Policy {
	return Policy{
		RateLimitBackoff: 5 * time.Minute, RateLimitMax: 6 * time.Hour,
		LimitExceededPause: time.Hour, LimitExceededMax: 24 * time.Hour,
		ResendDefer: 24 * time.Hour, ResendDeferMax: 21 * 24 * time.Hour, ResendMaxDeferrals: 6,
		ResendEscalateCount: 3, ResendEscalateWindow: time.Hour, ResendEscalatePause: 24 * time.Hour,
		AlreadyInvitedDefer: 24 * time.Hour, AlreadyInvitedMax: 3,
		TransientAttempts: 5, TransientBackoff: 30 * time.Second, TransientBackoffMax: 30 * time.Minute,
		UsageSlowdown: 24 * time.Hour, UsagePause: 24 * time.Hour,
		WarmupUsage: 75,
	}
}

// History is what the policy needs to know of an account's recent
// answers; the worker reads it from the ledger only when an answer needs it.
type History struct {
	// RateLimited counts the account's 429s within Policy.RateLimitMax,
	// this one included.
	RateLimited int
	// LimitExceeded counts limit_exceeded answers within a day, this one
	// included.
	LimitExceeded int
	// ResendRefusals counts different targets refused with
	// cannot_resend_yet within Policy.ResendEscalateWindow, this one
	// included.
	ResendRefusals int
}

// decideError applies the outcome policy to a provider error: each case is
// one row of the table in docs/outcome-policy.md.
func (p Policy) decideError(at *store.Attempt, e *provider.Error, h History, now time.Time) Decision {
	d := Decision{now: now, Outcome: store.OutcomeRefused, ErrorType: e.Type, HTTPStatus: e.HTTPStatus, Detail: e.Error()}
	if e.Type == "" {
		d.ErrorType = string(e.Kind)
	}
	why := e.Error()
	switch e.Kind {
	case provider.KindRateLimited:
		pause := e.RetryAfter
		if pause <= 0 {
			pause = backoff(max(h.RateLimited-1, 0), p.RateLimitBackoff, p.RateLimitMax, p.rand())
		}
		d.Account = PauseAccountUntil(now.Add(pause), fmt.Sprintf("rate limited by the provider (HTTP 429), backing off %s", pause.Round(time.Second)))
		d.Next = WaitUntil(now.Add(pause), why)
	case provider.KindLimitExceeded:
		pause := doubling(p.LimitExceededPause, h.LimitExceeded-1, p.LimitExceededMax)
		if e.RetryAfter > pause {
			pause = e.RetryAfter
		}
		d.Account = PauseAccountUntil(now.Add(pause), "provider limit exceeded ("+e.Type+"), paused "+pause.Round(time.Second).String())
		d.Next = WaitUntil(now.Add(pause), why)
	case provider.KindCannotResendYet:
		if p.ResendMaxDeferrals > 0 && at.Target.Deferrals >= p.ResendMaxDeferrals {
			d.Next = Fail(fmt.Sprintf("still refused after %d deferrals: %s", at.Target.Deferrals, why))
			break
		}
		d.Next = DeferTargetUntil(now.Add(doubling(p.ResendDefer, at.Target.Deferrals, p.ResendDeferMax)), why)
		if p.ResendEscalateCount > 0 && h.ResendRefusals >= p.ResendEscalateCount {
			d.Account = PauseAccountUntil(now.Add(p.ResendEscalatePause), resendEscalationReason(h.ResendRefusals, e.Type, p.ResendEscalateWindow))
		} else {
			d.resendRefusal = true
		}
	case provider.KindAlreadyInvited:
		if at.Orphaned {
			// Our own earlier request went through before the worker died:
			// this is that invitation (its deferrals are kept).
			d.Outcome = store.OutcomeSent
			d.Next = Next{kind: nextSent, reason: "sent (recognised on retry: " + e.Type + " after an unrecorded attempt)"}
			break
		}
		if at.Target.Deferrals+1 > p.AlreadyInvitedMax {
			d.Next = Skip("skipped: already invited (" + e.Type + ")")
			break
		}
		d.Next = DeferTargetUntil(now.Add(doubling(p.AlreadyInvitedDefer, at.Target.Deferrals, p.ResendDeferMax)), why)
	case provider.KindTooSoon:
		after := e.RetryAfter
		if after <= 0 {
			after = 5 * time.Minute
		}
		d.Next = WaitUntil(now.Add(after), why)
	case provider.KindRecipient, provider.KindNotFound, provider.KindBadInput:
		d.Next = Fail(why)
	case provider.KindAccount:
		d.Account = DisableAccount("disabled by the provider's answer: " + why + " (resume it once fixed)")
		d.Next = HandBack(now, why)
	default: // transient
		d.Outcome = store.OutcomeError
		if at.Target.Attempts >= p.TransientAttempts {
			d.Next = Fail(fmt.Sprintf("gave up after %d attempts: %s", at.Target.Attempts, why))
			break
		}
		d.Next = RetryAfter(now.Add(backoff(at.Target.Attempts-1, p.TransientBackoff, p.TransientBackoffMax, p.rand())), why)
	}
	warnWarmup(&d)
	return d
}

// decideSent applies the policy to a sent invitation.
func (p Policy) decideSent(at *store.Attempt, sent provider.Sent, now time.Time) Decision {
	a := at.Account
	d := Decision{now: now, Outcome: store.OutcomeSent, InvitationID: sent.InvitationID, Next: Sent("")}
	slow := a.SlowUntil.After(now)
	switch {
	case sent.Usage >= 95:
		pause := longestWindow(a, p.UsagePause)
		d.Account = PauseAccountUntil(now.Add(pause), fmt.Sprintf("provider reports %.0f%% of its limit used", sent.Usage))
		d.Account.SlowUntil, slow = now.Add(pause+p.UsageSlowdown), true
	case sent.Usage >= 90:
		d.Account.SlowUntil, slow = now.Add(max(p.UsageSlowdown, longestWindow(a, 0))), true
	}
	if gap := nextGap(a, slow, p.rand()); gap > 0 {
		d.Account.NextSendAt = now.Add(gap)
	}
	if p.WarmupUsage > 0 && sent.Usage >= p.WarmupUsage {
		d.Account.WarmupWarning = fmt.Sprintf("provider reports %.0f%% of its limit used", sent.Usage)
	}
	return d
}

// nextGap draws the gap before the account's next invitation: the minimum
// gap plus a random share of the jitter; doubled, and at least an even
// spread of the tightest window, while the provider's usage is high.
func nextGap(a *store.Account, slow bool, rnd func(n int64) int64) time.Duration {
	gap := a.MinGap
	if a.GapJitter > 0 {
		gap += time.Duration(rnd(int64(a.GapJitter)))
	}
	if slow {
		gap *= 2
		for _, l := range a.LimitsFor(store.ActionInvite) {
			if even := l.Per / time.Duration(l.Max); even > gap {
				gap = even
			}
		}
	}
	return gap
}

func longestWindow(a *store.Account, fallback time.Duration) time.Duration {
	longest := time.Duration(0)
	for _, l := range a.LimitsFor(store.ActionInvite) {
		longest = max(longest, l.Per)
	}
	if longest == 0 {
		return fallback
	}
	return longest
}

// doubling returns base·2^n, capped at max.
func doubling(base time.Duration, n int, max time.Duration) time.Duration {
	d := base
	for i := 0; i < n && d < max; i++ {
		d *= 2
	}
	if d > max {
		d = max
	}
	return d
}

// asProviderError classifies any error from a provider call: a
// *provider.Error as is, anything else as transient.
func asProviderError(name provider.Name, op string, err error) *provider.Error {
	var pe *provider.Error
	if errors.As(err, &pe) {
		return pe
	}
	return &provider.Error{Provider: name, Op: op, Scope: provider.ScopeTransient, Kind: provider.KindTransient, Type: "transport_error", Err: err}
}

func resendEscalationReason(n int, errType string, window time.Duration) string {
	return fmt.Sprintf("%d different people refused with %s within %s: treating it as account-wide", n, errType, window)
}
