package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/outreach-dev/outreach/provider"
)

// Withdrawals (docs/withdrawals.md): an invitation still pending some time
// after it was sent (campaigns.withdraw_after, else
// accounts.withdraw_after; NULL for both, or campaigns.withdraw_stale
// false, is off) is withdrawn, paced and counted as ActionWithdraw. The
// target keeps status sent and records withdrawn_at; a target of the same
// person and account in any campaign then waits until the account's
// withdraw_block is over, since LinkedIn refuses the invitation until then.

// Outcomes of withdrawals and of the sent list in the ledger.
const (
	// OutcomeWithdrawn: the provider withdrew the invitation.
	OutcomeWithdrawn Outcome = "withdrawn"
	// OutcomeGone: the sent list no longer held the invitation (accepted
	// or declined), so nothing was withdrawn.
	OutcomeGone Outcome = "gone"
	// OutcomeOutside is an invitation sent outside outreach (by hand,
	// another tool), read from the sent list and counted against the
	// account's invitation limits (action invite; accounts.count_outside_invites).
	OutcomeOutside Outcome = "outside"
)

// withdrawNotAccepted is the SQL condition, on a target aliased t, that
// its invitation was not accepted: an accepted invitation (recorded by a
// poll or a webhook, docs/acceptances.md) is never withdrawn. One accepted
// since the last poll leaves the sent list, and the withdrawal's own read
// of that list marks the target gone instead.
const withdrawNotAccepted = `t.accepted_at IS NULL`

// ListedInvitation is one pending invitation of an account as its
// provider's sent list shows it.
type ListedInvitation struct {
	InvitationID string
	ProviderID   string
	// SentAt is when the provider says it was sent; zero if it did not say.
	SentAt time.Time
}

// WithdrawRequest asks to reserve the withdrawal of a target's invitation.
type WithdrawRequest struct {
	TargetID int64
	Now      time.Time
	// Lease, RequestTimeout, HoldFor, Serves and WorkerID are as in
	// BeginRequest.
	Lease, RequestTimeout, HoldFor time.Duration
	Serves                         func(a *Account) error
	WorkerID                       int64
}

// WithdrawAttempt is a reserved withdrawal: its ledger row (action
// withdraw) is written, in flight, until FinishWithdraw.
type WithdrawAttempt struct {
	SendID       int64
	TargetID     int64
	InvitationID string
	ProviderID   string
	Account      *Account
	// Attempts counts the target's withdraw calls, this one included.
	Attempts int
	// Uncertain is true when an earlier withdrawal of the target got no
	// clear answer (its worker died, a timeout, a 5xx): the sent list
	// read before withdrawing settles it.
	Uncertain bool
}

