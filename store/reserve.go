package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// reserve is Begin's transaction. It takes six round trips for an account
// without limits or gap (eight with them), and serialises reservations of
// one account only when the account has something to count:
//
//   - the target is locked and read with its campaign, its account and the
//     cached profile in one query;
//   - an account whose pacing of the action (Account.Pace: limits or a
//     gap, its own or its provider's defaults) counts anything is locked
//     FOR UPDATE: its reservations run one at a time, each counting the
//     ledger rows of the ones before. An account with neither is only
//     locked FOR SHARE, so its reservations run in parallel, while any
//     change to the account (limits, gap, pause; all take a stronger lock)
//     waits for them, and is seen by the next reservation;
//   - orphaned attempts are closed and counted in one statement, every
//     window is checked in one statement, and the ledger row is inserted
//     with the target's update in one statement.
func reserve(ctx context.Context, tx pgx.Tx, req BeginRequest) (*Attempt, error) {
	now := req.Now
	var t Target
	var ar accountRow
	var locked *time.Time
	var hasPerson bool
	var p Person
	dest := targetDest(&t, &locked)
	dest = append(dest, ar.dest()...)
	dest = append(dest, &hasPerson, &p.ProviderID, &p.FirstName, &p.LastName, &p.Headline,
		&p.LookedUpBy, &p.NetworkDistance, &p.IsRelationship, &p.InvitationStatus, &t.TaskGen)
	err := tx.QueryRow(ctx, `SELECT `+targetColumns+`, `+accountColumns+`, p.provider IS NOT NULL,
			coalesce(p.provider_id, ''), coalesce(p.first_name, ''), coalesce(p.last_name, ''), coalesce(p.headline, ''),
			coalesce(p.looked_up_by, 0), coalesce(p.network_distance, ''), coalesce(p.is_relationship, false),
			coalesce(p.invitation_status, ''), t.task_gen
		FROM targets t JOIN campaigns c ON c.id = t.campaign_id JOIN accounts a ON a.id = t.account_id
		LEFT JOIN people p ON p.provider = a.provider AND p.normalized_identifier = t.normalized_identifier
		WHERE t.id = $1 FOR UPDATE OF t`, req.TargetID).Scan(dest...)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrStale
	}
	if err != nil {
		return nil, err
	}
	t.LockedUntil = finite(locked)
	switch {
	case t.Status == TargetQueued:
	case t.Status == TargetSending && !t.LockedUntil.After(now):
		// Its worker died; take it over.
	case t.Status == TargetSending:
		return nil, &NotNowError{Until: t.LockedUntil, Reason: "held by another worker"}
	default:
		return nil, ErrStale
	}
	if req.TaskGen != t.TaskGen {
		// A task of an earlier generation, such as the one asynq still
		// held for a worker that died: the target was queued again under
		// a new task.
		return nil, ErrStale
	}
	if req.Action == ActionLookup && t.ProviderID != "" || req.Action == ActionInvite && t.ProviderID == "" {
		return nil, ErrStale
	}
	if t.CampaignStatus != CampaignActive {
		return nil, &NotNowError{Until: now, Reason: "campaign " + string(t.CampaignStatus), Released: true}
	}
	if req.Serves != nil {
		if err := req.Serves(ar.account()); err != nil {
			return nil, &NotServedError{Account: ar.account(), Err: err}
		}
	}
	// Attempts of this target whose worker died: the provider may have
	// seen them, at the latest when they timed out or now. Without any, an
	// earlier invite whose answer never came (a timeout, a dropped
	// connection, a 5xx) may have reached the provider as well, unless it
	// was settled since. (The counts read the ledger as it was before the
	// update.) Those with no answer at all (the worker died, the answer was
	// lost, a transport error such as a timeout) are settled with the
	// provider first when it can tell (unanswered); a 5xx, an answer most
	// likely not processed, keeps the rule that already_invited_recently
	// then means sent.
	var orphans, unclear, unanswered int
	if err := tx.QueryRow(ctx, `WITH o AS (
			UPDATE sends SET outcome = 'unknown', window_at = least($2::timestamptz, reserved_at + make_interval(secs => $3)),
				detail = 'worker stopped before recording the answer'
			WHERE target_id = $1 AND outcome = 'in_flight' RETURNING 1),
		u AS (SELECT outcome, http_status FROM sends WHERE $4 AND target_id = $1 AND action = 'invite'
			AND outcome IN ('unknown', 'error') AND settled_at IS NULL)
		SELECT (SELECT count(*) FROM o), (SELECT count(*) FROM u),
			(SELECT count(*) FROM u WHERE outcome = 'unknown' OR http_status IS NULL)`,
		t.ID, now, req.RequestTimeout.Seconds(), req.Action == ActionInvite).Scan(&orphans, &unclear, &unanswered); err != nil {
		return nil, err
	}
	if t.Status == TargetSending {
		orphans++ // held and expired: the call may have gone out even if no row says so
	}
	unanswered += orphans
	if orphans == 0 && req.Action == ActionInvite {
		orphans = unclear
	}

	settle := unanswered > 0 && req.Action == ActionInvite && req.Settle != nil && req.Settle(ar.account())
	if settle {
		// Ask the provider before sending again: this reservation is the
		// lookup that settles the uncertain attempt, paced and counted as
		// a lookup.
		req.Action = ActionLookup
	}

	// Lock the account: reservations of an account with something to
	// count are serialised.
	counted := ar.account().counts(req.Action, now)
	lock := "FOR SHARE"
	if counted {
		lock = "FOR UPDATE"
	}
	a, err := scanAccount(tx.QueryRow(ctx, `SELECT `+accountColumns+` FROM accounts a WHERE a.id = $1 `+lock, t.AccountID))
	if err != nil {
		return nil, err
	}
	if !counted && a.counts(req.Action, now) {
		// Limits or a gap were set since the first read: try again at
		// once, under the lock they need.
		return nil, &NotNowError{Until: now, Reason: "the account's limits changed"}
	}
	hold := func(until time.Time, reason string) error {
		return &NotNowError{Until: until, Reason: reason, Released: until.Sub(now) > req.HoldFor}
	}
	if t.NextAttemptAt.After(now) {
		// asynq schedules to the second: a task may come up to a second
		// before its target is due.
		return nil, hold(t.NextAttemptAt, "not due yet")
	}
	switch a.Status {
	case AccountDisabled:
		return nil, &NotNowError{Until: now, Reason: "account disabled: " + a.PauseReason, Released: true}
	case AccountPaused:
		if a.PausedUntil.After(now) {
			return nil, hold(a.PausedUntil, "account paused: "+a.PauseReason)
		}
	}
	if open := a.NextOpen(now); open.IsZero() {
		return nil, &NotNowError{Until: now.Add(24 * time.Hour), Reason: "account has no working days", Released: true}
	} else if open.After(now) {
		return nil, hold(open, "outside working hours")
	}

	if req.Action == ActionInvite && a.NextSendAt.After(now) {
		return nil, hold(a.NextSendAt, "minimum gap between invitations")
	}
	if until, reason, err := windowsFree(ctx, tx, a, req.Action, now); err != nil {
		return nil, err
	} else if !until.IsZero() {
		return nil, hold(until, reason)
	}
	// The action's gap, counted in the ledger from the answer to its
	// latest call, whatever that answer was: one call at a time, each
	// after the gap drawn for the one before. (After the windows: a full
	// window is the longer wait, and the clearer reason.)
	pace := a.Pace(req.Action)
	if !pace.Gap.IsZero() {
		if until, reason, err := gapFree(ctx, tx, a, pace.Gap, now); err != nil {
			return nil, err
		} else if !until.IsZero() {
			return nil, hold(until, reason)
		}
	}

	// The gap after this call is drawn now and kept in its ledger row.
	var sendID int64
	if err := tx.QueryRow(ctx, `WITH s AS (
			INSERT INTO sends (account_id, target_id, action, reserved_at, gap, worker_id) VALUES ($1, $2, $3, $4,
				CASE WHEN $6 THEN make_interval(secs => $7 + random() * $8) END, nullif($9, 0)) RETURNING id)
		UPDATE targets t SET status = 'sending', locked_until = $5, attempts = attempts + 1, updated_at = $4,
			current_send_id = s.id FROM s WHERE t.id = $2 RETURNING s.id`,
		a.ID, t.ID, req.Action, now, now.Add(req.Lease),
		!pace.Gap.IsZero(), pace.Gap.Min.Seconds(), pace.Gap.Jitter.Seconds(), req.WorkerID).Scan(&sendID); err != nil {
		return nil, err
	}
	at := &Attempt{SendID: sendID, Target: &t, Account: a, Orphaned: orphans > 0, Settle: settle}
	if hasPerson {
		p.Provider, p.NormalizedIdentifier = a.Provider, t.NormalizedIdentifier
		at.Person = &p
	}
	t.Status = TargetSending
	t.Attempts++
	return at, nil
}

