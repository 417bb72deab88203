package store

import (
	"context"
	"fmt"
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
	out := map[int64][]*Target{}
	if len(wants) == 0 {
		return out, nil
	}
	accounts := make([]int64, len(wants))
	ns := make([]int64, len(wants))
	for i, w := range wants {
		accounts[i], ns[i] = w.AccountID, int64(w.N)
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		clear(out)
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
			CROSS JOIN LATERAL (SELECT * FROM targets t0 WHERE t0.campaign_id = c.id AND t0.status = 'pending'
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
		// An account with several campaigns gets up to N from each; its
		// campaigns share its N by weight (store/pools.go), the rest are
		// left pending.
		use, err := loadCampaignUse(ctx, tx, lookup, cands, now)
		if err != nil {
			return err
		}
		claimed := shareSlots(cands, use)
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
		return nil, translate(fmt.Sprintf("claim targets of %d accounts", len(wants)), err)
	}
	return out, nil
}

// markClaimed runs prepare on each claimed target and marks it queued (at
// now, with its message) or failed, in two statements; it returns the
// queued ones in order.
func markClaimed(ctx context.Context, tx pgx.Tx, claimed []Claimed, now time.Time, prepare func(Claimed) Prepared) ([]*Target, error) {
	var out []*Target
	var qIDs, fIDs []int64
	var qMsgs, fReasons, fTypes []string
	var qAts []*time.Time
	for _, c := range claimed {
		p := prepare(c)
		if p.Err != nil {
			fIDs = append(fIDs, c.Target.ID)
			fReasons = append(fReasons, p.Err.Error())
			fTypes = append(fTypes, p.ErrType)
			continue
		}
		qIDs = append(qIDs, c.Target.ID)
		qMsgs = append(qMsgs, p.Message)
		qAts = append(qAts, nullTime(p.At))
		c.Target.Status, c.Target.Message = TargetQueued, p.Message
		out = append(out, c.Target)
	}
	if len(qIDs) > 0 {
		if _, err := tx.Exec(ctx, `UPDATE targets t SET status = 'queued', queued_at = $3, updated_at = $3,
				message = nullif(u.msg, ''), slot_at = u.at, wait_reason = NULL
			FROM unnest($1::bigint[], $2::text[], $4::timestamptz[]) AS u(id, msg, at) WHERE t.id = u.id`, qIDs, qMsgs, now, qAts); err != nil {
			return nil, err
		}
	}
	if len(fIDs) > 0 {
		if _, err := tx.Exec(ctx, `UPDATE targets t SET status = 'failed', last_error = u.reason, error_type = u.typ,
				updated_at = $4, finished_at = $4
			FROM unnest($1::bigint[], $2::text[], $3::text[]) AS u(id, reason, typ) WHERE t.id = u.id`,
			fIDs, fReasons, fTypes, now); err != nil {
			return nil, err
		}
	}
	return out, nil
}
