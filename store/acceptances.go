package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/outreach-dev/outreach/provider"
)

// AcceptedVia says how an acceptance was first seen (targets.accepted_via).
type AcceptedVia string

// Ways an acceptance is seen.
const (
	AcceptedByPoll    AcceptedVia = "poll"
	AcceptedByWebhook AcceptedVia = "webhook"
)

// OutcomePolled is the ledger outcome of a relations poll answered.
const OutcomePolled Outcome = "polled"

// Acceptance is a person who became a relation of a provider account: the
// target that invited them is accepted.
type Acceptance struct {
	// ProviderID and PublicID identify the person; either may be empty.
	// PublicID is matched against targets.normalized_identifier.
	ProviderID string
	PublicID   string
	// At is when the relation was made; zero means the time it is recorded.
	At time.Time
}

// Accepted is a target an acceptance was recorded on.
type Accepted struct {
	TargetID   int64
	CampaignID int64
	AccountID  int64
	At         time.Time
}

// RecordAcceptances records the acceptances seen for the provider account
// providerAccountID (Unipile's account_id) on the sent targets of every
// outreach account using it whose person matches, at most once per
// target: a target already accepted keeps its first time and way, so
// repeated webhooks and a poll that sees them again change nothing. It
// returns the targets it accepted now.
func (s *Store) RecordAcceptances(ctx context.Context, p provider.Name, providerAccountID string, acc []Acceptance, via AcceptedVia, now time.Time) ([]Accepted, error) {
	if len(acc) == 0 {
		return nil, nil
	}
	pids := make([]string, len(acc))
	slugs := make([]string, len(acc))
	ats := make([]time.Time, len(acc))
	for i, a := range acc {
		pids[i], slugs[i], ats[i] = a.ProviderID, a.PublicID, a.At
		if a.At.IsZero() || a.At.After(now) {
			ats[i] = now
		}
	}
	rows, err := s.pool.Query(ctx, `WITH r AS (
			SELECT DISTINCT ON (t.id) t.id, r.at FROM unnest($3::text[], $4::text[], $5::timestamptz[]) AS r(pid, slug, at)
			JOIN targets t ON t.status = 'sent' AND t.accepted_at IS NULL
				AND t.account_id IN (SELECT id FROM accounts WHERE provider = $1 AND provider_account_id = $2)
				AND ((r.pid <> '' AND t.provider_id = r.pid) OR (r.slug <> '' AND t.normalized_identifier = lower(r.slug)))
			ORDER BY t.id, r.at)
		UPDATE targets t SET accepted_at = r.at, accepted_via = $6, updated_at = $7
		FROM r WHERE t.id = r.id AND t.accepted_at IS NULL
		RETURNING t.id, t.campaign_id, t.account_id, t.accepted_at`,
		p, providerAccountID, pids, slugs, ats, via, now)
	if err != nil {
		return nil, translate("record acceptances", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Accepted, error) {
		var a Accepted
		err := r.Scan(&a.TargetID, &a.CampaignID, &a.AccountID, &a.At)
		return a, err
	})
	return out, translate("record acceptances", err)
}

// PollState is an account's polling state (account_polls).
type PollState struct {
	AccountID  int64
	NextPollAt time.Time
	LastPolled time.Time // zero before the first poll
	// RelationAt and RelationMember are the newest relation seen: a poll
	// reads relations newest first and stops there.
	RelationAt     time.Time
	RelationMember string
	// ProviderStatus is the status the provider last reported ("" never),
	// at ProviderStatusAt.
	ProviderStatus   string
	ProviderStatusAt time.Time
	LastError        string
	// Awaiting counts the account's sent invitations not accepted yet;
	// OldestAwaiting is when the oldest of them was sent.
	Awaiting       int
	OldestAwaiting time.Time
}