// BeginWithdraw checks that the target's invitation is still to be
// withdrawn (sent, not withdrawn, not gone, not accepted) and reserves a
// withdraw call on its account under the account's pacing of
// ActionWithdraw (working hours, limits, gap, pause), atomically with
// every other reservation of the account. It returns ErrStale when there
// is nothing to withdraw, *NotNowError when it must wait (Released: the
// withdrawal is planned again at Until), *NotServedError as Begin does.
func (s *Store) BeginWithdraw(ctx context.Context, req WithdrawRequest) (*WithdrawAttempt, error) {
	op := fmt.Sprintf("begin withdraw of target %d", req.TargetID)
	var at *WithdrawAttempt
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		at, err = reserveWithdraw(ctx, tx, req)
		return err
	})
	var nn *NotNowError
	switch {
	case errors.As(err, &nn):
		if nn.Released {
			if _, rerr := s.pool.Exec(ctx, `UPDATE targets SET withdraw_next_at = $2 WHERE id = $1 AND withdrawn_at IS NULL`,
				req.TargetID, later(nn.Until, req.Now.Add(time.Second))); rerr != nil {
				return nil, translate(op, rerr)
			}
		}
		return nil, err
	case errors.Is(err, ErrStale):
		return nil, fmt.Errorf("%s: %w", op, ErrStale)
	case err != nil:
		var ns *NotServedError
		if errors.As(err, &ns) {
			return nil, err
		}
		return nil, translate(op, err)
	}
	return at, nil
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func reserveWithdraw(ctx context.Context, tx pgx.Tx, req WithdrawRequest) (*WithdrawAttempt, error) {
	now := req.Now
	at := &WithdrawAttempt{TargetID: req.TargetID}
	var accountID int64
	var status TargetStatus
	var stale bool
	var heldUntil *time.Time
	err := tx.QueryRow(ctx, `SELECT t.account_id, t.status, coalesce(t.invitation_id, ''), coalesce(t.provider_id, ''),
			t.withdrawn_at IS NOT NULL OR t.invitation_gone_at IS NOT NULL OR NOT (`+withdrawNotAccepted+`),
			(SELECT count(*) FROM sends s WHERE s.target_id = t.id AND s.action = 'withdraw'),
			(SELECT max(s.reserved_at) + make_interval(secs => $2) FROM sends s
				WHERE s.target_id = t.id AND s.action = 'withdraw' AND s.outcome = 'in_flight')
		FROM targets t WHERE t.id = $1 FOR UPDATE OF t`, req.TargetID, req.Lease.Seconds()).
		Scan(&accountID, &status, &at.InvitationID, &at.ProviderID, &stale, &at.Attempts, &heldUntil)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrStale
	}
	if err != nil {
		return nil, err
	}
	if status != TargetSent || at.InvitationID == "" || stale {
		return nil, ErrStale
	}
	if heldUntil != nil && heldUntil.After(now) {
		return nil, &NotNowError{Until: *heldUntil, Reason: "withdrawal held by another worker"}
	}
	a, err := scanAccount(tx.QueryRow(ctx, `SELECT `+accountColumns+` FROM accounts a WHERE a.id = $1 FOR UPDATE`, accountID))
	if err != nil {
		return nil, err
	}
	if req.Serves != nil {
		if err := req.Serves(a); err != nil {
			return nil, &NotServedError{Account: a, Err: err}
		}
	}
	// Attempts whose worker died are unknown: the provider may have seen
	// them. With any unknown or 5xx attempt, the withdrawal is uncertain,
	// and the sent list read before the call settles it.
	if err := tx.QueryRow(ctx, `WITH o AS (
			UPDATE sends SET outcome = 'unknown', window_at = least($2::timestamptz, reserved_at + make_interval(secs => $3)),
				detail = 'worker stopped before recording the answer'
			WHERE target_id = $1 AND action = 'withdraw' AND outcome = 'in_flight' RETURNING 1)
		SELECT EXISTS (SELECT 1 FROM o) OR EXISTS (SELECT 1 FROM sends WHERE target_id = $1 AND action = 'withdraw'
			AND outcome IN ('unknown', 'error') AND settled_at IS NULL)`,
		req.TargetID, now, req.RequestTimeout.Seconds()).Scan(&at.Uncertain); err != nil {
		return nil, err
	}
	pace := a.Pace(ActionWithdraw)
	if err := checkPacing(ctx, tx, &Target{ID: req.TargetID}, a, pace,
		BeginRequest{TargetID: req.TargetID, Action: ActionWithdraw, Now: now, HoldFor: req.HoldFor}); err != nil {
		return nil, err
	}
	if err := tx.QueryRow(ctx, `WITH s AS (
			INSERT INTO sends (account_id, target_id, action, reserved_at, gap, worker_id, invitation_id) VALUES ($1, $2, 'withdraw', $3,
				CASE WHEN $5 THEN make_interval(secs => $6 + random() * $7) END, nullif($8, 0), $9) RETURNING id)
		UPDATE targets t SET withdraw_next_at = $4 FROM s WHERE t.id = $2 RETURNING s.id`,
		a.ID, req.TargetID, now, now.Add(req.Lease),
		!pace.Gap.IsZero(), pace.Gap.Min.Seconds(), pace.Gap.Jitter.Seconds(), req.WorkerID, at.InvitationID).Scan(&at.SendID); err != nil {
		return nil, err
	}
	at.Account = a
	at.Attempts++
	return at, nil
}

