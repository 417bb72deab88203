package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/outreach-dev/outreach/provider"
)

// Outcome is the answer of one attempt as the ledger records it
// (sends.outcome).
type Outcome string

// Send outcomes recorded in the ledger.
const (
	OutcomeInFlight Outcome = "in_flight" // reserved, provider not answered yet
	OutcomeUnknown  Outcome = "unknown"   // the worker died while the request was out
	OutcomeSent     Outcome = "sent"      // invitation sent
	OutcomeResolved Outcome = "resolved"  // lookup answered
	OutcomeRefused  Outcome = "refused"   // the provider said no (error_type says why)
	OutcomeError    Outcome = "error"     // transport error or 5xx
	// OutcomeCached is a lookup answered from the people cache after all
	// (another target resolved the person meanwhile): no call was made, so
	// Finish removes the reservation from the ledger.
	OutcomeCached Outcome = "cached"
)

// NotNowError says a target cannot be sent yet, and from when it can.
// Returned by Begin; Released tells whether the target was handed back to
// the scheduler (pending again, its task no longer needed) or is still
// queued and its task should be retried at Until.
type NotNowError struct {
	Until    time.Time
	Reason   string
	Released bool
}

func (e *NotNowError) Error() string {
	s := "not before " + e.Until.Format(time.RFC3339Nano) + ": " + e.Reason
	if e.Released {
		s += " (handed back)"
	}
	return s
}

// BeginRequest asks to reserve a send slot for a target.
type BeginRequest struct {
	TargetID int64
	// Action is ActionInvite or ActionLookup.
	Action Action
	Now    time.Time
	// Lease is how long the worker may hold the target; after it another
	// worker may take it over.
	Lease time.Duration
	// RequestTimeout bounds an orphaned request: the provider cannot have
	// seen it later than its reservation plus this.
	RequestTimeout time.Duration
	// HoldFor is the longest wait for which the target stays queued (its
	// task retried later); a longer wait hands the target back.
	HoldFor time.Duration
	// Serves, when set, is asked whether the caller can serve the
	// target's account (a worker: has a client for its provider and
	// credentials_ref) before anything is reserved. An error ends Begin
	// with a *NotServedError, and nothing is written: no ledger row, no
	// attempt counted, the account unchanged.
	Serves func(a *Account) error
	// TaskGen is the generation of the task asking (Target.TaskGen when it
	// was enqueued); a task of another generation gets ErrStale.
	TaskGen int
	// WorkerID is the liveness id of the worker process reserving (see
	// HeartbeatConn), recorded on the ledger row; 0 for none, which leaves
	// the row to the lease alone.
	WorkerID int64
	// Settle, if not nil, reports whether an uncertain earlier invitation
	// from the account can be settled from its provider's own state. If
	// it can and the target has one, an invite reservation becomes the
	// lookup that settles it (Attempt.Settle), paced and counted as a
	// lookup.
	Settle func(*Account) bool
}

// Attempt is a reserved send: the ledger row is written, the target is
// held by the caller until Finish.
type Attempt struct {
	SendID  int64
	Target  *Target
	Account *Account
	// Person is the cached profile, if any.
	Person *Person
	// Orphaned is true when an earlier attempt of this target ended with no
	// clear answer (a worker died during the call, a timeout, a 5xx), so
	// the provider may have received it.
	Orphaned bool
	// Settle is true when the reservation is the lookup that settles the
	// uncertain attempt (see BeginRequest.Settle): ask the provider
	// whether it went out, and record the answer with Finish.Settled.
	Settle bool
}

// Person is a resolved profile in the cache.
type Person struct {
	Provider             provider.Name
	NormalizedIdentifier string
	ProviderID           string
	FirstName, LastName  string
	Headline             string
	LookedUpBy           int64
	NetworkDistance      string
	IsRelationship       bool
	InvitationStatus     string
}

