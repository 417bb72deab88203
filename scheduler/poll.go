package scheduler

import (
	"context"
	"errors"
	"time"

	"github.com/hibiken/asynq"

	"github.com/outreach-dev/outreach/worker"
)

// pollLease is how long a poll the scheduler enqueued is its worker's:
// if the poll is lost (Redis flushed, the worker died), it comes due again
// after it.
const pollLease = 15 * time.Minute

// pollBatch bounds the polls enqueued in one tick.
const pollBatch = 500

// planPolls enqueues the relation polls that are due (docs/acceptances.md):
// each due account's poll moves its due time ahead by pollLease and goes to
// the polls queue once; the worker sets the next one.
func (s *Scheduler) planPolls(ctx context.Context, now time.Time) error {
	ids, err := s.cfg.Store.ClaimDuePolls(ctx, now, pollLease, pollBatch)
	if err != nil {
		return err
	}
	for _, id := range ids {
		task, opts := worker.NewPollTask(id, now)
		if _, err := s.client.Load().EnqueueContext(ctx, task, opts...); err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
			s.log.WarnContext(ctx, "enqueue poll failed; it comes due again after its lease", "account_id", id, "error", err)
		}
	}
	return nil
}