// WithdrawFinish records the answer to a withdrawal.
type WithdrawFinish struct {
	SendID, TargetID, AccountID int64
	Now                         time.Time
	// Outcome is OutcomeWithdrawn, OutcomeGone (the sent list no longer
	// held the invitation: nothing was withdrawn now), OutcomeRefused or
	// OutcomeError. A gone invitation whose earlier withdrawal was
	// uncertain was withdrawn by that one: the target is recorded
	// withdrawn.
	Outcome    Outcome
	ErrorType  string
	HTTPStatus int
	Detail     string
	// RetryAt is when a refused or failed withdrawal is planned again.
	RetryAt time.Time
	// Listed is set when the sent list was read (complete) for this
	// answer: Sent holds it, and invitations in it that outreach did not
	// send are recorded as OutcomeOutside when the account counts them.
	Listed bool
	Sent   []ListedInvitation
	// Account changes, as in Finish.
	PauseUntil  time.Time
	PauseReason string
	Disable     bool
}

// FinishWithdraw records a withdrawal's answer: its ledger row, the
// target, the account's pause and the outside invitations, in one
// transaction. It is idempotent: an answer already recorded changes
// nothing.
func (s *Store) FinishWithdraw(ctx context.Context, f WithdrawFinish) error {
	op := fmt.Sprintf("finish withdraw %d of target %d", f.SendID, f.TargetID)
	return translate(op, pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var prev Outcome
		err := tx.QueryRow(ctx, `SELECT outcome FROM sends WHERE id = $1 FOR UPDATE`, f.SendID).Scan(&prev)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			// The database lost the reservation: record the call anew.
			if _, err := tx.Exec(ctx, `INSERT INTO sends (account_id, target_id, action, reserved_at) VALUES ($1, $2, 'withdraw', $3)`,
				f.AccountID, f.TargetID, f.Now); err != nil {
				return err
			}
			if err := tx.QueryRow(ctx, `SELECT max(id) FROM sends WHERE target_id = $1 AND action = 'withdraw'`, f.TargetID).Scan(&f.SendID); err != nil {
				return err
			}
		case err != nil:
			return err
		case prev != OutcomeInFlight && prev != OutcomeUnknown:
			return nil // recorded already
		}
		outcome := f.Outcome
		if _, err := tx.Exec(ctx, `UPDATE sends SET outcome = $2, window_at = $3, error_type = nullif($4, ''),
				http_status = nullif($5, 0), detail = nullif($6, '') WHERE id = $1`,
			f.SendID, outcome, f.Now, f.ErrorType, f.HTTPStatus, truncate(f.Detail, 1000)); err != nil {
			return err
		}
		switch outcome {
		case OutcomeWithdrawn, OutcomeGone:
			// The uncertain earlier withdrawals are settled: with the
			// invitation gone, the latest of them withdrew it.
			var settledAt *time.Time
			if err := tx.QueryRow(ctx, `WITH u AS (
					SELECT id, window_at FROM sends WHERE target_id = $1 AND action = 'withdraw' AND id <> $2
						AND outcome IN ('unknown', 'error') AND settled_at IS NULL),
				w AS (UPDATE sends SET outcome = 'withdrawn', settled_at = $3,
						detail = 'settled from the sent list: the invitation was gone (send ' || $2::bigint || ')'
					WHERE $4 AND id = (SELECT max(id) FROM u) RETURNING least(window_at, $3::timestamptz) AS at),
				s AS (UPDATE sends SET settled_at = $3 WHERE id IN (SELECT id FROM u))
				SELECT (SELECT at FROM w)`, f.TargetID, f.SendID, f.Now, outcome == OutcomeGone).Scan(&settledAt); err != nil {
				return err
			}
			withdrawnAt := (*time.Time)(nil)
			if outcome == OutcomeWithdrawn {
				withdrawnAt = &f.Now
			} else if settledAt != nil {
				withdrawnAt = settledAt
			}
			if _, err := tx.Exec(ctx, `UPDATE targets SET withdrawn_at = $2,
					invitation_gone_at = CASE WHEN $2::timestamptz IS NULL THEN $3::timestamptz END,
					withdraw_next_at = NULL, updated_at = $3 WHERE id = $1`, f.TargetID, withdrawnAt, f.Now); err != nil {
				return err
			}
			if withdrawnAt != nil {
				// Targets of the person waiting for a slot wait for the block.
				if err := holdWithdrawn(ctx, tx, f.Now, f.TargetID); err != nil {
					return err
				}
			}
		default:
			if _, err := tx.Exec(ctx, `UPDATE targets SET withdraw_next_at = $2 WHERE id = $1`,
				f.TargetID, later(f.RetryAt, f.Now)); err != nil {
				return err
			}
		}
		err = stopAccount(ctx, tx, f.AccountID, f.Disable, f.PauseUntil, f.PauseReason, f.Now)
		if err != nil {
			return err
		}
		if f.Listed {
			return recordSentList(ctx, tx, f.AccountID, f.Sent, f.Now)
		}
		return nil
	}))
}

