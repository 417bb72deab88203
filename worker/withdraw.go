package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/hibiken/asynq"

	"github.com/outreach-dev/outreach/provider"
	"github.com/outreach-dev/outreach/store"
)

// The withdrawal of a stale invitation (docs/withdrawals.md).
const (
	TypeWithdraw     = "invite:withdraw"
	QueueWithdrawals = "withdrawals"
)

// withdrawGiveUpWait is how long a withdrawal the provider refused for
// good (a bad request, an unknown recipient) waits before it is tried
// again: refusals are not expected, and an invitation stays pending.
const withdrawGiveUpWait = 24 * time.Hour

// WithdrawTaskID is the deterministic id of a target's withdrawal task:
// "withdraw:42".
func WithdrawTaskID(targetID int64) string { return "withdraw:" + strconv.FormatInt(targetID, 10) }

// NewWithdrawTask builds the withdrawal task of a target, in the
// withdrawals queue under its deterministic id (so that planning it twice
// is harmless).
func NewWithdrawTask(targetID int64) (*asynq.Task, []asynq.Option) {
	b, err := json.Marshal(Payload{TargetID: targetID})
	if err != nil {
		panic(fmt.Sprintf("marshal payload: %v", err)) // cannot happen for an int64
	}
	return asynq.NewTask(TypeWithdraw, b), []asynq.Option{
		asynq.TaskID(WithdrawTaskID(targetID)),
		asynq.Queue(QueueWithdrawals),
		asynq.MaxRetry(maxRetry),
	}
}

// HandleWithdraw withdraws one stale invitation: it reserves a withdraw
// call on the account (paced like every call), reads the account's sent
// list, and withdraws the invitation if the list still holds it. An
// invitation the list no longer holds was accepted or declined, and is
// left alone (or, after an attempt whose answer was lost, was withdrawn
// by that attempt). The answer is recorded before the task is
// acknowledged.
func (w *Worker) HandleWithdraw(ctx context.Context, t *asynq.Task) error {
	p, err := parsePayload(t)
	if err != nil {
		return err
	}
	log := w.log.With("task", t.Type(), "target_id", p.TargetID)
	at, now, err := w.beginWithdraw(ctx, p.TargetID)
	var nn *store.NotNowError
	var ns *store.NotServedError
	switch {
	case errors.Is(err, store.ErrStale):
		log.DebugContext(ctx, "nothing to withdraw")
		return nil
	case errors.As(err, &ns):
		// Nothing was written; the planner plans it again later, for a
		// worker that has credentials for the account.
		log.WarnContext(ctx, "no credentials for this account in this worker: withdrawal left for another",
			"account", ns.Account.Name, "error", ns.Err.Error())
		return nil
	case errors.As(err, &nn):
		if nn.Released {
			log.DebugContext(ctx, "withdrawal planned again later", "until", nn.Until, "reason", nn.Reason)
			return nil
		}
		return Snooze(nn.Until.Sub(now), nn.Reason)
	case err != nil:
		return err
	}
	log = log.With("account_id", at.Account.ID, "invitation_id", at.InvitationID)
	f := w.withdraw(ctx, at)
	if err := w.recordWithdraw(context.WithoutCancel(ctx), log, f); err != nil {
		return fmt.Errorf("record withdrawal: %w", err)
	}
	if m := w.cfg.Metrics; m != nil {
		m.Outcome(string(at.Account.Provider), at.Account.Name, "withdraw_"+string(f.Outcome), f.ErrorType)
	}
	log.InfoContext(ctx, "outcome", "action", store.ActionWithdraw, "outcome", f.Outcome, "error_type", f.ErrorType,
		"http_status", f.HTTPStatus, "uncertain_before", at.Uncertain)
	if f.Disable || !f.PauseUntil.IsZero() {
		log.WarnContext(ctx, "account paused", "until", f.PauseUntil, "reason", f.PauseReason)
	}
	return nil
}

// beginWithdraw reserves the withdrawal, waiting here for a slot due
// within ShortWait (as begin does for invitations).
func (w *Worker) beginWithdraw(ctx context.Context, targetID int64) (*store.WithdrawAttempt, time.Time, error) {
	var nn *store.NotNowError
	for try := 0; ; try++ {
		now := w.cfg.Now()
		at, err := w.cfg.Store.BeginWithdraw(ctx, store.WithdrawRequest{TargetID: targetID, Now: now,
			Lease: w.cfg.Lease, RequestTimeout: w.cfg.RequestTimeout, HoldFor: w.cfg.HoldFor,
			Serves: w.serves, WorkerID: w.id.Load()})
		if !errors.As(err, &nn) || nn.Released || try >= 3 || nn.Until.Sub(now) > w.cfg.ShortWait {
			return at, now, err
		}
		t := time.NewTimer(nn.Until.Sub(now))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, now, Snooze(nn.Until.Sub(now), nn.Reason)
		case <-t.C:
		}
	}
}

