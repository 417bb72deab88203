package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/outreach-dev/outreach/provider"
)

// Reading an account's sent list on its own, for accounts that count
// invitations sent outside outreach (accounts.count_outside_invites) even
// when no withdrawal reads it: at least every accounts.sent_list_every,
// as an ActionPoll call paced like every other call.

// PlanSentListReads marks the accounts whose sent list is due to be read
// (counting outside invitations, of the providers given, neither disabled
// nor paused, last read at least sent_list_every ago) as planned until
// now+requeue, and returns them.
func (s *Store) PlanSentListReads(ctx context.Context, now time.Time, requeue time.Duration, providers []provider.Name) ([]int64, error) {
	rows, err := s.pool.Query(ctx, `UPDATE accounts a SET sent_list_next_at = $1::timestamptz + make_interval(secs => $2)
		WHERE a.count_outside_invites AND a.provider = ANY($3::text[]) AND a.status <> 'disabled'
			AND NOT (a.status = 'paused' AND a.paused_until > $1)
			AND (a.sent_list_read_at IS NULL OR a.sent_list_read_at <= $1 - a.sent_list_every)
			AND (a.sent_list_next_at IS NULL OR a.sent_list_next_at <= $1)
		RETURNING a.id`, now, requeue.Seconds(), providers)
	if err != nil {
		return nil, translate("plan sent list reads", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	return ids, translate("plan sent list reads", err)
}

// SentListRequest asks to reserve a read of an account's sent list; the
// fields are as in WithdrawRequest.
type SentListRequest struct {
	AccountID int64
	Now       time.Time
	Lease     time.Duration
	HoldFor   time.Duration
	Serves    func(a *Account) error
	WorkerID  int64
}

// SentListAttempt is a reserved read of the sent list: its ledger row
// (action poll) is in flight until FinishSentList.
type SentListAttempt struct {
	SendID  int64
	Account *Account
}

// BeginSentList reserves a read of the account's sent list under its
// pacing of ActionPoll. It returns ErrStale when the account no longer
// counts outside invitations, *NotNowError when it must wait (Released:
// planned again at Until), *NotServedError as Begin does.
func (s *Store) BeginSentList(ctx context.Context, req SentListRequest) (*SentListAttempt, error) {
	op := fmt.Sprintf("begin sent list read of account %d", req.AccountID)
	var at *SentListAttempt
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var outside bool
		a, err := scanAccount(tx.QueryRow(ctx, `SELECT `+accountColumns+`, a.count_outside_invites FROM accounts a WHERE a.id = $1 FOR UPDATE`,
			req.AccountID), &outside)
		if err != nil {
			return err
		}
		if !outside {
			return ErrStale
		}
		if req.Serves != nil {
			if err := req.Serves(a); err != nil {
				return &NotServedError{Account: a, Err: err}
			}
		}
		pace := a.Pace(ActionPoll)
		if err := checkPacing(ctx, tx, &Target{}, a, pace, BeginRequest{Action: ActionPoll, Now: req.Now, HoldFor: req.HoldFor}); err != nil {
			return err
		}
		at = &SentListAttempt{Account: a}
		return tx.QueryRow(ctx, `WITH s AS (
				INSERT INTO sends (account_id, action, reserved_at, gap, worker_id, detail) VALUES ($1, 'poll', $2,
					CASE WHEN $4 THEN make_interval(secs => $5 + random() * $6) END, nullif($7, 0), 'sent list') RETURNING id)
			UPDATE accounts a SET sent_list_next_at = $3 FROM s WHERE a.id = $1 RETURNING s.id`,
			a.ID, req.Now, req.Now.Add(req.Lease), !pace.Gap.IsZero(), pace.Gap.Min.Seconds(), pace.Gap.Jitter.Seconds(),
			req.WorkerID).Scan(&at.SendID)
	})
	var nn *NotNowError
	var ns *NotServedError
	switch {
	case errors.As(err, &nn):
		if nn.Released {
			if _, rerr := s.pool.Exec(ctx, `UPDATE accounts SET sent_list_next_at = $2 WHERE id = $1`,
				req.AccountID, later(nn.Until, req.Now.Add(time.Second))); rerr != nil {
				return nil, translate(op, rerr)
			}
		}
		return nil, err
	case errors.As(err, &ns):
		return nil, err
	case errors.Is(err, ErrStale):
		return nil, fmt.Errorf("%s: %w", op, ErrStale)
	case err != nil:
		return nil, translate(op, err)
	}
	return at, nil
}

// SentListFinish records the answer to a read of the sent list. With
// Listed, Sent is the whole list (outside invitations are recorded);
// otherwise the read is planned again at RetryAt. The account changes are
// as in Finish.
type SentListFinish struct {
	SendID, AccountID int64
	Now               time.Time
	Outcome           Outcome
	ErrorType         string
	HTTPStatus        int
	Detail            string
	RetryAt           time.Time
	Listed            bool
	Sent              []ListedInvitation
	PauseUntil        time.Time
	PauseReason       string
	Disable           bool
}

// FinishSentList records a read of the sent list in one transaction; an
// answer already recorded changes nothing.
func (s *Store) FinishSentList(ctx context.Context, f SentListFinish) error {
	op := fmt.Sprintf("finish sent list read %d of account %d", f.SendID, f.AccountID)
	return translate(op, pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE sends SET outcome = $2, window_at = $3, error_type = nullif($4, ''),
				http_status = nullif($5, 0), detail = nullif($6, '')
			WHERE id = $1 AND outcome IN ('in_flight', 'unknown')`,
			f.SendID, f.Outcome, f.Now, f.ErrorType, f.HTTPStatus, truncate("sent list: "+f.Detail, 1000))
		if err != nil || tag.RowsAffected() == 0 {
			return err
		}
		err = stopAccount(ctx, tx, f.AccountID, f.Disable, f.PauseUntil, f.PauseReason, f.Now)
		if err != nil {
			return err
		}
		if !f.Listed {
			_, err = tx.Exec(ctx, `UPDATE accounts SET sent_list_next_at = $2 WHERE id = $1`, f.AccountID, later(f.RetryAt, f.Now))
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE accounts SET sent_list_next_at = NULL WHERE id = $1`, f.AccountID); err != nil {
			return err
		}
		return recordSentList(ctx, tx, f.AccountID, f.Sent, f.Now)
	}))
}