// recordSentList notes that the account's sent list was read at now, and
// when the account counts outside invitations, writes each listed
// invitation that outreach did not send (no ledger row has its id, no
// live target of the account its person) to the ledger once, as an
// invitation sent when the list says (now if it does not say).
func recordSentList(ctx context.Context, tx pgx.Tx, accountID int64, sent []ListedInvitation, now time.Time) error {
	ids, pids, ats := make([]string, len(sent)), make([]string, len(sent)), make([]time.Time, len(sent))
	for i, inv := range sent {
		ids[i], pids[i], ats[i] = inv.InvitationID, inv.ProviderID, inv.SentAt
		if inv.SentAt.IsZero() || inv.SentAt.After(now) {
			ats[i] = now
		}
	}
	_, err := tx.Exec(ctx, `WITH a AS (UPDATE accounts SET sent_list_read_at = $5 WHERE id = $1 RETURNING count_outside_invites)
		INSERT INTO sends (account_id, action, reserved_at, window_at, outcome, invitation_id, detail)
		SELECT $1, 'invite', i.at, i.at, 'outside', i.id, 'sent outside outreach (read from the sent list)'
		FROM unnest($2::text[], $3::text[], $4::timestamptz[]) AS i(id, pid, at)
		WHERE (SELECT count_outside_invites FROM a) AND i.id <> '' AND i.at > $5::timestamptz - interval '366 days'
			AND NOT EXISTS (SELECT 1 FROM sends s WHERE s.account_id = $1 AND s.invitation_id = i.id)
			AND NOT EXISTS (SELECT 1 FROM targets t WHERE t.account_id = $1 AND t.provider_id = i.pid AND i.pid <> ''
				AND t.status NOT IN ('skipped', 'failed'))
		ON CONFLICT (account_id, invitation_id) WHERE outcome = 'outside' DO NOTHING`,
		accountID, ids, pids, ats, now)
	return err
}

// PlanWithdrawals marks up to limit stale invitations of accounts of the
// providers given as queued for withdrawal (not planned again before
// now+requeue, so a task lost with Redis is planned again then) and
// returns their targets, oldest first. Stale: sent longer ago than the
// campaign's withdraw_after (else its account's), not withdrawn, not gone,
// not accepted, of a campaign that withdraws, of an account neither
// disabled nor paused.
func (s *Store) PlanWithdrawals(ctx context.Context, now time.Time, limit int, requeue time.Duration, providers []provider.Name) ([]int64, error) {
	rows, err := s.pool.Query(ctx, `WITH due AS (
			SELECT t.id, t.finished_at FROM targets t JOIN campaigns c ON c.id = t.campaign_id JOIN accounts a ON a.id = t.account_id
			WHERE t.status = 'sent' AND t.invitation_id IS NOT NULL AND t.withdrawn_at IS NULL AND t.invitation_gone_at IS NULL
				AND `+withdrawNotAccepted+` AND c.withdraw_stale AND a.provider = ANY($4::text[])
				AND a.status <> 'disabled' AND NOT (a.status = 'paused' AND a.paused_until > $1)
				AND t.finished_at <= $1 - coalesce(c.withdraw_after, a.withdraw_after)
				AND (t.withdraw_next_at IS NULL OR t.withdraw_next_at <= $1)
			ORDER BY t.finished_at LIMIT $2 FOR UPDATE OF t SKIP LOCKED)
		UPDATE targets t SET withdraw_next_at = $1::timestamptz + make_interval(secs => $3)
		FROM due WHERE t.id = due.id RETURNING t.id, due.finished_at`,
		now, limit, requeue.Seconds(), providers)
	if err != nil {
		return nil, translate("plan withdrawals", err)
	}
	type due struct {
		id int64
		at time.Time
	}
	var ds []due
	var d due
	if _, err := pgx.ForEachRow(rows, []any{&d.id, &d.at}, func() error { ds = append(ds, d); return nil }); err != nil {
		return nil, translate("plan withdrawals", err)
	}
	out := make([]int64, len(ds))
	for i := range ds {
		out[i] = ds[i].id
	}
	return out, nil
}

