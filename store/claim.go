package store

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"
)

// ClaimWant asks for up to N due targets of an account.
type ClaimWant struct {
	AccountID int64
	N         int
}

// ClaimTargetsBatch is ClaimTargets for many accounts in one transaction
// and one query: for each want, up to N due targets of the account's active
// campaigns, oldest first, resolved ones (lookup false) or unresolved ones
// (lookup true). prepare decides each target's message or failure; the
// queued targets are returned by account, in due order.
func (s *Store) ClaimTargetsBatch(ctx context.Context, lookup bool, wants []ClaimWant, dueBy, now time.Time,
	prepare func(Claimed) Prepared) (map[int64][]*Target, error) {
	out, _, err := s.claim(ctx, lookup, wants, dueBy, now, nil, prepare)
	return out, err
}

// ClaimAndPrepare is ClaimTargetsBatch for invitations that also takes,
// for each want, the account's new targets (identifier not yet normalised)
// of its active campaigns that are due, up to N per campaign, and
// normalises them itself (normalize, the people cache, the duplicate rule,
// as PrepareTargets does): a new target resolved that its slots take goes
// from new to queued in one row update instead of two (issue 15), so that
// an account with room takes up to N new targets in one tick. The new
// targets it fails, skips or leaves waiting for a lookup are written as
// PrepareTargets writes them; those resolved that no slot takes stay new.
// Pool targets without a sender are left to PrepareTargets. The returned
// stats count the new targets it wrote.
func (s *Store) ClaimAndPrepare(ctx context.Context, wants []ClaimWant, dueBy, now time.Time, normalize NormalizeFunc,
	prepare func(Claimed) Prepared) (map[int64][]*Target, PrepareStats, error) {
	return s.claim(ctx, false, wants, dueBy, now, normalize, prepare)
}

func (s *Store) claim(ctx context.Context, lookup bool, wants []ClaimWant, dueBy, now time.Time, normalize NormalizeFunc,
	prepare func(Claimed) Prepared) (map[int64][]*Target, PrepareStats, error) {
	out := map[int64][]*Target{}
	var st PrepareStats
	if len(wants) == 0 {
		return out, st, nil
	}
	accounts := make([]int64, len(wants))
	ns := make([]int64, len(wants))
	for i, w := range wants {
		accounts[i], ns[i] = w.AccountID, int64(w.N)
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		clear(out)
		st = PrepareStats{}
		newByID := map[int64]*preparing{} // the new targets claimNew resolved
		// The literal IS TRUE / IS FALSE (not a parameter) keeps the
		// planner on the targets_due index expression.
		resolved := "IS FALSE"
		if lookup {
			resolved = "IS TRUE"
		}
		rows, err := tx.Query(ctx, `SELECT k.n, `+targetColumns+`, p.provider_id IS NOT NULL, coalesce(p.first_name, ''),
				coalesce(p.last_name, ''), coalesce(p.headline, ''), coalesce(p.provider_id, ''), t.task_gen,
				c.weight, coalesce(c.daily_cap, 0)
			FROM unnest($1::bigint[], $2::bigint[]) AS k(account_id, n)
			JOIN campaign_senders cs ON cs.account_id = k.account_id
			JOIN campaigns c ON c.id = cs.campaign_id AND c.status = 'active'
			CROSS JOIN LATERAL (SELECT * FROM targets t0 WHERE t0.campaign_id = cs.campaign_id AND t0.status = 'pending'
				AND t0.normalized_identifier IS NOT NULL AND (t0.provider_id IS NULL) `+resolved+` AND t0.next_attempt_at <= $3
				AND t0.account_id = k.account_id
				ORDER BY t0.next_attempt_at LIMIT k.n FOR UPDATE SKIP LOCKED) t
			JOIN accounts a ON a.id = k.account_id
			LEFT JOIN people p ON p.provider = a.provider AND p.normalized_identifier = t.normalized_identifier
			ORDER BY t.account_id, t.next_attempt_at, t.id`, accounts, ns, dueBy)
		if err != nil {
			return err
		}
		var cands []shareCandidate
		for rows.Next() {
			var t Target
			var n int64
			var locked *time.Time
			var hasPerson bool
			var p Person
			var weight, dailyCap int
			dest := append([]any{&n}, targetDest(&t, &locked)...)
			dest = append(dest, &hasPerson, &p.FirstName, &p.LastName, &p.Headline, &p.ProviderID, &t.TaskGen, &weight, &dailyCap)
			if err := rows.Scan(dest...); err != nil {
				rows.Close()
				return err
			}
			t.LockedUntil = finite(locked)
			c := Claimed{Target: &t}
			if hasPerson {
				p.NormalizedIdentifier = t.NormalizedIdentifier
				c.Person = &p
			}
			cands = append(cands, shareCandidate{claimed: c, n: int(n), weight: weight, cap: dailyCap})
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if normalize != nil && !lookup {
			fresh, err := claimNew(ctx, tx, accounts, ns, dueBy, now, normalize, &st, newByID)
			if err != nil {
				return err
			}
			if len(fresh) > 0 {
				cands = append(cands, fresh...)
				sort.SliceStable(cands, func(i, j int) bool {
					a, b := cands[i].claimed.Target, cands[j].claimed.Target
					if a.AccountID != b.AccountID {
						return a.AccountID < b.AccountID
					}
					if !a.NextAttemptAt.Equal(b.NextAttemptAt) {
						return a.NextAttemptAt.Before(b.NextAttemptAt)
					}
					return a.ID < b.ID
				})
			}
		}
		// An account with several campaigns gets up to N from each; its
		// campaigns share its N by weight (store/pools.go), the rest are
		// left pending.
		use, err := loadCampaignUse(ctx, tx, lookup, cands, now)
		if err != nil {
			return err
		}
		claimed := shareSlots(cands, use)
		for _, c := range claimed {
			if r, ok := newByID[c.Target.ID]; ok {
				countPrepared([]*preparing{r}, &st)
				st.Seen++
				if r.cacheHit {
					st.CacheHits++
				}
			}
		}
		if claimed, err = dropDoNotContact(ctx, tx, claimed, now); err != nil {
			return err
		}
		queued, err := markClaimed(ctx, tx, claimed, now, prepare)
		for _, t := range queued {
			out[t.AccountID] = append(out[t.AccountID], t)
		}
		return err
	})
	if err != nil {
		return nil, st, translate(fmt.Sprintf("claim targets of %d accounts", len(wants)), err)
	}
	return out, st, nil
}

