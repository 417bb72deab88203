package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrSingle says a target of a batch must take the single-target
// reservation (Begin) instead: it has an earlier attempt to close or
// settle, it is held under a lease, or its account needs what only Begin
// does for it (a gap between calls, a window with less room than the
// batch). Nothing was written for it.
var ErrSingle = errors.New("needs the single-target reservation")

// NoRoomError is why a target left a batch whose account's windows had no
// room left for it: Until is when one of them frees a place (an estimate,
// which the next reservation checks again), Reason the limit. It is
// ErrSingle to whoever does not wait for the room.
type NoRoomError struct {
	Until  time.Time
	Reason string
}

func (e *NoRoomError) Error() string {
	return fmt.Sprintf("no room until %s: %s", e.Until.Format(time.RFC3339Nano), e.Reason)
}

func (e *NoRoomError) Unwrap() error { return ErrSingle }

// BatchTarget is one target of a batch task: its id, task generation and
// the account it was planned for (0: the request's AccountID).
type BatchTarget struct {
	TargetID  int64
	TaskGen   int
	AccountID int64
}

// BatchRequest asks to reserve send slots for several queued targets at
// once, of one account or of several (docs/throughput.md). The fields are
// BeginRequest's; Settle is not asked: a target with anything to settle
// leaves the batch (ErrSingle). AccountID is the account of the targets
// that name none.
type BatchRequest struct {
	AccountID      int64
	Targets        []BatchTarget
	Action         Action
	Now            time.Time
	Lease          time.Duration
	RequestTimeout time.Duration
	HoldFor        time.Duration
	Serves         func(a *Account) error
	WorkerID       int64
}

// BatchLeft is a target the batch did not reserve, and why: ErrStale (its
// task is obsolete), a *NotNowError (handed back already when Released),
// a *NotServedError, or ErrSingle.
type BatchLeft struct {
	BatchTarget
	Err error
}

// BatchResult is what BeginBatch reserved (in target id order) and what
// it left.
type BatchResult struct {
	Attempts []*Attempt
	Left     []BatchLeft
}

// batchLocked is one target as the batch's lock read it.
type batchLocked struct {
	t      *Target
	person *Person
	// earlier: the target has a ledger row in flight or an invitation
	// not answered clearly and not settled (closeOrphans and the
	// settling lookup are Begin's).
	earlier bool
}

// BeginBatch reserves what it can of a batch in one transaction: the
// targets locked FOR UPDATE in id order and read in one query with
// whether each has an earlier attempt to close or settle, each checked by
// checkBatchTarget, the batch's accounts locked and read in one query (in
// id order) and each checked once, every window of every account counted
// once in one query, and the ledger rows inserted with the targets'
// updates in one statement. Each ledger row is written before its call,
// as with Begin.
func (s *Store) BeginBatch(ctx context.Context, req BatchRequest) (*BatchResult, error) {
	op := fmt.Sprintf("begin batch of %d targets", len(req.Targets))
	if req.AccountID != 0 {
		op += fmt.Sprintf(" of account %d", req.AccountID)
	}
	if req.Action == "" {
		req.Action = ActionInvite
	}
	var res *BatchResult
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		res, err = reserveBatch(ctx, tx, req)
		return err
	})
	if err != nil {
		return nil, translate(op, err)
	}
	var ids []int64
	var untils []time.Time
	var reasons []string
	for _, l := range res.Left {
		var nn *NotNowError
		if errors.As(l.Err, &nn) && nn.Released {
			ids, untils, reasons = append(ids, l.TargetID), append(untils, nn.Until), append(reasons, nn.Reason)
		}
	}
	if len(ids) > 0 {
		if err := s.releaseMany(ctx, ids, untils, reasons); err != nil {
			return nil, translate(op, err)
		}
	}
	return res, nil
}

