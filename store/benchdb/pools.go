package benchdb

import (
	"context"
	"fmt"
)

// PoolSenders makes every account a sender of the campaign (a pool of
// them all: docs/pools.md). Targets inserted afterwards wait for the
// planner to give them a sender.
func (db *DB) PoolSenders(ctx context.Context, campaign int64) error {
	if _, err := db.pool.Exec(ctx, `INSERT INTO campaign_senders (campaign_id, account_id)
		SELECT $1, id FROM accounts ON CONFLICT DO NOTHING`, campaign); err != nil {
		return fmt.Errorf("seed pool senders: %w", err)
	}
	return nil
}
