package store

import (
	"context"
	"sort"
	"time"
)

// AccountWork is an account with work due, and what the planner needs to
// place its next send slots.
type AccountWork struct {
	Account *Account
	// DueInvites and DueLookups report whether resolved (or unresolved)
	// targets of an active campaign of the account are due.
	DueInvites, DueLookups bool
	// QueuedInvites and QueuedLookups count targets already queued or
	// being sent; SendingInvites and SendingLookups those of them being
	// sent, whose calls are in Recent already (requests still out).
	QueuedInvites, QueuedLookups   int
	SendingInvites, SendingLookups int
	// Recent holds, per limit of the account, the window times of its
	// latest sends inside the window (newest first, at most Max of them). A
	// zero time is a request still in flight.
	Recent map[Limit][]time.Time
	// NextCall holds, per action with a gap (Account.Pace), the earliest
	// time the gap lets the action's next call go: the answer to its
	// latest call plus the gap drawn for it, or for a call still out, now
	// plus the minimum gap.
	NextCall map[Action]time.Time
}

// ResumeExpiredPauses makes accounts whose pause has ended active again and
// returns how many.
func (s *Store) ResumeExpiredPauses(ctx context.Context, now time.Time) (int64, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE accounts SET status = 'active', paused_until = NULL, pause_reason = NULL, updated_at = now()
		WHERE status = 'paused' AND paused_until <= $1`, now)
	if err != nil {
		return 0, translate("resume expired pauses", err)
	}
	return tag.RowsAffected(), nil
}

// AccountsWithWork returns the active accounts that have targets due by
// dueBy in an active campaign they send for (theirs, or a pool's not given
// to a sender yet), with their recent sends per limit. An account's own
// new targets (identifier not yet normalised) count as due invitations:
// ClaimAndPrepare normalises them when it claims them. The accounts'
// effective limits and gaps come from rules where it holds them (nil: read
// for every account, in one query).
//
// Whether a sender has due targets is one index probe (LIMIT 1) per
// campaign for the pool's unassigned targets (targets_pool_due) and per
// (campaign, sender) for the sender's own (targets_due_sender), so its cost
// follows the number of senders, not of targets; only accounts with due
// work are read in full. (It was a correlated EXISTS per account whose
// bitmap scans read every due target of the account's campaigns: 235 ms a
// call at 20,000 targets.) Each probe is ordered as its index is (ORDER BY
// next_attempt_at): without it, the statistics of a large pool campaign
// (most targets unassigned and due) made Postgres take the pool probes for
// sequential scans that stop at their first match, run for every
// campaign, and every campaign without a match read the whole table.
//
// The queued and sending targets are counted per account with due work, in
// its own range of targets_in_flight, so each is read once whatever the
// statistics say. (A GROUP BY over all of them, joined to the accounts, was
// planned as a nested loop when targets had last been analysed with little
// in flight, as after any quiet spell: every in-flight target was read
// again for every account, 23 ms a call at 100 accounts and 2,000 queued,
// growing with their product.) The recent sends are read with one index
// probe per account and action (the longest window's, which holds the
// shorter ones' rows).
func (s *Store) AccountsWithWork(ctx context.Context, now, dueBy time.Time, rules *RulesCache) ([]*AccountWork, error) {
	const op = "accounts with work"
	rows, err := s.pool.Query(ctx, `WITH c AS (
			SELECT c.id, pi.x IS NOT NULL AS inv, pl.x IS NOT NULL AS look FROM campaigns c
			LEFT JOIN LATERAL (SELECT true AS x FROM targets t WHERE t.campaign_id = c.id AND t.account_id IS NULL
				AND t.status = 'pending' AND t.normalized_identifier IS NOT NULL AND (t.provider_id IS NULL) IS FALSE
				AND t.next_attempt_at <= $1 ORDER BY t.next_attempt_at LIMIT 1) pi ON true
			LEFT JOIN LATERAL (SELECT true AS x FROM targets t WHERE t.campaign_id = c.id AND t.account_id IS NULL
				AND t.status = 'pending' AND t.normalized_identifier IS NOT NULL AND (t.provider_id IS NULL) IS TRUE
				AND t.next_attempt_at <= $1 ORDER BY t.next_attempt_at LIMIT 1) pl ON true
			WHERE c.status = 'active'
		), d AS (
			SELECT cs.account_id, bool_or(c.inv OR oi.x IS NOT NULL OR ni.x IS NOT NULL) AS inv,
				bool_or(c.look OR ol.x IS NOT NULL) AS look
			FROM campaign_senders cs JOIN c ON c.id = cs.campaign_id
			LEFT JOIN LATERAL (SELECT true AS x FROM targets t WHERE t.campaign_id = cs.campaign_id AND t.account_id = cs.account_id
				AND t.status = 'pending' AND t.normalized_identifier IS NOT NULL AND (t.provider_id IS NULL) IS FALSE
				AND t.next_attempt_at <= $1 ORDER BY t.next_attempt_at LIMIT 1) oi ON true
			LEFT JOIN LATERAL (SELECT true AS x FROM targets t WHERE t.campaign_id = cs.campaign_id AND t.account_id = cs.account_id
				AND t.status = 'pending' AND t.normalized_identifier IS NULL AND t.next_attempt_at <= $1 ORDER BY t.next_attempt_at LIMIT 1) ni ON true
			LEFT JOIN LATERAL (SELECT true AS x FROM targets t WHERE t.campaign_id = cs.campaign_id AND t.account_id = cs.account_id
				AND t.status = 'pending' AND t.normalized_identifier IS NOT NULL AND (t.provider_id IS NULL) IS TRUE
				AND t.next_attempt_at <= $1 ORDER BY t.next_attempt_at LIMIT 1) ol ON true
			GROUP BY cs.account_id
		)
		SELECT `+accountRowColumns+`, d.inv, d.look, q.invites, q.lookups, q.sending_invites, q.sending_lookups
		FROM d JOIN accounts a ON a.id = d.account_id
		CROSS JOIN LATERAL (
			SELECT count(*) FILTER (WHERE t.provider_id IS NOT NULL) AS invites,
				count(*) FILTER (WHERE t.provider_id IS NULL) AS lookups,
				count(*) FILTER (WHERE t.provider_id IS NOT NULL AND t.status = 'sending') AS sending_invites,
				count(*) FILTER (WHERE t.provider_id IS NULL AND t.status = 'sending') AS sending_lookups
			FROM targets t WHERE t.account_id = a.id AND t.status IN ('queued', 'sending')) q
		WHERE (d.inv OR d.look) AND (a.status = 'active' OR (a.status = 'paused' AND a.paused_until <= $2))
		ORDER BY a.id`, dueBy, now)
	if err != nil {
		return nil, translate(op, err)
	}
	var out []*AccountWork
	var accounts []*Account
	for rows.Next() {
		var w AccountWork
		var r accountRow
		if err := rows.Scan(append(r.rowDest(), &w.DueInvites, &w.DueLookups, &w.QueuedInvites, &w.QueuedLookups,
			&w.SendingInvites, &w.SendingLookups)...); err != nil {
			rows.Close()
			return nil, translate(op, err)
		}
		if !w.DueInvites && !w.DueLookups {
			continue
		}
		w.Account = r.account()
		w.Recent = map[Limit][]time.Time{}
		w.NextCall = map[Action]time.Time{}
		out = append(out, &w)
		accounts = append(accounts, w.Account)
	}
	if err := rows.Err(); err != nil {
		return nil, translate(op, err)
	}
	if err := s.rulesOf(ctx, accounts, rules, now); err != nil {
		return nil, translate(op, err)
	}
	byID := make(map[int64]*AccountWork, len(out))
	var gapAccounts []int64
	var gapActions []Action
	var gapMins []float64
	// The recent sends are read per account and action: as many of the
	// latest as the action's largest Max, inside its longest window.
	var recentAccounts []int64
	var recentActions []Action
	var recentPers []float64
	var recentNs []int32
	for _, w := range out {
		a := w.Account
		byID[a.ID] = w
		for _, action := range []Action{ActionInvite, ActionLookup} {
			if g := a.Pace(action).Gap; !g.IsZero() {
				gapAccounts, gapActions, gapMins = append(gapAccounts, a.ID), append(gapActions, action), append(gapMins, g.Min.Seconds())
			}
		}
		widest := map[Action]Limit{}
		for _, l := range a.Limits {
			m := widest[l.Action]
			widest[l.Action] = Limit{Action: l.Action, Max: max(m.Max, l.Max), Per: max(m.Per, l.Per)}
		}
		for _, l := range widest {
			recentAccounts, recentActions = append(recentAccounts, a.ID), append(recentActions, l.Action)
			recentPers, recentNs = append(recentPers, l.Per.Seconds()), append(recentNs, int32(l.Max))
		}
	}
	if err := s.nextCalls(ctx, byID, gapAccounts, gapActions, gapMins, now); err != nil {
		return nil, translate(op, err)
	}
	if len(recentAccounts) == 0 {
		return out, nil
	}
	rows, err = s.pool.Query(ctx, `SELECT x.account_id, x.action, w.at
		FROM unnest($1::bigint[], $2::text[], $3::float8[], $4::int[]) AS x(account_id, action, per, n)
		CROSS JOIN LATERAL (
			SELECT CASE WHEN s.window_at = 'infinity' THEN NULL ELSE s.window_at END AS at FROM sends s
			WHERE s.account_id = x.account_id AND s.action = x.action
				AND s.window_at > $5::timestamptz - make_interval(secs => x.per)
			ORDER BY s.window_at DESC LIMIT x.n) w`, recentAccounts, recentActions, recentPers, recentNs, now)
	if err != nil {
		return nil, translate(op, err)
	}
	defer rows.Close()
	type key struct {
		id     int64
		action Action
	}
	recent := map[key][]time.Time{}
	for rows.Next() {
		var k key
		var at *time.Time
		if err := rows.Scan(&k.id, &k.action, &at); err != nil {
			return nil, translate(op, err)
		}
		recent[k] = append(recent[k], finite(at))
	}
	if err := rows.Err(); err != nil {
		return nil, translate(op, err)
	}
	for _, w := range out {
		for _, l := range w.Account.Limits {
			times := recent[key{w.Account.ID, l.Action}]
			sortRecent(times)
			var in []time.Time
			for _, t := range times {
				if len(in) == l.Max {
					break
				}
				if t.IsZero() || t.After(now.Add(-l.Per)) {
					in = append(in, t)
				}
			}
			w.Recent[l] = in
		}
	}
	return out, nil
}

// sortRecent orders ledger times newest first, requests still out (zero)
// before all.
func sortRecent(times []time.Time) {
	sort.SliceStable(times, func(i, j int) bool {
		a, b := times[i], times[j]
		if a.IsZero() || b.IsZero() {
			return a.IsZero() && !b.IsZero()
		}
		return a.After(b)
	})
}

// nextCalls fills the NextCall of each (account, action) pair from the
// ledger's latest call of the action, in one query.
func (s *Store) nextCalls(ctx context.Context, byID map[int64]*AccountWork, accounts []int64, actions []Action, mins []float64,
	now time.Time) error {
	if len(accounts) == 0 {
		return nil
	}
	rows, err := s.pool.Query(ctx, `SELECT x.account_id, x.action, s.window_at = 'infinity',
			CASE WHEN s.window_at = 'infinity' THEN NULL ELSE s.window_at + coalesce(s.gap, make_interval(secs => x.min)) END
		FROM unnest($1::bigint[], $2::text[], $3::float8[]) AS x(account_id, action, min)
		CROSS JOIN LATERAL (SELECT window_at, gap FROM sends
			WHERE account_id = x.account_id AND action = x.action ORDER BY window_at DESC LIMIT 1) s`, accounts, actions, mins)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var action Action
		var inFlight bool
		var next *time.Time
		if err := rows.Scan(&id, &action, &inFlight, &next); err != nil {
			return err
		}
		w := byID[id]
		if inFlight {
			w.NextCall[action] = now.Add(w.Account.Pace(action).Gap.Min)
		} else if next != nil {
			w.NextCall[action] = *next
		}
	}
	return rows.Err()
}

// Claimed is a target claimed for a task.
type Claimed struct {
	Target *Target
	Person *Person // the cached profile, nil if none
}

// Prepared is what the caller decides for a claimed target: queue it with
// its message, or fail it.
type Prepared struct {
	Message string
	// At is the send slot planned for its task, shown while it is queued
	// (target_waits); zero if none.
	At time.Time
	// Err fails the target with its message; ErrType names the reason.
	Err     error
	ErrType string
}

// ClaimTargets takes up to n due targets of the account's active campaigns,
// oldest first: resolved ones waiting for an invite (lookup false), or
// unresolved ones waiting for a lookup (lookup true). prepare decides each
// target's message or failure; the queued ones are returned, marked queued
// at now. Concurrent schedulers take different targets. It is
// ClaimTargetsBatch for one account.
func (s *Store) ClaimTargets(ctx context.Context, accountID int64, lookup bool, n int, dueBy, now time.Time,
	prepare func(Claimed) Prepared) ([]*Target, error) {
	got, err := s.ClaimTargetsBatch(ctx, lookup, []ClaimWant{{AccountID: accountID, N: n}}, dueBy, now, prepare)
	if err != nil {
		return nil, err
	}
	return got[accountID], nil
}

// Lost is a target that should have a task in Redis: queued since before a
// grace period, or held by a worker whose lease expired.
type Lost struct {
	ID          int64
	AccountID   int64
	Lookup      bool
	NextAttempt time.Time
	// TaskGen is the generation of its task (see Target.TaskGen).
	TaskGen int
}

// QueuedTargets returns up to limit targets queued before queuedBefore or
// held past their lease, after id afterID (for paging), by id.
func (s *Store) QueuedTargets(ctx context.Context, queuedBefore, now time.Time, afterID int64, limit int) ([]Lost, error) {
	rows, err := s.pool.Query(ctx, `SELECT t.id, t.account_id, t.provider_id IS NULL, t.next_attempt_at, t.task_gen FROM targets t
		WHERE t.status IN ('queued', 'sending') AND t.id > $3
		AND ((t.status = 'queued' AND t.queued_at < $1) OR (t.status = 'sending' AND t.locked_until < $2))
		ORDER BY t.id LIMIT $4`, queuedBefore, now, afterID, limit)
	if err != nil {
		return nil, translate("queued targets", err)
	}
	defer rows.Close()
	var out []Lost
	for rows.Next() {
		var l Lost
		if err := rows.Scan(&l.ID, &l.AccountID, &l.Lookup, &l.NextAttempt, &l.TaskGen); err != nil {
			return nil, translate("queued targets", err)
		}
		out = append(out, l)
	}
	return out, translate("queued targets", rows.Err())
}

// ExpireOrphanSends closes ledger rows left in flight by workers that died
// more than lease ago: the provider cannot have seen them after their
// reservation plus requestTimeout. It returns how many it closed. Rows of
// workers with a liveness row are left to RecoverDeadWorkers: such a
// worker may be alive and still recording its answer (Postgres was away).
func (s *Store) ExpireOrphanSends(ctx context.Context, now time.Time, lease, requestTimeout time.Duration) (int64, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE sends SET outcome = 'unknown', detail = 'worker stopped before recording the answer',
			window_at = least($1::timestamptz, reserved_at + make_interval(secs => $3))
		WHERE outcome = 'in_flight' AND reserved_at < $1::timestamptz - make_interval(secs => $2) AND worker_id IS NULL`,
		now, lease.Seconds(), requestTimeout.Seconds())
	if err != nil {
		return 0, translate("expire orphan sends", err)
	}
	return tag.RowsAffected(), nil
}

// Requeue marks a queued target's task as re-enqueued now (after a Redis
// loss), so it is not reported lost again before the grace period.
func (s *Store) Requeue(ctx context.Context, ids []int64, now time.Time) error {
	_, err := s.pool.Exec(ctx, `UPDATE targets SET queued_at = $2 WHERE id = ANY($1) AND status = 'queued'`, ids, now)
	return translate("requeue targets", err)
}
