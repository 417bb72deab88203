package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/hibiken/asynq"

	"github.com/outreach-dev/outreach/provider"
	"github.com/outreach-dev/outreach/store"
)

// TypeSentList reads an account's list of sent invitations, for an account
// that counts invitations sent outside outreach (docs/withdrawals.md). It
// runs in QueueWithdrawals.
const TypeSentList = "account:sentlist"

// accountPayload is the body of an account's task: its id only.
type accountPayload struct {
	AccountID int64 `json:"account_id"`
}

// SentListTaskID is the deterministic id of an account's sent-list read:
// "sentlist:3".
func SentListTaskID(accountID int64) string { return "sentlist:" + strconv.FormatInt(accountID, 10) }

// NewSentListTask builds the sent-list read of an account, in the
// withdrawals queue under its deterministic id.
func NewSentListTask(accountID int64) (*asynq.Task, []asynq.Option) {
	b, err := json.Marshal(accountPayload{AccountID: accountID})
	if err != nil {
		panic(fmt.Sprintf("marshal payload: %v", err)) // cannot happen for an int64
	}
	return asynq.NewTask(TypeSentList, b), []asynq.Option{
		asynq.TaskID(SentListTaskID(accountID)),
		asynq.Queue(QueueWithdrawals),
		asynq.MaxRetry(maxRetry),
	}
}

// HandleSentList reads an account's sent list under a reserved 'poll' call
// (paced like every call) and records the invitations sent outside
// outreach in the ledger, so that the account's invitation limits count
// them.
func (w *Worker) HandleSentList(ctx context.Context, t *asynq.Task) error {
	var p accountPayload
	if err := json.Unmarshal(t.Payload(), &p); err != nil || p.AccountID <= 0 {
		return fmt.Errorf("bad %s payload %q: %v: %w", t.Type(), t.Payload(), err, asynq.SkipRetry)
	}
	log := w.log.With("task", t.Type(), "account_id", p.AccountID)
	now := w.cfg.Now()
	at, err := w.cfg.Store.BeginSentList(ctx, store.SentListRequest{AccountID: p.AccountID, Now: now,
		Lease: w.cfg.Lease, HoldFor: w.cfg.HoldFor, Serves: w.serves, WorkerID: w.id.Load()})
	var nn *store.NotNowError
	var ns *store.NotServedError
	switch {
	case errors.Is(err, store.ErrStale), errors.As(err, &ns):
		return nil // nothing to read, or left for a worker with credentials
	case errors.As(err, &nn):
		if nn.Released {
			return nil
		}
		return Snooze(nn.Until.Sub(now), nn.Reason)
	case err != nil:
		return err
	}
	f := store.SentListFinish{SendID: at.SendID, AccountID: at.Account.ID}
	client, err := w.cfg.Clients(provider.Name(at.Account.Provider), at.Account.CredentialsRef)
	wd, ok := client.(provider.Withdrawer)
	switch {
	case err != nil || !ok:
		f.Now = w.cfg.Now()
		f.Outcome, f.ErrorType, f.Detail, f.RetryAt = store.OutcomeRefused, "no_client", "no client that lists sent invitations", f.Now.Add(w.cfg.UnservedWaitMax)
	default:
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), w.cfg.RequestTimeout)
		list, err := wd.ListSent(cctx, at.Account.ProviderAccountID)
		cancel()
		f.Now = w.cfg.Now()
		if err != nil {
			ans := w.callError(ctx, at.Account, 0, 1, "list_sent", err, f.Now)
			f.Outcome, f.ErrorType, f.HTTPStatus, f.Detail, f.RetryAt = ans.Outcome, ans.ErrorType, ans.HTTPStatus, ans.Detail, ans.RetryAt
			f.PauseUntil, f.PauseReason, f.Disable = ans.PauseUntil, ans.PauseReason, ans.Disable
			break
		}
		f.Outcome, f.Listed, f.Detail = store.OutcomeResolved, true, strconv.Itoa(len(list))+" pending"
		for _, inv := range list {
			f.Sent = append(f.Sent, store.ListedInvitation{InvitationID: inv.ID, ProviderID: inv.ProviderID, SentAt: inv.Date})
		}
	}
	err = w.recordRetry(context.WithoutCancel(ctx), log, "sent list read", f.SendID,
		func(ctx context.Context) error { return w.cfg.Store.FinishSentList(ctx, f) })
	if err != nil {
		return fmt.Errorf("record sent list read: %w", err)
	}
	log.InfoContext(ctx, "outcome", "action", store.ActionPoll, "outcome", f.Outcome, "error_type", f.ErrorType, "listed", len(f.Sent))
	return nil
}