// claimNew locks, for each account of accounts (with its slots ns), up to
// its slots of due new targets per active campaign it sends for, oldest
// first, and prepares them as PrepareTargets does. It writes those that
// fail, are skipped or wait for a lookup (counted in st), and returns the
// resolved ones as candidates for the account's slots (also in resolved,
// by id), their normalised identifier and provider id set in Go only
// (markClaimed writes them with the queued status).
func claimNew(ctx context.Context, tx pgx.Tx, accounts, ns []int64, dueBy, now time.Time, normalize NormalizeFunc,
	st *PrepareStats, resolved map[int64]*preparing) ([]shareCandidate, error) {
	rows, err := tx.Query(ctx, `SELECT k.n, `+targetColumns+`, t.task_gen, c.weight, coalesce(c.daily_cap, 0), a.provider
		FROM unnest($1::bigint[], $2::bigint[]) AS k(account_id, n)
		JOIN accounts a ON a.id = k.account_id
		JOIN campaign_senders cs ON cs.account_id = k.account_id
		JOIN campaigns c ON c.id = cs.campaign_id AND c.status = 'active'
		CROSS JOIN LATERAL (SELECT * FROM targets t0 WHERE t0.campaign_id = cs.campaign_id AND t0.account_id = k.account_id
			AND t0.status = 'pending' AND t0.normalized_identifier IS NULL AND t0.next_attempt_at <= $3
			ORDER BY t0.next_attempt_at LIMIT k.n FOR UPDATE OF t0 SKIP LOCKED) t
		ORDER BY t.account_id, t.next_attempt_at, t.id`, accounts, ns, dueBy)
	if err != nil {
		return nil, err
	}
	var batch []*preparing
	var cands []shareCandidate
	for rows.Next() {
		var t Target
		var n int64
		var locked *time.Time
		var weight, dailyCap int
		r := &preparing{}
		dest := append([]any{&n}, targetDest(&t, &locked)...)
		dest = append(dest, &t.TaskGen, &weight, &dailyCap, &r.provider)
		if err := rows.Scan(dest...); err != nil {
			rows.Close()
			return nil, err
		}
		t.LockedUntil = finite(locked)
		r.id, r.account, r.identifier = t.ID, t.AccountID, t.Identifier
		batch = append(batch, r)
		cands = append(cands, shareCandidate{claimed: Claimed{Target: &t}, n: int(n), weight: weight, cap: dailyCap})
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(batch) == 0 {
		return nil, nil
	}
	normalizeBatch(batch, normalize)
	// The cache gives a provider id to those that need one, and a
	// resolved target its cached profile (the claim's people join).
	var provs, idents []string
	for _, r := range batch {
		if r.status == TargetPending {
			provs, idents = append(provs, string(r.provider)), append(idents, r.norm.Identifier)
		}
	}
	cache, err := cachedPeople(ctx, tx, provs, idents)
	if err != nil {
		return nil, err
	}
	applyCache(batch, cache)
	if err := skipDuplicates(ctx, tx, batch); err != nil {
		return nil, err
	}
	held, err := withdrawnPeople(ctx, tx, batch, now)
	if err != nil {
		return nil, err
	}
	var write []*preparing
	var out []shareCandidate
	for i, r := range batch {
		if r.status != TargetPending || r.norm.ProviderID == "" || held[personKey(r.account, r.norm.ProviderID)] {
			write = append(write, r)
			continue
		}
		c := cands[i]
		t := c.claimed.Target
		t.NormalizedIdentifier, t.ProviderID = r.norm.Identifier, r.norm.ProviderID
		if p, ok := cache[[2]string{string(r.provider), r.norm.Identifier}]; ok {
			c.claimed.Person = &Person{NormalizedIdentifier: r.norm.Identifier, ProviderID: p.providerID,
				FirstName: p.firstName, LastName: p.lastName, Headline: p.headline}
		}
		out = append(out, c)
		resolved[r.id] = r
	}
	if len(write) > 0 {
		countPrepared(write, st)
		st.Seen += len(write)
		for _, r := range write {
			if r.cacheHit {
				st.CacheHits++
			}
		}
		if err := updatePrepared(ctx, tx, write); err != nil {
			return nil, err
		}
	}
	if len(held) > 0 {
		// As the tick's HoldWithdrawnPeople does before planning.
		if _, err := tx.Exec(ctx, holdWithdrawnSQL, now, int64(0)); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// withdrawnPeople returns the keys (personKey) of the batch's resolved
// targets whose person their account withdrew within its withdraw_block:
// they wait for the block (holdWithdrawnSQL) instead of being claimed.
func withdrawnPeople(ctx context.Context, tx pgx.Tx, batch []*preparing, now time.Time) (map[string]bool, error) {
	var accs []int64
	var pids []string
	for _, r := range batch {
		if r.status == TargetPending && r.norm.ProviderID != "" {
			accs, pids = append(accs, r.account), append(pids, r.norm.ProviderID)
		}
	}
	held := map[string]bool{}
	if len(accs) == 0 {
		return held, nil
	}
	rows, err := tx.Query(ctx, `SELECT k.account_id, k.pid FROM unnest($1::bigint[], $2::text[]) AS k(account_id, pid)
		WHERE EXISTS (SELECT 1 FROM targets x JOIN accounts a ON a.id = x.account_id
			WHERE x.account_id = k.account_id AND x.provider_id = k.pid AND x.withdrawn_at IS NOT NULL
			AND x.withdrawn_at > $3::timestamptz - a.withdraw_block)`, accs, pids, now)
	if err != nil {
		return nil, err
	}
	var acc int64
	var pid string
	_, err = pgx.ForEachRow(rows, []any{&acc, &pid}, func() error {
		held[personKey(acc, pid)] = true
		return nil
	})
	return held, err
}

// markClaimed runs prepare on each claimed target and marks it queued (at
// now, with its message) or failed, in two statements; it returns the
// queued ones in order.
func markClaimed(ctx context.Context, tx pgx.Tx, claimed []Claimed, now time.Time, prepare func(Claimed) Prepared) ([]*Target, error) {
	var out []*Target
	var qIDs, fIDs []int64
	var qMsgs, fReasons, fTypes, qNorms, qPids, fNorms, fPids []string
	var qAts []*time.Time
	for _, c := range claimed {
		p := prepare(c)
		if p.Err != nil {
			fIDs = append(fIDs, c.Target.ID)
			fReasons = append(fReasons, p.Err.Error())
			fTypes = append(fTypes, p.ErrType)
			fNorms, fPids = append(fNorms, c.Target.NormalizedIdentifier), append(fPids, c.Target.ProviderID)
			continue
		}
		qIDs = append(qIDs, c.Target.ID)
		qMsgs = append(qMsgs, p.Message)
		qAts = append(qAts, nullTime(p.At))
		qNorms, qPids = append(qNorms, c.Target.NormalizedIdentifier), append(qPids, c.Target.ProviderID)
		c.Target.Status, c.Target.Message = TargetQueued, p.Message
		out = append(out, c.Target)
	}
	// A new target claimed by ClaimAndPrepare gets its normalised
	// identifier and provider id here, with its status.
	if len(qIDs) > 0 {
		if _, err := tx.Exec(ctx, `UPDATE targets t SET status = 'queued', queued_at = $3, updated_at = $3,
				message = nullif(u.msg, ''), slot_at = u.at, wait_reason = NULL,
				normalized_identifier = coalesce(nullif(u.norm, ''), t.normalized_identifier),
				provider_id = coalesce(nullif(u.pid, ''), t.provider_id)
			FROM unnest($1::bigint[], $2::text[], $4::timestamptz[], $5::text[], $6::text[]) AS u(id, msg, at, norm, pid)
			WHERE t.id = u.id`, qIDs, qMsgs, now, qAts, qNorms, qPids); err != nil {
			return nil, err
		}
	}
	if len(fIDs) > 0 {
		if _, err := tx.Exec(ctx, `UPDATE targets t SET status = 'failed', last_error = u.reason, error_type = u.typ,
				updated_at = $4, finished_at = $4,
				normalized_identifier = coalesce(nullif(u.norm, ''), t.normalized_identifier),
				provider_id = coalesce(nullif(u.pid, ''), t.provider_id)
			FROM unnest($1::bigint[], $2::text[], $3::text[], $5::text[], $6::text[]) AS u(id, reason, typ, norm, pid)
			WHERE t.id = u.id`, fIDs, fReasons, fTypes, now, fNorms, fPids); err != nil {
			return nil, err
		}
	}
	return out, nil
}