// reserveBatch is BeginBatch's transaction.
func reserveBatch(ctx context.Context, tx pgx.Tx, req BatchRequest) (*BatchResult, error) {
	res := &BatchResult{}
	want := map[int64]BatchTarget{}
	ids := make([]int64, 0, len(req.Targets))
	for _, bt := range req.Targets {
		if bt.AccountID == 0 {
			bt.AccountID = req.AccountID
		}
		if _, dup := want[bt.TargetID]; !dup {
			ids = append(ids, bt.TargetID)
		}
		want[bt.TargetID] = bt
	}
	slices.Sort(ids)
	locked, err := lockTargets(ctx, tx, ids)
	if err != nil {
		return nil, err
	}
	leave := func(id int64, err error) {
		res.Left = append(res.Left, BatchLeft{want[id], err})
	}
	leaveAll := func(ls []batchLocked, err error) {
		for _, l := range ls {
			leave(l.t.ID, err)
		}
	}
	var ok []batchLocked
	for _, id := range ids {
		l, found := locked[id]
		if !found {
			leave(id, ErrStale)
			continue
		}
		if err := checkBatchTarget(l.t, req, want[id]); err != nil {
			leave(id, err)
			continue
		}
		ok = append(ok, l)
	}
	ok = withoutEarlierAttempts(ok, func(id int64) { leave(id, ErrSingle) })
	if len(ok) == 0 {
		return res, nil
	}
	if ok, err = batchPersonChecks(ctx, tx, ok, req.Now, leave); err != nil {
		return nil, err
	}
	if len(ok) == 0 {
		return res, nil
	}
	// The accounts, locked and read once for the batch (their limits and
	// pacing are views), in id order so that two batches never wait on
	// each other in a cycle. A batch locks each of its accounts FOR
	// UPDATE, counted or not: Begin's FOR SHARE for an account that counts
	// nothing would need a second read to choose, and a batch's hold is
	// one short transaction.
	accounts, err := lockAccounts(ctx, tx, batchAccounts(ok))
	if err != nil {
		return nil, err
	}
	breq := BeginRequest{Action: req.Action, Now: req.Now, Lease: req.Lease, RequestTimeout: req.RequestTimeout, HoldFor: req.HoldFor,
		WorkerID: req.WorkerID}
	var counted []*Account
	byAccount := map[int64][]batchLocked{}
	for _, g := range groupByAccount(ok) {
		a := accounts[g[0].t.AccountID]
		if a == nil {
			leaveAll(g, ErrStale) // the account is gone
			continue
		}
		if req.Serves != nil {
			if err := req.Serves(a); err != nil {
				leaveAll(g, &NotServedError{Account: a, Err: err})
				continue
			}
		}
		if !a.Pace(req.Action).Gap.IsZero() {
			// One call at a time, each after the gap drawn for the one
			// before: Begin's business.
			leaveAll(g, ErrSingle)
			continue
		}
		// The account as a whole (status, working hours, its gap after
		// an invitation), checked once: the targets are due already.
		first := *g[0].t
		first.NextAttemptAt = time.Time{}
		if err := accountNow(&first, a, breq); err != nil {
			var nn *NotNowError
			if !errors.As(err, &nn) {
				return nil, err
			}
			leaveAll(g, &NotNowError{Until: nn.Until, Reason: nn.Reason, Released: nn.Released})
			continue
		}
		byAccount[a.ID] = g
		if len(a.LimitsFor(req.Action)) > 0 {
			counted = append(counted, a)
		}
	}
	// Every window of every account with limits, counted once from the
	// ledger under the accounts' locks: an account with room for k keeps
	// its first k targets, the others leave with when the room frees
	// (NoRoomError: the batch's handler waits for it, or Begin does).
	rooms, err := windowsRooms(ctx, tx, counted, req.Action, req.Now)
	if err != nil {
		return nil, err
	}
	ok = ok[:0]
	for _, g := range groupByAccount(flatten(byAccount)) {
		if r, limited := rooms[g[0].t.AccountID]; limited && r.room < len(g) {
			leaveAll(g[r.room:], &NoRoomError{Until: r.frees, Reason: r.reason})
			g = g[:r.room]
		}
		ok = append(ok, g...)
	}
	if req.Action == ActionInvite {
		if ok, err = batchClaimOwners(ctx, tx, ok, accounts, req.Now, leave); err != nil {
			return nil, err
		}
	}
	if len(ok) == 0 {
		return res, nil
	}
	sendIDs, err := insertReservations(ctx, tx, ok, breq, len(ok))
	if err != nil {
		return nil, err
	}
	for _, l := range ok {
		t := l.t
		a := accounts[t.AccountID]
		at := &Attempt{SendID: sendIDs[t.ID], Target: t, Account: a}
		if l.person != nil {
			l.person.Provider, l.person.NormalizedIdentifier = a.Provider, t.NormalizedIdentifier
			at.Person = l.person
		}
		t.Status = TargetSending
		t.Attempts++
		res.Attempts = append(res.Attempts, at)
	}
	slices.SortFunc(res.Attempts, func(x, y *Attempt) int { return cmp.Compare(x.Target.ID, y.Target.ID) })
	return res, nil
}

