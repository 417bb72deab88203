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
	t, ar, person, err := lockTarget(ctx, tx, req.TargetID)
	if err != nil {
		return nil, err
	}
	if err := checkTargetState(t, req); err != nil {
		return nil, err
	}
	if req.Action == ActionInvite {
		// A person withdrawn by the account waits for LinkedIn's block.
		if err := checkWithdrawBlock(ctx, tx, t, now); err != nil {
			return nil, err
		}
	}
	if req.Serves != nil {
		if err := req.Serves(ar.account()); err != nil {
			return nil, &NotServedError{Account: ar.account(), Err: err}
		}
	}
	orphans, unanswered, err := closeOrphans(ctx, tx, t, req)
	if err != nil {
		return nil, err
	}
	if err := checkDoNotContact(ctx, tx, t, now); err != nil {
		return nil, err // a *DoNotContactError: Begin commits the skip
	}

	settle := unanswered > 0 && req.Action == ActionInvite && req.Settle != nil && req.Settle(ar.account())
	if settle {
		// Ask the provider before sending again: this reservation is the
		// lookup that settles the uncertain attempt, paced and counted as
		// a lookup.
		req.Action = ActionLookup
	}

	a, err := lockAccount(ctx, tx, ar, t.AccountID, req.Action, now)
	if err != nil {
		return nil, err
	}
	pace := a.Pace(req.Action)
	if err := checkPacing(ctx, tx, t, a, pace, req); err != nil {
		return nil, err
	}
	if err := checkDailyCap(ctx, tx, t, req); err != nil {
		return nil, err
	}
	if req.Action == ActionInvite {
		if err := claimOwner(ctx, tx, t, a, now); err != nil { // docs/owners.md
			return nil, err
		}
	}
	sendID, err := insertReservation(ctx, tx, t, a, pace, req)
	if err != nil {
		return nil, err
	}
	at := &Attempt{SendID: sendID, Target: t, Account: a, Orphaned: orphans > 0, Settle: settle}
	if person != nil {
		person.Provider, person.NormalizedIdentifier = a.Provider, t.NormalizedIdentifier
		at.Person = person
	}
	t.Status = TargetSending
	t.Attempts++
	return at, nil
}