// Begin checks that the target is still due and its campaign and account
// active, then reserves a slot against the account's limits, atomically
// with any other process doing the same for the account. It returns
// ErrStale when the target is no longer queued (the task is obsolete),
// *NotNowError when it must wait.
func (s *Store) Begin(ctx context.Context, req BeginRequest) (*Attempt, error) {
	op := fmt.Sprintf("begin %s of target %d", req.Action, req.TargetID)
	var at *Attempt
	var stopped *DoNotContactError
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		at, err = reserve(ctx, tx, req)
		if dnc := (*DoNotContactError)(nil); errors.As(err, &dnc) {
			stopped = dnc // commit the skip
			return nil
		}
		return err
	})
	if stopped != nil {
		return nil, fmt.Errorf("%s: %w", op, stopped)
	}
	var owned *OwnedError
	if errors.As(err, &owned) {
		if err := s.skipOwned(ctx, req.TargetID, req.Now, owned.Reason); err != nil {
			return nil, translate(op, err)
		}
		return nil, fmt.Errorf("%s: %w (%s)", op, ErrStale, owned.Reason)
	}
	var nn *NotNowError
	if errors.As(err, &nn) {
		if nn.Released {
			if rerr := s.release(ctx, req.TargetID, nn.Until, nn.Reason); rerr != nil {
				return nil, translate(op, rerr)
			}
		}
		return nil, err
	}
	if errors.Is(err, ErrStale) {
		return nil, fmt.Errorf("%s: %w", op, ErrStale)
	}
	if err != nil {
		return nil, translate(op, err)
	}
	return at, nil
}

func minDur(a, b time.Duration) time.Duration {
	if a < b {
		return a
	}
	return b
}

// handBackSQL gives target $1 back to the scheduler, due at $2, with last
// error $3; its wait reason becomes $4 (NULL keeps it). Only a target in
// one of the statuses $5 is changed.
const handBackSQL = `UPDATE targets SET status = 'pending', next_attempt_at = $2, queued_at = NULL,
		last_error = $3, wait_reason = coalesce($4, wait_reason), updated_at = now()
		WHERE id = $1 AND status = ANY($5::text[])`

// release hands a queued target back to the scheduler, due at until.
func (s *Store) release(ctx context.Context, targetID int64, until time.Time, reason string) error {
	_, err := s.pool.Exec(ctx, handBackSQL, targetID, until, "waiting: "+reason, reason, []string{string(TargetQueued), string(TargetSending)})
	return err
}

// Finish records the answer to an attempt: the ledger row, the target's new
// state and any change to the account, in one transaction.
type Finish struct {
	SendID    int64
	TargetID  int64
	AccountID int64
	Now       time.Time

	// Action is the reservation's action (ActionInvite, ActionLookup),
	// used only if Postgres lost the reservation; empty means invite.
	Action Action

	// The ledger row.
	Outcome      Outcome
	ErrorType    string
	HTTPStatus   int
	InvitationID string
	Detail       string

	// The target's new state: TargetSent, TargetSkipped, TargetFailed
	// (terminal), TargetPending (handed back, due at NextAttemptAt) or
	// TargetQueued (its task retries at NextAttemptAt).
	TargetStatus  TargetStatus
	NextAttemptAt time.Time
	LastError     string
	// CountDeferral adds one to the target's deferrals; ResetDeferrals sets
	// them back to zero.
	CountDeferral  bool
	ResetDeferrals bool
	Message        string

	// Person, for a lookup: cached, and its provider id set on the target.
	// A person the account already invites in another target makes this
	// target skipped.
	Person *Person

	// Account changes.
	PauseUntil  time.Time // pause the account until then, if later than now
	PauseReason string
	Disable     bool      // disable the account until an operator resumes it
	NextSendAt  time.Time // earliest next invite of the account (gap), zero to leave
	SlowUntil   time.Time // widen the gap until then, zero to leave
	// WarmupWarning, when set, steps the account's ramp back and holds it
	// (docs/warmup.md), saying why.
	WarmupWarning string

	// Settled records the answer of a settling lookup (Attempt.Settle):
	// the target's uncertain invitations (outcome unknown or error) are
	// settled. With SettledSent the latest of them went out: it becomes
	// 'sent' with InvitationID (which the target gets too); without, none
	// did, and the target may be invited.
	Settled, SettledSent bool
}

// targetHeld is the condition under which an answer updates its target:
// the target is held by this attempt, or (a late answer of an attempt
// recovered from a worker taken for dead, its ledger row 'unknown') the
// target was queued again and nothing was tried since. $1 is the send id.
const targetHeld = `((status = 'sending' AND current_send_id = $1) OR (status IN ('queued', 'pending') AND current_send_id IS NULL
	AND %s AND NOT EXISTS (SELECT 1 FROM sends x WHERE x.target_id = targets.id AND x.id > $1)))`