// withdraw makes the calls of a reserved withdrawal and returns the
// answer to record: the sent list, then the cancel if the invitation is
// still in it. The calls run to completion even when a shutdown cancels
// ctx: a request may already be at the provider.
func (w *Worker) withdraw(ctx context.Context, at *store.WithdrawAttempt) store.WithdrawFinish {
	f := store.WithdrawFinish{SendID: at.SendID, TargetID: at.TargetID, AccountID: at.Account.ID}
	client, err := w.cfg.Clients(provider.Name(at.Account.Provider), at.Account.CredentialsRef)
	var wd provider.Withdrawer
	if err == nil {
		var ok bool
		if wd, ok = client.(provider.Withdrawer); !ok {
			err = fmt.Errorf("%s cannot withdraw invitations", at.Account.Provider)
		}
	}
	if err != nil {
		// No call was made; this process's configuration never changes
		// the account.
		f.Now = w.cfg.Now()
		f.Outcome, f.ErrorType, f.Detail = store.OutcomeRefused, "no_client", err.Error()
		f.RetryAt = f.Now.Add(w.cfg.UnservedWaitMax)
		return f
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), w.cfg.RequestTimeout)
	defer cancel()
	list, err := wd.ListSent(cctx, at.Account.ProviderAccountID)
	if err != nil {
		return w.withdrawError(ctx, at, f, "list_sent", err)
	}
	f.Listed = true
	found := false
	for _, inv := range list {
		f.Sent = append(f.Sent, store.ListedInvitation{InvitationID: inv.ID, ProviderID: inv.ProviderID, SentAt: inv.Date})
		found = found || inv.ID == at.InvitationID
	}
	if !found {
		f.Now = w.cfg.Now()
		f.Outcome, f.Detail = store.OutcomeGone, "the sent list no longer holds the invitation (accepted or declined)"
		return f
	}
	err = wd.Cancel(cctx, at.Account.ProviderAccountID, at.InvitationID)
	var pe *provider.Error
	if errors.As(err, &pe) && pe.Kind == provider.KindNotFound {
		// Gone between the list and the cancel.
		f.Now = w.cfg.Now()
		f.Outcome, f.ErrorType, f.HTTPStatus, f.Detail = store.OutcomeGone, pe.Type, pe.HTTPStatus, pe.Error()
		return f
	}
	if err != nil {
		return w.withdrawError(ctx, at, f, "cancel", err)
	}
	f.Now = w.cfg.Now()
	f.Outcome = store.OutcomeWithdrawn
	return f
}

// callAnswer is what a failed call of a withdrawal or a sent-list read
// records: the ledger row, when to try again, and the account's change.
type callAnswer struct {
	Outcome     store.Outcome
	ErrorType   string
	HTTPStatus  int
	Detail      string
	RetryAt     time.Time
	PauseUntil  time.Time
	PauseReason string
	Disable     bool
}

// callError applies the outcome policy to a failed call of a withdrawal or
// of a read of the sent list (attempts: the calls so far, this one
// included): account-level answers pause or disable the account as for
// invitations, this process's own misconfiguration changes nothing, and
// the call is planned again after the wait the policy gives.
func (w *Worker) callError(ctx context.Context, a *store.Account, targetID int64, attempts int, op string, err error, now time.Time) callAnswer {
	pe := asProviderError(provider.Name(a.Provider), op, err)
	ans := callAnswer{Outcome: store.OutcomeRefused, ErrorType: pe.Type, HTTPStatus: pe.HTTPStatus, Detail: pe.Error()}
	switch pe.Kind {
	case provider.KindConfig:
		ans.RetryAt = now.Add(w.cfg.UnservedWaitMax)
		return ans
	case provider.KindRateLimited, provider.KindLimitExceeded, provider.KindAccount, provider.KindTransient:
	default:
		// Recipient answers (a bad id, cannot_resend_yet, ...) do not
		// concern these calls: try again much later.
		ans.RetryAt = now.Add(withdrawGiveUpWait)
		return ans
	}
	sa := &store.Attempt{Account: a, Target: &store.Target{ID: targetID, AccountID: a.ID, Attempts: attempts}}
	d := w.policy.decideError(sa, pe, w.history(ctx, sa, pe, now), now)
	ans = callAnswer{Outcome: d.Outcome, ErrorType: d.ErrorType, HTTPStatus: d.HTTPStatus, Detail: d.Detail, RetryAt: d.Next.until,
		PauseUntil: d.Account.PauseUntil, PauseReason: d.Account.Reason, Disable: d.Account.Disable}
	if !ans.RetryAt.After(now) {
		ans.RetryAt = now.Add(withdrawGiveUpWait)
	}
	return ans
}

// withdrawError records a failed call of a withdrawal (see callError).
func (w *Worker) withdrawError(ctx context.Context, at *store.WithdrawAttempt, f store.WithdrawFinish, op string, err error) store.WithdrawFinish {
	f.Now = w.cfg.Now()
	ans := w.callError(ctx, at.Account, at.TargetID, at.Attempts, op, err, f.Now)
	f.Outcome, f.ErrorType, f.HTTPStatus, f.Detail, f.RetryAt = ans.Outcome, ans.ErrorType, ans.HTTPStatus, ans.Detail, ans.RetryAt
	f.PauseUntil, f.PauseReason, f.Disable = ans.PauseUntil, ans.PauseReason, ans.Disable
	return f
}

// recordWithdraw records a withdrawal's answer, retrying while Postgres is
// away as record does for invitations: an answer is never dropped.
func (w *Worker) recordWithdraw(ctx context.Context, log *slog.Logger, f store.WithdrawFinish) error {
	return w.recordRetry(ctx, log, "withdrawal", f.SendID, func(ctx context.Context) error { return w.cfg.Store.FinishWithdraw(ctx, f) })
}

// recordRetry runs finish (an idempotent store write of an answer) until
// it succeeds, fails for good (a refused value) or ctx ends, backing off
// between tries.
func (w *Worker) recordRetry(ctx context.Context, log *slog.Logger, what string, sendID int64, finish func(context.Context) error) error {
	for try := 0; ; try++ {
		tctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		err := finish(tctx)
		cancel()
		if err == nil || errors.Is(err, store.ErrInvalid) || errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound) {
			return err
		}
		wait := Backoff(try, 100*time.Millisecond, w.cfg.RecordBackoffMax)
		log.WarnContext(ctx, "recording the "+what+" failed; keeping it and retrying", "send_id", sendID,
			"attempt", try+1, "retry_in", wait, "error", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}