// windowsFree checks every rolling window of the account for action in one
// query: for each, the Max-th latest ledger row inside it. It returns when
// the fullest window frees (zero if all have room) and why.
func windowsFree(ctx context.Context, tx pgx.Tx, a *Account, action Action, now time.Time) (time.Time, string, error) {
	limits := a.LimitsFor(action)
	if len(limits) == 0 {
		return time.Time{}, "", nil
	}
	since := make([]time.Time, len(limits))
	offsets := make([]int64, len(limits))
	for i, l := range limits {
		since[i], offsets[i] = now.Add(-l.Per), int64(l.Max-1)
	}
	rows, err := tx.Query(ctx, `SELECT l.i, w.at FROM unnest($3::timestamptz[], $4::bigint[]) WITH ORDINALITY AS l(since, off, i)
		CROSS JOIN LATERAL (SELECT CASE WHEN window_at = 'infinity' THEN NULL ELSE window_at END AS at FROM sends
			WHERE account_id = $1 AND action = $2 AND window_at > l.since
			ORDER BY window_at DESC OFFSET l.off LIMIT 1) w`, a.ID, action, since, offsets)
	if err != nil {
		return time.Time{}, "", err
	}
	defer rows.Close()
	var until time.Time
	var reason string
	for rows.Next() {
		var i int
		var w *time.Time
		if err := rows.Scan(&i, &w); err != nil {
			return time.Time{}, "", err
		}
		l := limits[i-1]
		free := now.Add(time.Second) // the window is full of requests still out
		if w != nil {
			free = w.Add(l.Per)
		}
		if free.After(until) {
			until, reason = free, "limit "+l.String()+" reached"
			if a.LimitSources[action] == SourceDefault {
				reason += " (provider default pacing)"
			}
		}
	}
	return until, reason, rows.Err()
}

// counts reports whether a reservation of action must count anything on
// the account: its pacing (limits or a gap, from any source), or for
// invites a gap drawn after the last invitation, still running at now.
func (a *Account) counts(action Action, now time.Time) bool {
	if a.Pace(action).Paced() {
		return true
	}
	return action == ActionInvite && a.NextSendAt.After(now)
}

// ExtendPause pauses an active or paused account until at least until,
// with a reason; a longer pause stays, a disabled account stays disabled.
func (s *Store) ExtendPause(ctx context.Context, id int64, until time.Time, reason string) error {
	_, err := pause(ctx, s.pool, id, until, reason, pauseExtend)
	return translate(fmt.Sprintf("pause account %d", id), err)
}