// targetAnswerSet is the SET list of the UPDATE that records an answer on
// its target (Finish, finishTarget, finishLost), given the statement's
// placeholders or literals: %[1]s the status, %[2]s the next attempt
// (NULL keeps it), %[3]s the last error, %[4]s the error type, %[5]s the
// invitation id, %[6]s whether to count a deferral, %[7]s whether to reset
// the deferrals, %[8]s the message, %[9]s the provider id (NULL keeps it;
// a pending target that gets one starts its attempts over), %[10]s now.
const targetAnswerSet = `status = %[1]s::text, next_attempt_at = coalesce(%[2]s, next_attempt_at),
				last_error = nullif(%[3]s, ''), error_type = nullif(%[4]s, ''), invitation_id = coalesce(nullif(%[5]s, ''), invitation_id),
				deferrals = CASE WHEN %[6]s THEN deferrals + 1 WHEN %[7]s THEN 0 ELSE deferrals END,
				message = coalesce(nullif(%[8]s, ''), message), provider_id = coalesce(%[9]s, provider_id),
				attempts = CASE WHEN %[9]s::text IS NOT NULL AND %[1]s::text = 'pending' THEN 0 ELSE attempts END,
				locked_until = NULL, current_send_id = NULL, updated_at = %[10]s::timestamptz,
				queued_at = CASE WHEN %[1]s::text = 'queued' THEN coalesce(queued_at, %[10]s::timestamptz) END,
				finished_at = CASE WHEN %[1]s::text IN ('sent', 'skipped', 'failed') THEN %[10]s::timestamptz END`

// Finish records an attempt's answer. It returns ErrStale if the target was
// changed meanwhile by someone else (the ledger row is recorded anyway).
// It is idempotent: an answer already recorded (a retry after a commit
// whose acknowledgement was lost) changes nothing and returns nil, so a
// caller retries it until it returns.
func (s *Store) Finish(ctx context.Context, f Finish) error {
	op := fmt.Sprintf("finish send %d of target %d", f.SendID, f.TargetID)
	if f.Person == nil && f.Outcome != OutcomeCached && !f.Disable && !f.PauseUntil.After(f.Now) &&
		f.NextSendAt.IsZero() && f.SlowUntil.IsZero() && !f.Settled && f.WarmupWarning == "" {
		return s.finishTarget(ctx, op, f)
	}
	var stale, done, lost bool
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		stale, done, lost = false, false, false
		// The ledger row, if its answer is not recorded yet.
		var prev Outcome
		err := tx.QueryRow(ctx, `SELECT outcome FROM sends WHERE id = $1 FOR UPDATE`, f.SendID).Scan(&prev)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			lost = true
			return nil
		case err != nil:
			return err
		case prev != OutcomeInFlight && prev != OutcomeUnknown:
			done = true // recorded already
			return nil
		}
		late := prev == OutcomeUnknown
		if f.Outcome == OutcomeCached {
			_, err = tx.Exec(ctx, `DELETE FROM sends WHERE id = $1`, f.SendID)
		} else {
			_, err = tx.Exec(ctx, `UPDATE sends SET outcome = $2, window_at = $3, error_type = nullif($4, ''),
					http_status = nullif($5, 0), invitation_id = nullif($6, ''), detail = nullif($7, '')
				WHERE id = $1`,
				f.SendID, f.Outcome, f.Now, f.ErrorType, f.HTTPStatus, f.InvitationID, truncate(f.Detail, 1000))
		}
		if err != nil {
			return err
		}
		if f.Settled {
			if err := settle(ctx, tx, f); err != nil {
				return err
			}
		}
		status, lastErr, errType := f.TargetStatus, f.LastError, f.ErrorType
		var pid *string
		if f.Person != nil {
			if err := upsertPerson(ctx, tx, f.Person); err != nil {
				return err
			}
			if f.Outcome != OutcomeCached {
				if err := noteRelation(ctx, tx, f.AccountID, f.Person, f.Now); err != nil {
					return err
				}
			}
			if status == TargetPending {
				p := f.Person.ProviderID
				pid = &p
				taken, err := livePersonTargets(ctx, tx, []int64{f.AccountID}, []string{p}, []int64{f.TargetID})
				if err != nil {
					return err
				}
				if other, dup := taken[personKey(f.AccountID, p)]; dup {
					status, errType, lastErr = duplicate(other)
				}
			}
		}
		tag, err := tx.Exec(ctx, `UPDATE targets SET `+fmt.Sprintf(targetAnswerSet, "$2", "$3", "$4", "$5", "$6", "$7", "$8", "$9", "$10", "$11")+`
			WHERE id = $12 AND `+fmt.Sprintf(targetHeld, "$13"),
			f.SendID, status, nullTime(f.NextAttemptAt), lastErr, errType, f.InvitationID,
			f.CountDeferral, f.ResetDeferrals, f.Message, pid, f.Now, f.TargetID, late)
		if err != nil {
			return err
		}
		stale = tag.RowsAffected() == 0
		if !stale && status == TargetPending && pid != nil {
			// A resolved target is ready for its invitation: wake the
			// scheduler rather than wait for its next poll.
			if _, err := tx.Exec(ctx, `SELECT pg_notify('outreach_wake', 'resolved')`); err != nil {
				return err
			}
		}
		err = stopAccount(ctx, tx, f.AccountID, f.Disable, f.PauseUntil, f.PauseReason, f.Now)
		if err == nil && f.WarmupWarning != "" {
			err = stepBackWarmup(ctx, tx, f.AccountID, f.Now, f.WarmupWarning)
		}
		if err != nil {
			return err
		}
		if !f.NextSendAt.IsZero() || !f.SlowUntil.IsZero() {
			_, err = tx.Exec(ctx, `UPDATE accounts SET next_send_at = coalesce($2, next_send_at), slow_until = coalesce($3, slow_until) WHERE id = $1`,
				f.AccountID, nullTime(f.NextSendAt), nullTime(f.SlowUntil))
		}
		return err
	})
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" && f.Person != nil {
		// Another target of this account resolved to the same person at
		// the same moment: this one is the duplicate.
		f.Person = &Person{Provider: f.Person.Provider, NormalizedIdentifier: f.Person.NormalizedIdentifier, ProviderID: f.Person.ProviderID,
			FirstName: f.Person.FirstName, LastName: f.Person.LastName, Headline: f.Person.Headline}
		f.TargetStatus, f.ErrorType, f.LastError = duplicate(0)
		return s.Finish(ctx, f)
	}
	if err != nil {
		return translate(op, err)
	}
	if lost {
		return s.finishLost(ctx, op, f)
	}
	if stale && !done {
		return fmt.Errorf("%s: %w", op, ErrStale)
	}
	return nil
}

