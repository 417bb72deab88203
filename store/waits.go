package store

import (
	"context"
	"fmt"
	"time"
)

// Kinds of account waits: why the planner found no send slot for an
// active account's due targets (account_waits.kind).
const (
	WaitHours  = "hours"  // outside working hours
	WaitWindow = "window" // a rolling limit is full
	WaitGap    = "gap"    // the minimum gap between invitations
	WaitPacing = "pacing" // the next slot is later for another reason
)

// AccountWait is why an account's due targets for one action get no send
// slot now, and when its next slot comes. An empty Kind means none: the
// account has slots.
type AccountWait struct {
	AccountID int64
	Action    Action
	Kind      string
	Reason    string
	// Until is when the next slot comes; zero when never (no working days).
	Until time.Time
}

// SetAccountWaits records the planner's account waits in account_waits:
// rows with a Kind are inserted or updated, rows without one are deleted.
// A row that already holds the same kind, reason and time is not written.
// It returns how many rows changed.
func (s *Store) SetAccountWaits(ctx context.Context, waits []AccountWait) (int64, error) {
	if len(waits) == 0 {
		return 0, nil
	}
	var ids, clearIDs []int64
	var actions, kinds, reasons, clearActions []string
	var untils []*time.Time
	for _, w := range waits {
		if w.Kind == "" {
			clearIDs, clearActions = append(clearIDs, w.AccountID), append(clearActions, string(w.Action))
			continue
		}
		ids, actions, kinds, reasons = append(ids, w.AccountID), append(actions, string(w.Action)), append(kinds, w.Kind), append(reasons, w.Reason)
		untils = append(untils, nullTime(w.Until))
	}
	var n int64
	if len(ids) > 0 {
		tag, err := s.pool.Exec(ctx, `INSERT INTO account_waits AS w (account_id, action, kind, reason, until)
			SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::timestamptz[])
			ON CONFLICT (account_id, action) DO UPDATE SET kind = excluded.kind, reason = excluded.reason,
				until = excluded.until, since = CASE WHEN w.kind = excluded.kind THEN w.since ELSE now() END
			WHERE (w.kind, w.reason, w.until) IS DISTINCT FROM (excluded.kind, excluded.reason, excluded.until)`,
			ids, actions, kinds, reasons, untils)
		if err != nil {
			return 0, translate("set account waits", err)
		}
		n += tag.RowsAffected()
	}
	if len(clearIDs) > 0 {
		tag, err := s.pool.Exec(ctx, `DELETE FROM account_waits w USING unnest($1::bigint[], $2::text[]) AS k(account_id, action)
			WHERE w.account_id = k.account_id AND w.action = k.action`, clearIDs, clearActions)
		if err != nil {
			return 0, translate("clear account waits", err)
		}
		n += tag.RowsAffected()
	}
	return n, nil
}

// TargetWait is a row of the target_waits view: why a target that is not
// terminal waits, and until when.
type TargetWait struct {
	TargetID   int64
	CampaignID int64
	AccountID  int64
	Status     string
	// Wait is a keyword: sending, queued, campaign_paused, new,
	// account_disabled, account_paused, deferred, handed_back, hours,
	// window, gap, pacing or due (docs/waiting.md).
	Wait   string
	Reason string
	// Until is when it can go on; zero when an operator must act or when
	// it is due and waits for its turn.
	Until      time.Time
	UntilLocal string // Until in the account's time zone
}

// TargetWait returns why a target waits; ErrNotFound when it is terminal
// or does not exist.
func (s *Store) TargetWait(ctx context.Context, targetID int64) (*TargetWait, error) {
	var w TargetWait
	var until *time.Time
	err := s.pool.QueryRow(ctx, `SELECT target_id, campaign_id, account_id, status, wait, reason, until, coalesce(until_local, '')
		FROM target_waits WHERE target_id = $1`, targetID).
		Scan(&w.TargetID, &w.CampaignID, &w.AccountID, &w.Status, &w.Wait, &w.Reason, &until, &w.UntilLocal)
	if err != nil {
		return nil, translate(fmt.Sprintf("wait of target %d", targetID), err)
	}
	w.Until = finite(until)
	return &w, nil
}