// PollState reads the polling state of account id; an account without one
// (not a Unipile account) is ErrNotFound.
func (s *Store) PollState(ctx context.Context, id int64) (*PollState, error) {
	var st PollState
	var last, relAt, statusAt, oldest *time.Time
	var member, status, lastErr *string
	err := s.pool.QueryRow(ctx, `SELECT p.account_id, p.next_poll_at, p.last_polled_at, p.relation_at, p.relation_member,
			p.provider_status, p.provider_status_at, p.last_error, w.n, w.oldest
		FROM account_polls p CROSS JOIN LATERAL (SELECT count(*) AS n, min(finished_at) AS oldest FROM targets t
			WHERE t.account_id = p.account_id AND t.status = 'sent' AND t.accepted_at IS NULL) w
		WHERE p.account_id = $1`, id).Scan(&st.AccountID, &st.NextPollAt, &last, &relAt, &member,
		&status, &statusAt, &lastErr, &st.Awaiting, &oldest)
	if err != nil {
		return nil, translate(fmt.Sprintf("poll state of account %d", id), err)
	}
	st.LastPolled, st.RelationAt, st.ProviderStatusAt, st.OldestAwaiting = finite(last), finite(relAt), finite(statusAt), finite(oldest)
	st.RelationMember, st.ProviderStatus, st.LastError = deref(member), deref(status), deref(lastErr)
	return &st, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// ClaimDuePolls returns up to limit accounts whose poll is due at now,
// oldest due first: Unipile accounts not disabled that have sent
// invitations awaiting an answer (there is nothing to find otherwise), or
// that are paused for their health (the poll checks it). It moves each one's
// next poll lease ahead, so that the poll is enqueued once; the worker
// that runs it sets the next one (SetNextPoll, FinishPoll). A poll lost
// with Redis comes due again when its lease ends.
//
// Whether an account has invitations awaiting an answer is one probe of
// targets_awaiting_acceptance, ordered as the index is: written as an
// EXISTS, Postgres planned it as a sequential scan of targets that stops at
// the first match (most targets are sent and unanswered), so every due
// account without one (a new account, or all its invitations answered)
// read the whole table at every claim.
func (s *Store) ClaimDuePolls(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]int64, error) {
	rows, err := s.pool.Query(ctx, `WITH due AS (
			SELECT p.account_id FROM account_polls p JOIN accounts a ON a.id = p.account_id
			WHERE p.next_poll_at <= $1 AND a.status <> 'disabled' AND a.provider = 'unipile'
				AND (coalesce((SELECT true FROM targets t WHERE t.account_id = a.id AND t.status = 'sent' AND t.accepted_at IS NULL
						ORDER BY t.provider_id LIMIT 1), false)
					OR a.status = 'paused' AND starts_with(a.pause_reason, $4))
			ORDER BY p.next_poll_at LIMIT $3 FOR UPDATE OF p SKIP LOCKED)
		UPDATE account_polls p SET next_poll_at = $2 FROM due WHERE p.account_id = due.account_id
		RETURNING p.account_id`, now, now.Add(lease), limit, HealthPausePrefix)
	if err != nil {
		return nil, translate("claim due polls", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	return ids, translate("claim due polls", err)
}

// SetNextPoll sets when account id is polled next, and the error of the
// last try ("" clears it).
func (s *Store) SetNextPoll(ctx context.Context, id int64, at time.Time, lastErr string) error {
	_, err := s.pool.Exec(ctx, `UPDATE account_polls SET next_poll_at = $2, last_error = nullif($3, '') WHERE account_id = $1`,
		id, at, truncate(lastErr, 500))
	return translate(fmt.Sprintf("set next poll of account %d", id), err)
}

// PollAttempt is a poll reserved in the ledger: the call may go out.
type PollAttempt struct {
	SendID  int64
	Account *Account
	State   *PollState
}

// BeginPoll reserves a relations poll of account id at now, paced like any
// call of the account (the 'poll' action: not paused or disabled, in
// working hours, room in its windows, past its gap), in the ledger before
// the call. A poll that may not go now is a NotNowError until it may. A
// poll whose worker died (in flight past lease) is closed as unknown
// first, counted at its reservation.
func (s *Store) BeginPoll(ctx context.Context, id int64, now time.Time, lease time.Duration) (*PollAttempt, error) {
	var at *PollAttempt
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		a, err := scanAccount(tx.QueryRow(ctx, `SELECT `+accountColumns+` FROM accounts a WHERE a.id = $1 FOR UPDATE`, id))
		if err != nil {
			return err
		}
		switch a.Status {
		case AccountDisabled:
			return &NotNowError{Until: now.Add(time.Hour), Reason: "account disabled: " + a.PauseReason, Released: true}
		case AccountPaused:
			if a.PausedUntil.After(now) {
				return &NotNowError{Until: a.PausedUntil, Reason: "account paused: " + a.PauseReason, Released: true}
			}
		}
		if open := a.NextOpen(now); open.IsZero() {
			return &NotNowError{Until: now.Add(24 * time.Hour), Reason: "account has no working days", Released: true}
		} else if open.After(now) {
			return &NotNowError{Until: open, Reason: "outside working hours", Released: true}
		}
		if _, err := tx.Exec(ctx, `UPDATE sends SET outcome = 'unknown', window_at = reserved_at,
				detail = 'worker stopped before recording the answer'
			WHERE account_id = $1 AND action = 'poll' AND outcome = 'in_flight' AND reserved_at < $2`, id, now.Add(-lease)); err != nil {
			return err
		}
		if until, reason, err := windowsFree(ctx, tx, a, ActionPoll, now); err != nil {
			return err
		} else if !until.IsZero() {
			return &NotNowError{Until: until, Reason: reason, Released: true}
		}
		pace := a.Pace(ActionPoll)
		if !pace.Gap.IsZero() {
			if until, reason, err := gapFree(ctx, tx, a, pace.Gap, now); err != nil {
				return err
			} else if !until.IsZero() {
				return &NotNowError{Until: until, Reason: reason, Released: true}
			}
		}
		var sendID int64
		if err := tx.QueryRow(ctx, `INSERT INTO sends (account_id, action, reserved_at, gap) VALUES ($1, 'poll', $2,
				CASE WHEN $3 THEN make_interval(secs => $4 + random() * $5) END) RETURNING id`,
			id, now, !pace.Gap.IsZero(), pace.Gap.Min.Seconds(), pace.Gap.Jitter.Seconds()).Scan(&sendID); err != nil {
			return err
		}
		at = &PollAttempt{SendID: sendID, Account: a}
		return nil
	})
	if err != nil {
		return nil, translate(fmt.Sprintf("begin poll of account %d", id), err)
	}
	st, err := s.PollState(ctx, id)
	if err != nil {
		return nil, err
	}
	at.State = st
	return at, nil
}