// finishLost records an answer whose reservation Postgres lost (a crash or
// a failover without synchronous commit undid a committed transaction):
// the call was made all the same, so a new ledger row is written with the
// answer, and the target takes it if it is waiting and nothing was tried
// since. (A profile to cache or an account change is not applied.)
func (s *Store) finishLost(ctx context.Context, op string, f Finish) error {
	if f.Outcome == OutcomeCached {
		return nil // no call was made
	}
	action := f.Action
	if action == "" {
		action = ActionInvite
	}
	var updated bool
	err := s.pool.QueryRow(ctx, `WITH s AS (
			INSERT INTO sends (account_id, target_id, action, reserved_at, window_at, outcome, error_type, http_status, invitation_id, detail)
			VALUES ($1, $2, $3, $4, $4, $5, nullif($6, ''), nullif($7, 0), nullif($8, ''), $9) RETURNING id),
		t AS (
			UPDATE targets SET `+fmt.Sprintf(targetAnswerSet, "$10", "$11", "$12", "$6", "$8", "false", "false", "''", "NULL", "$4")+`
			WHERE id = $2 AND status IN ('queued', 'pending') AND current_send_id IS NULL
				AND NOT EXISTS (SELECT 1 FROM sends x WHERE x.target_id = $2 AND x.outcome = 'in_flight')
			RETURNING 1)
		SELECT EXISTS (SELECT 1 FROM t)`,
		f.AccountID, f.TargetID, action, f.Now, f.Outcome, f.ErrorType, f.HTTPStatus, f.InvitationID,
		truncate("the database lost the reservation; answer recorded anew: "+f.Detail, 1000),
		f.TargetStatus, nullTime(f.NextAttemptAt), f.LastError).Scan(&updated)
	if err != nil {
		return translate(op, err)
	}
	if !updated {
		return fmt.Errorf("%s: reservation lost: %w", op, ErrStale)
	}
	return nil
}

// settle records what a settling lookup learnt of the target's uncertain
// invitations: all are settled; with f.SettledSent the latest went out.
func settle(ctx context.Context, tx pgx.Tx, f Finish) error {
	if f.SettledSent {
		if _, err := tx.Exec(ctx, `UPDATE sends SET outcome = 'sent', invitation_id = coalesce(nullif($2, ''), invitation_id),
				settled_at = $3, detail = 'settled from the provider: the invitation went out (send ' || $4::bigint || ')'
			WHERE id = (SELECT max(id) FROM sends WHERE target_id = $1 AND action = 'invite'
				AND outcome IN ('unknown', 'error') AND settled_at IS NULL)`, f.TargetID, f.InvitationID, f.Now, f.SendID); err != nil {
			return err
		}
	}
	_, err := tx.Exec(ctx, `UPDATE sends SET settled_at = $2
		WHERE target_id = $1 AND action = 'invite' AND outcome IN ('unknown', 'error') AND settled_at IS NULL`, f.TargetID, f.Now)
	return err
}

