package scheduler

import "context"

// foldCounts folds the campaign progress counters that the targets'
// triggers append to (store.FoldCampaignCounts), so that reading a
// campaign's progress stays a few rows. Any number of schedulers may fold
// at once; a failure only leaves more rows to sum until the next fold.
func (s *Scheduler) foldCounts(ctx context.Context) {
	n, err := s.cfg.Store.FoldCampaignCounts(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.log.WarnContext(ctx, "folding campaign counts", "error", err)
		}
		return
	}
	if n > 0 {
		s.log.DebugContext(ctx, "folded campaign counts", "rows_removed", n)
	}
}
