package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// The duplicate rule: an account invites a person once. A target whose
// person (provider id) a live target of the same account (neither skipped
// nor failed) already has is skipped as a duplicate. The schema backs it
// with a unique index on live targets (migrations); PrepareTargets and
// Finish apply it before writing, and Finish again when the index refuses
// a write that raced another.

// errTypeDuplicate is the error type of a target skipped as a duplicate.
const errTypeDuplicate = "duplicate"

// duplicate is the verdict on a duplicate target: its status, error type
// and reason, naming the other target when known (other > 0).
func duplicate(other int64) (status TargetStatus, errType, reason string) {
	reason = "duplicate: this account already invites this person"
	if other > 0 {
		reason += fmt.Sprintf(" in target %d", other)
	}
	return TargetSkipped, errTypeDuplicate, reason
}

// personKey identifies a person of an account for the duplicate rule.
func personKey(account int64, providerID string) string {
	return fmt.Sprint(account, "\x00", providerID)
}

// livePersonTargetsSQL finds the live targets of accounts $1 holding the
// provider ids $2 (pairwise), other than the targets $3.
const livePersonTargetsSQL = `SELECT t.account_id, t.provider_id, t.id FROM targets t
	JOIN unnest($1::bigint[], $2::text[]) AS k(account_id, provider_id)
	ON t.account_id = k.account_id AND t.provider_id = k.provider_id
	WHERE t.status NOT IN ('skipped', 'failed') AND t.withdrawn_at IS NULL AND t.id <> ALL($3::bigint[])`

// livePersonTargets returns, by personKey, a live target of each account
// and provider id pair (accounts[i], providerIDs[i]), other than except.
func livePersonTargets(ctx context.Context, tx pgx.Tx, accounts []int64, providerIDs []string, except []int64) (map[string]int64, error) {
	taken := map[string]int64{}
	if len(providerIDs) == 0 {
		return taken, nil
	}
	if except == nil {
		except = []int64{}
	}
	rows, err := tx.Query(ctx, livePersonTargetsSQL, accounts, providerIDs, except)
	if err != nil {
		return nil, err
	}
	var acc, id int64
	var pid string
	_, err = pgx.ForEachRow(rows, []any{&acc, &pid, &id}, func() error {
		taken[personKey(acc, pid)] = id
		return nil
	})
	if err != nil {
		return nil, err
	}
	return taken, nil
}