// batchAccounts returns the accounts of the batch's targets, sorted.
func batchAccounts(ok []batchLocked) []int64 {
	var ids []int64
	for _, l := range ok {
		ids = append(ids, l.t.AccountID)
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

// groupByAccount splits the batch's targets by account, in account order,
// each group in target id order.
func groupByAccount(ok []batchLocked) [][]batchLocked {
	sorted := slices.Clone(ok)
	slices.SortStableFunc(sorted, func(x, y batchLocked) int {
		return cmp.Or(cmp.Compare(x.t.AccountID, y.t.AccountID), cmp.Compare(x.t.ID, y.t.ID))
	})
	var out [][]batchLocked
	for i := 0; i < len(sorted); {
		j := i + 1
		for j < len(sorted) && sorted[j].t.AccountID == sorted[i].t.AccountID {
			j++
		}
		out = append(out, sorted[i:j])
		i = j
	}
	return out
}

// flatten is the targets of every group.
func flatten(groups map[int64][]batchLocked) []batchLocked {
	var out []batchLocked
	for _, g := range groups {
		out = append(out, g...)
	}
	return out
}

// lockAccounts locks the accounts ids (sorted) FOR UPDATE, in id order, and
// reads them; an account that no longer exists is missing from the map.
func lockAccounts(ctx context.Context, tx pgx.Tx, ids []int64) (map[int64]*Account, error) {
	rows, err := tx.Query(ctx, `SELECT `+accountColumns+` FROM accounts a WHERE a.id = ANY($1) ORDER BY a.id FOR UPDATE OF a`, ids)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make(map[int64]*Account, len(ids))
	for rows.Next() {
		var r accountRow
		if err := rows.Scan(r.dest()...); err != nil {
			return nil, err
		}
		a := r.account()
		out[a.ID] = a
	}
	return out, rows.Err()
}

// checkBatchTarget is what a target of a batch must pass to stay in it:
// checkTargetState (queued, of the task's generation, needing the action,
// its campaign active), not held under an expired lease (taking over a
// dead worker's target is Begin's: it closes and settles the attempt),
// and due. Checks that concern one target at a time go here, so that
// the batch and Begin refuse the same targets.
func checkBatchTarget(t *Target, req BatchRequest, bt BatchTarget) error {
	if t.AccountID != bt.AccountID {
		return ErrSingle // moved to another account since it was planned
	}
	if t.Status == TargetSending {
		if !t.LockedUntil.After(req.Now) {
			return ErrSingle
		}
	}
	if err := checkTargetState(t, BeginRequest{Action: req.Action, Now: req.Now, TaskGen: bt.TaskGen}); err != nil {
		return err
	}
	if t.NextAttemptAt.After(req.Now) {
		return ErrSingle // not due yet: Begin waits for it or hands it back
	}
	if t.DailyCap != 0 {
		return ErrSingle // its campaign's daily cap is Begin's (checkDailyCap)
	}
	return nil
}

// batchPersonChecks applies to the batch's targets what Begin checks of
// the person in the reservation transaction: the do-not-contact list (a
// match is skipped here, in this transaction, and leaves as stale) and the
// block after a withdrawal (the target leaves for Begin, which makes it
// wait). It returns the targets that pass.
func batchPersonChecks(ctx context.Context, tx pgx.Tx, ok []batchLocked, now time.Time, leave func(int64, error)) ([]batchLocked, error) {
	ids := make([]int64, len(ok))
	for i, l := range ok {
		ids[i] = l.t.ID
	}
	stopped, err := skipDoNotContact(ctx, tx, ids, now)
	if err != nil {
		return nil, err
	}
	blocked, err := withdrawBlocked(ctx, tx, ok, now)
	if err != nil {
		return nil, err
	}
	kept := ok[:0]
	for _, l := range ok {
		if _, stop := stopped[l.t.ID]; stop {
			leave(l.t.ID, ErrStale)
			continue
		}
		if blocked[l.t.ID] {
			leave(l.t.ID, ErrSingle)
			continue
		}
		kept = append(kept, l)
	}
	return kept, nil
}

// withdrawBlocked is checkWithdrawBlock for the targets of a batch, in one
// query: the targets whose person the account withdrew an invitation from
// less than its withdraw_block ago. They leave for Begin, which makes
// them wait with the reason.
func withdrawBlocked(ctx context.Context, tx pgx.Tx, ok []batchLocked, now time.Time) (map[int64]bool, error) {
	var ids, accounts []int64
	var pids []string
	for _, l := range ok {
		if l.t.ProviderID != "" {
			ids, accounts, pids = append(ids, l.t.ID), append(accounts, l.t.AccountID), append(pids, l.t.ProviderID)
		}
	}
	if len(ids) == 0 {
		return nil, nil
	}
	rows, err := tx.Query(ctx, `SELECT x.id FROM unnest($1::bigint[], $2::bigint[], $3::text[]) AS x(id, account_id, provider_id)
		WHERE EXISTS (SELECT 1 FROM targets w JOIN accounts a ON a.id = w.account_id
			WHERE w.account_id = x.account_id AND w.provider_id = x.provider_id AND w.withdrawn_at IS NOT NULL
			AND w.id <> x.id AND w.withdrawn_at + a.withdraw_block > $4)`, ids, accounts, pids, now)
	if err != nil {
		return nil, err
	}
	got, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, err
	}
	blocked := make(map[int64]bool, len(got))
	for _, id := range got {
		blocked[id] = true
	}
	return blocked, nil
}

// batchClaimOwners claims the batch's invited people for their accounts
// in one statement, as claimOwner does for one (docs/owners.md): a person
// the target's account may claim (unclaimed, its own, or another account's
// invitation older than the target's campaign's owner_days, or ended) is
// claimed; any other (connected to or invited by another account) leaves
// for Begin, whose claimOwner skips the target with the owner's name and
// date, or lets it through when its campaign has no owner rule.
func batchClaimOwners(ctx context.Context, tx pgx.Tx, ok []batchLocked, accounts map[int64]*Account, now time.Time, leave func(int64, error)) ([]batchLocked, error) {
	var providers, pids []string
	var ids, owners []int64
	people := map[[2]string]bool{}
	twice := map[int64]bool{} // a person's second target in the batch: Begin's
	for _, l := range ok {
		if l.t.ProviderID == "" {
			continue
		}
		a := accounts[l.t.AccountID]
		person := [2]string{string(a.Provider), l.t.ProviderID}
		if people[person] {
			twice[l.t.ID] = true
			continue
		}
		people[person] = true
		providers, pids, ids, owners = append(providers, string(a.Provider)), append(pids, l.t.ProviderID), append(ids, l.t.ID), append(owners, a.ID)
	}
	if len(ids) == 0 {
		return ok, nil
	}
	rows, err := tx.Query(ctx, `INSERT INTO person_owners AS o (provider, provider_id, account_id, target_id, kind, since)
		SELECT x.provider, x.provider_id, x.account_id, x.target_id, 'invited', $5
		FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[]) AS x(provider, provider_id, account_id, target_id)
		ON CONFLICT (provider, provider_id) DO UPDATE SET account_id = EXCLUDED.account_id, target_id = EXCLUDED.target_id,
			kind = 'invited', since = EXCLUDED.since
		WHERE o.account_id = EXCLUDED.account_id
			OR o.kind = 'invited' AND (o.since <= EXCLUDED.since - make_interval(days => (SELECT c.owner_days FROM targets nt
					JOIN campaigns c ON c.id = nt.campaign_id WHERE nt.id = EXCLUDED.target_id))
				OR NOT EXISTS (SELECT 1 FROM targets x WHERE x.id = o.target_id AND x.status NOT IN ('skipped', 'failed')))
		RETURNING o.target_id`, providers, pids, owners, ids, now)
	if err != nil {
		return nil, err
	}
	claimed, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, err
	}
	got := make(map[int64]bool, len(claimed))
	for _, id := range claimed {
		got[id] = true
	}
	kept := ok[:0]
	for _, l := range ok {
		if l.t.ProviderID != "" && (twice[l.t.ID] || !got[l.t.ID]) {
			leave(l.t.ID, ErrSingle)
			continue
		}
		kept = append(kept, l)
	}
	return kept, nil
}