// withdrawnWaitSQL is the reason a target waits after a withdrawal to its
// person; %s is the withdrawn target's id.
const withdrawnWaitSQL = `'invitation to this person withdrawn (target ' || %s || '): LinkedIn refuses a new one until the block is over'`

// HoldWithdrawnPeople makes pending targets whose person was withdrawn by
// their account within its withdraw_block wait until the block is over,
// with the reason (the planner's check; the reservation checks again). It
// returns how many it changed.
func (s *Store) HoldWithdrawnPeople(ctx context.Context, now time.Time) (int64, error) {
	tag, err := s.pool.Exec(ctx, holdWithdrawnSQL, now, int64(0))
	return tag.RowsAffected(), translate("hold withdrawn people", err)
}

func holdWithdrawn(ctx context.Context, tx pgx.Tx, now time.Time, targetID int64) error {
	_, err := tx.Exec(ctx, holdWithdrawnSQL, now, targetID)
	return err
}

// holdWithdrawnSQL holds pending targets of recently withdrawn people at
// $1; $2, when not 0, limits it to the person of that withdrawn target.
var holdWithdrawnSQL = `UPDATE targets t SET next_attempt_at = w.until, wait_reason = w.reason,
		last_error = 'waiting: ' || w.reason, updated_at = $1
	FROM (SELECT x.account_id, x.provider_id, max(x.withdrawn_at) + a.withdraw_block AS until,
			` + fmt.Sprintf(withdrawnWaitSQL, "max(x.id)") + ` AS reason
		FROM targets x JOIN accounts a ON a.id = x.account_id
		WHERE x.withdrawn_at IS NOT NULL AND x.withdrawn_at > $1::timestamptz - a.withdraw_block AND ($2 = 0 OR x.id = $2)
			-- the longest block bounds the scan of targets_withdrawn_recent
			AND x.withdrawn_at > $1::timestamptz - (SELECT max(withdraw_block) FROM accounts)
		GROUP BY x.account_id, x.provider_id, a.withdraw_block) w
	WHERE t.account_id = w.account_id AND t.provider_id = w.provider_id AND t.status = 'pending'
		AND t.status NOT IN ('skipped', 'failed') -- targets_one_per_person's predicate: read through it
		AND t.withdrawn_at IS NULL AND t.next_attempt_at < w.until`

// checkWithdrawBlock is the reservation's check that the target's person
// was not withdrawn by its account within the account's withdraw_block:
// if so, a released NotNowError until the block is over.
func checkWithdrawBlock(ctx context.Context, tx pgx.Tx, t *Target, now time.Time) error {
	if t.ProviderID == "" {
		return nil
	}
	var until *time.Time
	var reason string
	err := tx.QueryRow(ctx, `SELECT max(x.withdrawn_at) + a.withdraw_block, `+fmt.Sprintf(withdrawnWaitSQL, "max(x.id)")+`
		FROM targets x JOIN accounts a ON a.id = x.account_id
		WHERE x.account_id = $1 AND x.provider_id = $2 AND x.withdrawn_at IS NOT NULL AND x.id <> $3
		GROUP BY a.withdraw_block`, t.AccountID, t.ProviderID, t.ID).Scan(&until, &reason)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	if until != nil && until.After(now) {
		return &NotNowError{Until: *until, Reason: reason, Released: true}
	}
	return nil
}
