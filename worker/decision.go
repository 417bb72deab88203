package worker

import (
	"time"

	"github.com/outreach-dev/outreach/store"
)

// Next is what happens to a target, and to the task that carries it, after
// an answer: one of the rows of the outcome policy (docs/outcome-policy.md),
// made with the constructors below. Workers steer a target with it as
// River's workers steer a job with JobSnooze and JobCancel; Decision.finish
// alone turns it into writes and the task's return.
type Next struct {
	kind  nextKind
	until time.Time
	// reason is the target's last_error ("" clears it).
	reason string
	// deferrals: +1 counts a deferral, -1 resets them, 0 keeps them.
	deferrals int
}

type nextKind int

const (
	nextSent     nextKind = iota + 1 // terminal: sent
	nextSkip                         // terminal: skipped
	nextFail                         // terminal: failed
	nextWait                         // waits until a time; held in Redis when soon, else handed back
	nextRetry                        // a passing fault: tried again after a backoff, like nextWait
	nextHandBack                     // handed back to the scheduler, due at a time, never held in Redis
	nextRequeue                      // stays queued; this task runs again at a time, however far
)

// Sent ends the target as sent; its deferrals start again from zero.
func Sent(reason string) Next { return Next{kind: nextSent, reason: reason, deferrals: -1} }

// Skip ends the target as skipped, saying why.
func Skip(reason string) Next { return Next{kind: nextSkip, reason: reason} }

// Fail ends the target as failed, saying why.
func Fail(reason string) Next { return Next{kind: nextFail, reason: reason} }

// DeferTargetUntil makes the target wait until t and counts one deferral
// (no attempt is used): a recipient-level refusal.
func DeferTargetUntil(t time.Time, reason string) Next {
	return Next{kind: nextWait, until: t, reason: reason, deferrals: 1}
}

// WaitUntil makes the target wait until t without counting anything: for
// its account's pause, or a provider's "not yet" (Partoo's five minutes).
func WaitUntil(t time.Time, reason string) Next {
	return Next{kind: nextWait, until: t, reason: reason}
}

// RetryAfter makes the target try again at t after a passing fault; the
// attempt it used counts towards Policy.TransientAttempts.
func RetryAfter(t time.Time, reason string) Next {
	return Next{kind: nextRetry, until: t, reason: reason}
}

// HandBack hands the target back to the scheduler, due at t, however soon:
// a refusal of this worker's configuration, a disabled account, a lookup
// answered (ready for its invitation at once).
func HandBack(t time.Time, reason string) Next {
	return Next{kind: nextHandBack, until: t, reason: reason}
}

// Requeue keeps the target queued and runs the same task again at t,
// however far: a settled attempt that did not go out (invite now), a
// client this worker lost since it reserved.
func Requeue(t time.Time, reason string) Next {
	return Next{kind: nextRequeue, until: t, reason: reason}
}

// stamped returns n with the target's next_attempt_at set to t even when
// n ends the target (a lookup's verdict records the time of its answer).
func (n Next) stamped(t time.Time) Next {
	n.until = t
	return n
}

// AccountChange is what happens to the account after an answer; the zero
// value leaves it alone.
type AccountChange struct {
	// PauseUntil pauses the account until then (if later than now), for
	// Reason; Disable disables it until an operator resumes it.
	PauseUntil time.Time
	Disable    bool
	Reason     string
	// NextSendAt is the earliest next invitation (the gap); SlowUntil
	// widens the gap until then. Zero leaves them.
	NextSendAt, SlowUntil time.Time
	// WarmupWarning, when set, steps the account's ramp back one stage and
	// holds it (docs/warmup.md), saying why.
	WarmupWarning string
}

// PauseAccountUntil pauses the account until t.
func PauseAccountUntil(t time.Time, reason string) AccountChange {
	return AccountChange{PauseUntil: t, Reason: reason}
}

// DisableAccount disables the account until an operator resumes it.
func DisableAccount(reason string) AccountChange { return AccountChange{Disable: true, Reason: reason} }

// Decision is what the worker does with one answer: the ledger record of
// the answer, what happens next to the target and to its account. It
// holds values only; finish turns it into the store.Finish and the task's
// return.
type Decision struct {
	// now is when the answer came.
	now time.Time
	// The ledger row.
	Outcome      store.Outcome
	ErrorType    string
	HTTPStatus   int
	Detail       string
	InvitationID string
	// Next is what happens to the target and its task.
	Next Next
	// Account is what happens to the account.
	Account AccountChange
	// Person, for a lookup, is the profile to cache.
	Person *store.Person
	// Settled and SettledSent record a settling lookup (store.Finish).
	Settled, SettledSent bool
	// configRefused marks a refusal of this process's configuration
	// (provider.KindConfig): the worker logs it loudly.
	configRefused bool
	// resendRefusal marks a recipient-level cannot_resend_yet deferral
	// that did not escalate: once it is recorded, the worker counts again
	// (see Worker.escalateResend).
	resendRefusal bool
}

// finish turns the decision into the store.Finish that records it, and
// says whether the task runs again and after how long: the one place where
// "what happens next" becomes writes. A wait of at most holdFor keeps the
// target queued and snoozes its task; a longer one hands the target back
// to the scheduler.
func (d Decision) finish(at *store.Attempt, holdFor time.Duration) (f store.Finish, retry bool, retryIn time.Duration) {
	now := d.now
	f = store.Finish{SendID: at.SendID, TargetID: at.Target.ID, AccountID: at.Account.ID, Now: now,
		Outcome: d.Outcome, ErrorType: d.ErrorType, HTTPStatus: d.HTTPStatus, Detail: d.Detail, InvitationID: d.InvitationID,
		LastError: d.Next.reason, CountDeferral: d.Next.deferrals > 0, ResetDeferrals: d.Next.deferrals < 0,
		Person: d.Person, Settled: d.Settled, SettledSent: d.SettledSent,
		PauseUntil: d.Account.PauseUntil, PauseReason: d.Account.Reason, Disable: d.Account.Disable,
		NextSendAt: d.Account.NextSendAt, SlowUntil: d.Account.SlowUntil, WarmupWarning: d.Account.WarmupWarning}
	switch n := d.Next; n.kind {
	case nextSent:
		f.TargetStatus, f.NextAttemptAt = store.TargetSent, n.until
	case nextSkip:
		f.TargetStatus, f.NextAttemptAt = store.TargetSkipped, n.until
	case nextFail:
		f.TargetStatus, f.NextAttemptAt = store.TargetFailed, n.until
	case nextWait, nextRetry:
		f.NextAttemptAt = n.until
		if n.until.Sub(now) <= holdFor {
			f.TargetStatus, retry, retryIn = store.TargetQueued, true, n.until.Sub(now)
		} else {
			f.TargetStatus = store.TargetPending
		}
	case nextHandBack:
		f.TargetStatus, f.NextAttemptAt = store.TargetPending, n.until
	case nextRequeue:
		f.TargetStatus, f.NextAttemptAt = store.TargetQueued, n.until
		retry, retryIn = true, n.until.Sub(now)
	}
	return f, retry, retryIn
}