// lockTargets is lockTarget for many targets in one query, locked in id
// order (ids sorted) so that two batches never wait on each other in a
// cycle.
func lockTargets(ctx context.Context, tx pgx.Tx, ids []int64) (map[int64]batchLocked, error) {
	rows, err := tx.Query(ctx, `SELECT `+targetColumns+`, p.provider IS NOT NULL,
			coalesce(p.provider_id, ''), coalesce(p.first_name, ''), coalesce(p.last_name, ''), coalesce(p.headline, ''),
			coalesce(p.looked_up_by, 0), coalesce(p.network_distance, ''), coalesce(p.is_relationship, false),
			coalesce(p.invitation_status, ''), t.task_gen, e.x IS NOT NULL
		FROM targets t JOIN campaigns c ON c.id = t.campaign_id JOIN accounts a ON a.id = t.account_id
		LEFT JOIN people p ON p.provider = a.provider AND p.normalized_identifier = t.normalized_identifier
		-- One index probe of the target's ledger rows each (an EXISTS was
		-- planned as one hashed scan of the whole ledger per batch while
		-- the ledger grew faster than its statistics).
		LEFT JOIN LATERAL (SELECT true AS x FROM sends s WHERE s.target_id = t.id
			AND (s.outcome = 'in_flight' OR (s.action = 'invite' AND s.outcome IN ('unknown', 'error') AND s.settled_at IS NULL))
			LIMIT 1) e ON true
		WHERE t.id = ANY($1) ORDER BY t.id FOR UPDATE OF t`, ids)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make(map[int64]batchLocked, len(ids))
	for rows.Next() {
		var t Target
		var locked *time.Time
		var hasPerson bool
		var p Person
		dest := targetDest(&t, &locked)
		dest = append(dest, &hasPerson, &p.ProviderID, &p.FirstName, &p.LastName, &p.Headline,
			&p.LookedUpBy, &p.NetworkDistance, &p.IsRelationship, &p.InvitationStatus, &t.TaskGen)
		var earlier bool
		if err := rows.Scan(append(dest, &earlier)...); err != nil {
			return nil, err
		}
		t.LockedUntil = finite(locked)
		l := batchLocked{t: &t, earlier: earlier}
		if hasPerson {
			l.person = &p
		}
		out[t.ID] = l
	}
	return out, rows.Err()
}

