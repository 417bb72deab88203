package store

import "context"

// analyzeAfterLoad is how many rows a bulk load must add before the
// planner's statistics of the table are refreshed at once, rather than by
// autovacuum a minute or more later: the first minute of a big run was
// planned on a targets table analysed while nearly empty (issue 15).
const analyzeAfterLoad = 1000

// analyzeTargets refreshes the statistics of targets after a bulk load of
// n rows. It is best effort: a failure leaves the job to autovacuum.
func (s *Store) analyzeTargets(ctx context.Context, n int64) {
	if n < analyzeAfterLoad {
		return
	}
	_, _ = s.pool.Exec(ctx, `ANALYZE targets`)
}
