package scheduler

import (
	"context"
	"errors"
	"time"

	"github.com/hibiken/asynq"

	"github.com/outreach-dev/outreach/provider"
	"github.com/outreach-dev/outreach/worker"
)

// Withdrawal planning (docs/withdrawals.md).
const (
	// withdrawBatch is the most withdrawals planned per tick; the
	// accounts' pacing of withdrawals decides when they run.
	withdrawBatch = 200
	// withdrawRequeue is how long a planned withdrawal is left to its
	// task before it is planned again (its task lost with Redis).
	withdrawRequeue = 10 * time.Minute
	// withdrawEvery is how often stale invitations are looked for unless
	// Config.WithdrawInterval says: their age is days, and the query reads
	// every sent invitation not yet withdrawn, so not on every tick.
	withdrawEvery = 30 * time.Second
)

// withdrawProviders are the providers whose invitations can be withdrawn.
var withdrawProviders = []provider.Name{provider.Unipile}

// withdrawals is the tick's withdrawal step, before the invitations are
// planned: targets whose person was withdrawn by their account within its
// block wait until it is over (so no slot is spent on a sure
// cannot_resend_yet), and stale invitations get a withdrawal task each.
func (s *Scheduler) withdrawals(ctx context.Context, now time.Time) error {
	if n, err := s.cfg.Store.HoldWithdrawnPeople(ctx, now); err != nil {
		return err
	} else if n > 0 {
		s.log.InfoContext(ctx, "targets wait for the block after a withdrawal to their person", "count", n)
	}
	every := s.cfg.WithdrawInterval
	if every <= 0 {
		every = withdrawEvery
	}
	if now.Sub(s.withdrawnAt) < every && !now.Before(s.withdrawnAt) {
		return nil
	}
	s.withdrawnAt = now
	ids, err := s.cfg.Store.PlanWithdrawals(ctx, now, withdrawBatch, withdrawRequeue, withdrawProviders)
	if err != nil {
		return err
	}
	for _, id := range ids {
		task, opts := worker.NewWithdrawTask(id)
		if _, err := s.client.Load().EnqueueContext(ctx, task, opts...); err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
			return err
		}
	}
	if len(ids) > 0 {
		s.log.InfoContext(ctx, "stale invitations planned for withdrawal", "count", len(ids))
	}
	// Accounts that count outside invitations have their sent list read.
	accounts, err := s.cfg.Store.PlanSentListReads(ctx, now, withdrawRequeue, withdrawProviders)
	if err != nil {
		return err
	}
	for _, id := range accounts {
		task, opts := worker.NewSentListTask(id)
		if _, err := s.client.Load().EnqueueContext(ctx, task, opts...); err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
			return err
		}
	}
	return nil
}