// PollFinish is the answer to a poll.
type PollFinish struct {
	SendID    int64
	AccountID int64
	Now       time.Time
	// Outcome is OutcomePolled, OutcomeRefused or OutcomeError, with the
	// provider's error type, HTTP status and detail.
	Outcome    Outcome
	ErrorType  string
	HTTPStatus int
	Detail     string
	// RelationAt and RelationMember are the newest relation seen (zero
	// keeps the state's).
	RelationAt     time.Time
	RelationMember string
	// NextPollAt is when the next poll is due.
	NextPollAt time.Time
}

// FinishPoll records a poll's answer in the ledger and the account's
// polling state, in one transaction. The newest relation seen only moves
// forward.
func (s *Store) FinishPoll(ctx context.Context, f PollFinish) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE sends SET outcome = $2, window_at = $3, error_type = nullif($4, ''),
				http_status = nullif($5, 0), detail = nullif($6, '')
			WHERE id = $1 AND outcome IN ('in_flight', 'unknown')`,
			f.SendID, f.Outcome, f.Now, f.ErrorType, f.HTTPStatus, truncate(f.Detail, 1000)); err != nil {
			return err
		}
		lastErr := ""
		if f.Outcome != OutcomePolled {
			lastErr = f.Detail
		}
		_, err := tx.Exec(ctx, `UPDATE account_polls SET last_polled_at = $2, next_poll_at = $3, last_error = nullif($4, ''),
				relation_member = CASE WHEN $5::timestamptz IS NOT NULL AND (relation_at IS NULL OR $5 >= relation_at) THEN $6 ELSE relation_member END,
				relation_at = CASE WHEN $5::timestamptz IS NOT NULL AND (relation_at IS NULL OR $5 >= relation_at) THEN $5 ELSE relation_at END
			WHERE account_id = $1`, f.AccountID, f.Now, f.NextPollAt, truncate(lastErr, 500), nullTime(f.RelationAt), f.RelationMember)
		return err
	})
	return translate(fmt.Sprintf("finish poll %d of account %d", f.SendID, f.AccountID), err)
}