// finishTarget records an answer that changes only the ledger row and the
// target (most answers: no profile to cache, no change to the account) in
// one statement, its own transaction: one round trip instead of four.
// An answer already recorded changes nothing (see Finish).
func (s *Store) finishTarget(ctx context.Context, op string, f Finish) error {
	var found, recorded, updated bool
	err := s.pool.QueryRow(ctx, `WITH o AS (SELECT outcome FROM sends WHERE id = $1 FOR UPDATE),
		s AS (
			UPDATE sends SET outcome = $2, window_at = $3, error_type = nullif($4, ''),
				http_status = nullif($5, 0), invitation_id = nullif($6, ''), detail = nullif($7, '')
			WHERE id = $1 AND (SELECT outcome FROM o) IN ('in_flight', 'unknown') RETURNING 1),
		t AS (
			UPDATE targets SET `+fmt.Sprintf(targetAnswerSet, "$9", "$10", "$11", "$4", "$6", "$12", "$13", "$14", "NULL", "$3")+`
			WHERE id = $8 AND EXISTS (SELECT 1 FROM s) AND `+fmt.Sprintf(targetHeld, "(SELECT outcome FROM o) = 'unknown'")+`
			RETURNING 1)
		SELECT EXISTS (SELECT 1 FROM o), EXISTS (SELECT 1 FROM s), EXISTS (SELECT 1 FROM t)`,
		f.SendID, f.Outcome, f.Now, f.ErrorType, f.HTTPStatus, f.InvitationID, truncate(f.Detail, 1000),
		f.TargetID, f.TargetStatus, nullTime(f.NextAttemptAt), f.LastError, f.CountDeferral, f.ResetDeferrals, f.Message).Scan(&found, &recorded, &updated)
	if err != nil {
		return translate(op, err)
	}
	if !found {
		return s.finishLost(ctx, op, f)
	}
	if recorded && !updated {
		return fmt.Errorf("%s: %w", op, ErrStale)
	}
	return nil
}

func upsertPerson(ctx context.Context, tx pgx.Tx, p *Person) error {
	_, err := tx.Exec(ctx, `INSERT INTO people (provider, normalized_identifier, provider_id, first_name, last_name, headline,
			looked_up_by, network_distance, is_relationship, invitation_status, fetched_at)
		VALUES ($1, $2, $3, $4, $5, $6, nullif($7, 0), nullif($8, ''), $9, nullif($10, ''), now())
		ON CONFLICT (provider, normalized_identifier) DO UPDATE SET provider_id = excluded.provider_id,
			first_name = excluded.first_name, last_name = excluded.last_name, headline = excluded.headline,
			looked_up_by = excluded.looked_up_by, network_distance = excluded.network_distance,
			is_relationship = excluded.is_relationship, invitation_status = excluded.invitation_status,
			fetched_at = excluded.fetched_at`,
		p.Provider, p.NormalizedIdentifier, p.ProviderID, p.FirstName, p.LastName, p.Headline,
		p.LookedUpBy, p.NetworkDistance, p.IsRelationship, p.InvitationStatus)
	return err
}

func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n])
}

// CountRefusals counts the account's ledger rows since a time whose error
// type is one of types (or, when status is not 0, whose HTTP status is
// status). With distinctTargets, it counts different targets instead.
func (s *Store) CountRefusals(ctx context.Context, accountID int64, types []string, status int, since time.Time, distinctTargets bool) (int, error) {
	q := `SELECT count(*) FROM sends WHERE account_id = $1 AND action IN ('invite', 'lookup') AND window_at >= $4 AND window_at < 'infinity'
		AND (error_type = ANY($2) OR ($3 <> 0 AND http_status = $3))`
	if distinctTargets {
		q = `SELECT count(DISTINCT target_id) FROM sends WHERE account_id = $1 AND action IN ('invite', 'lookup') AND window_at >= $4 AND window_at < 'infinity'
		AND (error_type = ANY($2) OR ($3 <> 0 AND http_status = $3))`
	}
	var n int
	err := s.pool.QueryRow(ctx, q, accountID, types, status, since).Scan(&n)
	return n, translate("count refusals", err)
}