// withoutEarlierAttempts drops (through leave) the targets with an
// earlier attempt to close or settle, as lockTargets found them (one
// EXISTS per target on sends_target, in the same query).
func withoutEarlierAttempts(ok []batchLocked, leave func(int64)) []batchLocked {
	kept := ok[:0]
	for _, l := range ok {
		if l.earlier {
			leave(l.t.ID)
			continue
		}
		kept = append(kept, l)
	}
	return kept
}

// accountRoom is an account's room in its windows: how many reservations
// fit now, and, for one more beyond those, when the fullest window frees
// a place and which limit that is.
type accountRoom struct {
	room   int
	frees  time.Time
	reason string
}

// windowsRooms returns the room of each of accounts (those with limits for
// action) in every rolling window, counted from the ledger in one query:
// for each window, the rows inside it, the oldest of them and the
// Max-th latest (windowsFree's), which say when it frees a place once the
// room is used.
func windowsRooms(ctx context.Context, tx pgx.Tx, accounts []*Account, action Action, now time.Time) (map[int64]accountRoom, error) {
	type window struct {
		a     *Account
		l     Limit
		count int
		// oldest and maxth: the window's oldest row and its Max-th
		// latest; nil when there is none, or it is still in flight.
		oldest, maxth *time.Time
	}
	var ws []*window
	var ids, offs []int64
	var since []time.Time
	for _, a := range accounts {
		for _, l := range a.LimitsFor(action) {
			ws = append(ws, &window{a: a, l: l})
			ids, since, offs = append(ids, a.ID), append(since, now.Add(-l.Per)), append(offs, int64(l.Max-1))
		}
	}
	out := make(map[int64]accountRoom, len(accounts))
	if len(ws) == 0 {
		return out, nil
	}
	rows, err := tx.Query(ctx, `SELECT l.i, (SELECT count(*) FROM sends
			WHERE account_id = l.account_id AND action = $1 AND window_at > l.since),
		(SELECT nullif(min(window_at), 'infinity') FROM sends WHERE account_id = l.account_id AND action = $1 AND window_at > l.since),
		(SELECT nullif(window_at, 'infinity') FROM sends WHERE account_id = l.account_id AND action = $1 AND window_at > l.since
			ORDER BY window_at DESC OFFSET l.off LIMIT 1)
		FROM unnest($2::bigint[], $3::timestamptz[], $4::bigint[]) WITH ORDINALITY AS l(account_id, since, off, i)`,
		action, ids, since, offs)
	if err != nil {
		return nil, err
	}
	var i int
	var count int
	var oldest, maxth *time.Time
	if _, err := pgx.ForEachRow(rows, []any{&i, &count, &oldest, &maxth}, func() error {
		w := ws[i-1]
		w.count, w.oldest, w.maxth = count, oldest, maxth
		return nil
	}); err != nil {
		return nil, err
	}
	for _, w := range ws {
		r, seen := out[w.a.ID]
		if room := max(w.l.Max-w.count, 0); !seen || room < r.room {
			r.room = room
		}
		out[w.a.ID] = r
	}
	// Once an account's room is used, its binding windows (those with no
	// more room than the account) are full: each frees a place when its
	// Max-th latest row leaves it, which is its oldest when it had room.
	for _, w := range ws {
		r := out[w.a.ID]
		if max(w.l.Max-w.count, 0) != r.room {
			continue
		}
		row := w.maxth
		if r.room > 0 {
			row = w.oldest
		}
		free := now.Add(time.Second) // the window is full of requests still out
		if row != nil {
			free = row.Add(w.l.Per)
		}
		if free.After(r.frees) {
			r.frees, r.reason = free, "limit "+w.l.String()+" reached"
			if w.a.LimitSources[action] == SourceDefault {
				r.reason += " (provider default pacing)"
			}
		}
		out[w.a.ID] = r
	}
	return out, nil
}