// lockTarget locks the target FOR UPDATE and reads it with its campaign,
// its account (as first read, unlocked) and the cached profile of its
// person (nil when the people cache has none) in one query. A target that
// no longer exists is ErrStale.
func lockTarget(ctx context.Context, tx pgx.Tx, targetID int64) (*Target, *accountRow, *Person, error) {
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
		WHERE t.id = $1 FOR UPDATE OF t`, targetID).Scan(dest...)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil, nil, ErrStale
	}
	if err != nil {
		return nil, nil, nil, err
	}
	t.LockedUntil = finite(locked)
	var person *Person
	if hasPerson {
		person = &p
	}
	return &t, &ar, person, nil
}

// checkTargetState checks that the target is still this task's to send: queued,
// or sending under an expired lease (its worker died), of the task's
// generation, needing the task's action, in an active campaign. Otherwise
// the task is ErrStale, or a NotNowError (held by another worker; the
// campaign not active, handing the target back).
func checkTargetState(t *Target, req BeginRequest) error {
	now := req.Now
	switch {
	case t.Status == TargetQueued:
	case t.Status == TargetSending && !t.LockedUntil.After(now):
		// Its worker died; take it over.
	case t.Status == TargetSending:
		return &NotNowError{Until: t.LockedUntil, Reason: "held by another worker"}
	default:
		return ErrStale
	}
	if req.TaskGen != t.TaskGen {
		// A task of an earlier generation, such as the one asynq still
		// held for a worker that died: the target was queued again under
		// a new task.
		return ErrStale
	}
	if req.Action == ActionLookup && t.ProviderID != "" || req.Action == ActionInvite && t.ProviderID == "" {
		return ErrStale
	}
	if t.CampaignStatus != CampaignActive {
		return &NotNowError{Until: now, Reason: "campaign " + string(t.CampaignStatus), Released: true}
	}
	return nil
}

// closeOrphans closes the target's attempts whose worker died and counts
// them as orphans (an expired sending lease counts as one), and counts the
// attempts still unanswered, to be settled with the provider first.
//
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
func closeOrphans(ctx context.Context, tx pgx.Tx, t *Target, req BeginRequest) (orphans, unanswered int, err error) {
	now := req.Now
	var unclear int
	if err := tx.QueryRow(ctx, `WITH o AS (
			UPDATE sends SET outcome = 'unknown', window_at = least($2::timestamptz, reserved_at + make_interval(secs => $3)),
				detail = 'worker stopped before recording the answer'
			WHERE target_id = $1 AND outcome = 'in_flight' RETURNING 1),
		u AS (SELECT outcome, http_status FROM sends WHERE $4 AND target_id = $1 AND action = 'invite'
			AND outcome IN ('unknown', 'error') AND settled_at IS NULL)
		SELECT (SELECT count(*) FROM o), (SELECT count(*) FROM u),
			(SELECT count(*) FROM u WHERE outcome = 'unknown' OR http_status IS NULL)`,
		t.ID, now, req.RequestTimeout.Seconds(), req.Action == ActionInvite).Scan(&orphans, &unclear, &unanswered); err != nil {
		return 0, 0, err
	}
	if t.Status == TargetSending {
		orphans++ // held and expired: the call may have gone out even if no row says so
	}
	unanswered += orphans
	if orphans == 0 && req.Action == ActionInvite {
		orphans = unclear
	}
	return orphans, unanswered, nil
}

// lockAccount locks the account and reads it again: reservations of an
// account with something to count for action are serialised (FOR
// UPDATE), the others only hold it FOR SHARE. If the account as first read
// (ar) had nothing to count but now has, it is a NotNowError until now:
// the task tries again at once, under the lock it needs.
func lockAccount(ctx context.Context, tx pgx.Tx, ar *accountRow, accountID int64, action Action, now time.Time) (*Account, error) {
	counted := ar.account().counts(action, now)
	lock := "FOR SHARE"
	if counted {
		lock = "FOR UPDATE"
	}
	a, err := scanAccount(tx.QueryRow(ctx, `SELECT `+accountColumns+` FROM accounts a WHERE a.id = $1 `+lock, accountID))
	if err != nil {
		return nil, err
	}
	if !counted && a.counts(action, now) {
		// Limits or a gap were set since the first read: try again at
		// once, under the lock they need.
		return nil, &NotNowError{Until: now, Reason: "the account's limits changed"}
	}
	return a, nil
}

// checkPacing checks that the target is due and the account may act now:
// not disabled or paused, within working hours, past its invitation gap,
// with room in every window and past the gap of pace. Otherwise it is a
// NotNowError until then, which hands the target back when that is
// further than req.HoldFor.
func checkPacing(ctx context.Context, tx pgx.Tx, t *Target, a *Account, pace Pace, req BeginRequest) error {
	if err := accountNow(t, a, req); err != nil {
		return err
	}
	now := req.Now
	hold := func(until time.Time, reason string) error {
		return &NotNowError{Until: until, Reason: reason, Released: until.Sub(now) > req.HoldFor}
	}
	if until, reason, err := windowsFree(ctx, tx, a, req.Action, now); err != nil {
		return err
	} else if !until.IsZero() {
		return hold(until, reason)
	}
	// The action's gap, counted in the ledger from the answer to its
	// latest call, whatever that answer was: one call at a time, each
	// after the gap drawn for the one before. (After the windows: a full
	// window is the longer wait, and the clearer reason.)
	if !pace.Gap.IsZero() {
		if until, reason, err := gapFree(ctx, tx, a, pace.Gap, now); err != nil {
			return err
		} else if !until.IsZero() {
			return hold(until, reason)
		}
	}
	return nil
}

// accountNow is checkPacing's checks that need no query: the target is
// due, the account neither disabled nor paused, within working hours and
// past its invitation gap.
func accountNow(t *Target, a *Account, req BeginRequest) error {
	now := req.Now
	hold := func(until time.Time, reason string) error {
		return &NotNowError{Until: until, Reason: reason, Released: until.Sub(now) > req.HoldFor}
	}
	if t.NextAttemptAt.After(now) {
		// asynq schedules to the second: a task may come up to a second
		// before its target is due.
		return hold(t.NextAttemptAt, "not due yet")
	}
	switch a.Status {
	case AccountDisabled:
		return &NotNowError{Until: now, Reason: "account disabled: " + a.PauseReason, Released: true}
	case AccountPaused:
		if a.PausedUntil.After(now) {
			return hold(a.PausedUntil, "account paused: "+a.PauseReason)
		}
	}
	if open := a.NextOpen(now); open.IsZero() {
		return &NotNowError{Until: now.Add(24 * time.Hour), Reason: "account has no working days", Released: true}
	} else if open.After(now) {
		return hold(open, "outside working hours")
	}

	if req.Action == ActionInvite && a.NextSendAt.After(now) {
		return hold(a.NextSendAt, "minimum gap between invitations")
	}
	return nil
}

// insertReservation inserts the attempt's ledger row (in flight) and marks
// the target sending under a lease, in one statement, and returns the
// row's id. The gap after this call is drawn now and kept in its ledger
// row.
func insertReservation(ctx context.Context, tx pgx.Tx, t *Target, a *Account, pace Pace, req BeginRequest) (int64, error) {
	now := req.Now
	var sendID int64
	if err := tx.QueryRow(ctx, `WITH s AS (
			INSERT INTO sends (account_id, target_id, action, reserved_at, gap, worker_id) VALUES ($1, $2, $3, $4,
				CASE WHEN $6 THEN make_interval(secs => $7 + random() * $8) END, nullif($9, 0)) RETURNING id)
		UPDATE targets t SET status = 'sending', locked_until = $5, attempts = attempts + 1, updated_at = $4,
			current_send_id = s.id FROM s WHERE t.id = $2 RETURNING s.id`,
		a.ID, t.ID, req.Action, now, now.Add(req.Lease),
		!pace.Gap.IsZero(), pace.Gap.Min.Seconds(), pace.Gap.Jitter.Seconds(), req.WorkerID).Scan(&sendID); err != nil {
		return 0, err
	}
	return sendID, nil
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