// insertReservations is insertReservation for the batch: every ledger row
// (in flight) inserted and every target marked sending under a lease, in
// one statement. The lease covers the batch's calls, made a few at a
// time: n request timeouts beyond the single lease at most.
func insertReservations(ctx context.Context, tx pgx.Tx, ok []batchLocked, req BeginRequest, n int) (map[int64]int64, error) {
	ids, accounts := make([]int64, len(ok)), make([]int64, len(ok))
	for i, l := range ok {
		ids[i], accounts[i] = l.t.ID, l.t.AccountID
	}
	lease := req.Lease + time.Duration((n+BatchCallsAtOnce-1)/BatchCallsAtOnce)*req.RequestTimeout
	rows, err := tx.Query(ctx, `WITH s AS (
			INSERT INTO sends (account_id, target_id, action, reserved_at, worker_id)
			SELECT u.account_id, u.id, $3, $4, nullif($6, 0) FROM unnest($1::bigint[], $2::bigint[]) AS u(account_id, id) ORDER BY u.id
			RETURNING id, target_id)
		UPDATE targets t SET status = 'sending', locked_until = $5, attempts = attempts + 1, updated_at = $4,
			current_send_id = s.id FROM s WHERE t.id = s.target_id RETURNING t.id, s.id`,
		accounts, ids, req.Action, req.Now, req.Now.Add(lease), req.WorkerID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make(map[int64]int64, len(ids))
	for rows.Next() {
		var tid, sid int64
		if err := rows.Scan(&tid, &sid); err != nil {
			return nil, err
		}
		out[tid] = sid
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(out) != len(ids) {
		return nil, fmt.Errorf("batch reservation: %d of %d targets updated", len(out), len(ids))
	}
	return out, nil
}

// BatchCallsAtOnce is how many provider calls of a batch a worker makes at
// the same time; the batch's lease is sized by it.
const BatchCallsAtOnce = 8

// releaseMany hands queued (or held) targets back to the scheduler, each
// due at its until, in one statement.
func (s *Store) releaseMany(ctx context.Context, ids []int64, untils []time.Time, reasons []string) error {
	_, err := s.pool.Exec(ctx, `UPDATE targets t SET status = 'pending', next_attempt_at = u.until, queued_at = NULL,
			last_error = 'waiting: ' || u.reason, wait_reason = u.reason, updated_at = now()
		FROM unnest($1::bigint[], $2::timestamptz[], $3::text[]) AS u(id, until, reason)
		WHERE t.id = u.id AND t.status IN ('queued', 'sending')`, ids, untils, reasons)
	return err
}

// HandBackQueued hands a queued target back to the scheduler, due at
// until: a target of a batch that must wait longer than its handler
// should, and whose task is the batch's (acknowledged), not its own.
func (s *Store) HandBackQueued(ctx context.Context, targetID int64, until time.Time, reason string) error {
	_, err := s.pool.Exec(ctx, handBackSQL, targetID, until, "waiting: "+reason, reason, []string{string(TargetQueued)})
	return translate(fmt.Sprintf("hand back target %d", targetID), err)
}

// simpleFinish reports whether Finish records f in one statement (only the
// ledger row and the target change); such answers can be recorded together.
func simpleFinish(f Finish) bool {
	return f.Person == nil && f.Outcome != OutcomeCached && !f.Disable && !f.PauseUntil.After(f.Now) &&
		f.NextSendAt.IsZero() && f.SlowUntil.IsZero() && !f.Settled
}

// FinishBatch records many answers, as Finish does each: the answers that
// change only their ledger row and target in one statement (its own
// transaction; the ledger rows locked in id order), the others one by one
// through Finish. It returns one error per answer (nil, ErrStale, or what
// Finish returns), or a single error when the statement failed as a whole
// (nothing of it was recorded; retry). It is idempotent like Finish.
func (s *Store) FinishBatch(ctx context.Context, fs []Finish) ([]error, error) {
	errs := make([]error, len(fs))
	var simple []int
	for i, f := range fs {
		if simpleFinish(f) {
			simple = append(simple, i)
		}
	}
	if len(simple) > 0 {
		if err := s.finishTargets(ctx, fs, simple, errs); err != nil {
			return nil, err
		}
	}
	for i, f := range fs {
		if !simpleFinish(f) {
			errs[i] = s.Finish(ctx, f)
		}
	}
	return errs, nil
}

// finishTargets is finishTarget for the answers fs[idx] in one statement.
func (s *Store) finishTargets(ctx context.Context, fs []Finish, idx []int, errs []error) error {
	n := len(idx)
	sendIDs, targetIDs := make([]int64, n), make([]int64, n)
	outcomes, errTypes, invs, details, statuses, lastErrs, msgs := make([]string, n), make([]string, n), make([]string, n),
		make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	https := make([]int32, n)
	nows, nexts := make([]time.Time, n), make([]*time.Time, n)
	countDef, resetDef := make([]bool, n), make([]bool, n)
	for j, i := range idx {
		f := fs[i]
		sendIDs[j], targetIDs[j] = f.SendID, f.TargetID
		outcomes[j], errTypes[j], invs[j], details[j] = string(f.Outcome), f.ErrorType, f.InvitationID, truncate(f.Detail, 1000)
		statuses[j], lastErrs[j], msgs[j] = string(f.TargetStatus), f.LastError, f.Message
		https[j], nows[j], nexts[j] = int32(f.HTTPStatus), f.Now, nullTime(f.NextAttemptAt)
		countDef[j], resetDef[j] = f.CountDeferral, f.ResetDeferrals
	}
	held := strings.ReplaceAll(fmt.Sprintf(targetHeld, "o.prev = 'unknown'"), "$1", "u.b_send")
	rows, err := s.pool.Query(ctx, `WITH u AS (
			SELECT * FROM unnest($1::bigint[], $2::text[], $3::timestamptz[], $4::text[], $5::int[], $6::text[], $7::text[],
				$8::bigint[], $9::text[], $10::timestamptz[], $11::text[], $12::bool[], $13::bool[], $14::text[])
			AS u(b_send, b_outcome, b_now, b_error_type, b_http_status, b_invitation_id, b_detail, b_target, b_status, b_next_at,
				b_last_error, b_count_def, b_reset_def, b_message)),
		o AS (SELECT x.id AS b_id, x.outcome AS prev FROM sends x WHERE x.id = ANY($1) ORDER BY x.id FOR UPDATE),
		s AS (
			UPDATE sends SET outcome = u.b_outcome, window_at = u.b_now, error_type = nullif(u.b_error_type, ''),
				http_status = nullif(u.b_http_status, 0), invitation_id = nullif(u.b_invitation_id, ''), detail = nullif(u.b_detail, '')
			FROM u JOIN o ON o.b_id = u.b_send
			WHERE sends.id = u.b_send AND o.prev IN ('in_flight', 'unknown') RETURNING sends.id AS b_id),
		t AS (
			UPDATE targets SET `+fmt.Sprintf(targetAnswerSet, "u.b_status", "u.b_next_at", "u.b_last_error", "u.b_error_type", "u.b_invitation_id",
		"u.b_count_def", "u.b_reset_def", "u.b_message", "NULL", "u.b_now")+`
			FROM u JOIN o ON o.b_id = u.b_send
			WHERE targets.id = u.b_target AND u.b_send IN (SELECT b_id FROM s) AND `+held+`
			RETURNING u.b_send)
		SELECT u.b_send, o.b_id IS NOT NULL, s.b_id IS NOT NULL, EXISTS (SELECT 1 FROM t WHERE t.b_send = u.b_send)
		FROM u LEFT JOIN o ON o.b_id = u.b_send LEFT JOIN s ON s.b_id = u.b_send`,
		sendIDs, outcomes, nows, errTypes, https, invs, details, targetIDs, statuses, nexts, lastErrs, countDef, resetDef, msgs)
	if err != nil {
		return translate("finish batch", err)
	}
	type state struct{ found, recorded, updated bool }
	got := map[int64]state{}
	for rows.Next() {
		var id int64
		var st state
		if err := rows.Scan(&id, &st.found, &st.recorded, &st.updated); err != nil {
			rows.Close()
			return translate("finish batch", err)
		}
		got[id] = st
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return translate("finish batch", err)
	}
	for _, i := range idx {
		f := fs[i]
		op := fmt.Sprintf("finish send %d of target %d", f.SendID, f.TargetID)
		st := got[f.SendID]
		switch {
		case !st.found:
			errs[i] = s.finishLost(ctx, op, f)
		case st.recorded && !st.updated:
			errs[i] = fmt.Errorf("%s: %w", op, ErrStale)
		}
	}
	return nil
}
