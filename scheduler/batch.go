package scheduler

import (
	"context"
	"errors"
	"time"

	"github.com/hibiken/asynq"

	"github.com/outreach-dev/outreach/store"
	"github.com/outreach-dev/outreach/worker"
)

// DefaultBatchMax is a good Config.BatchMax: how many targets of one
// account a batch task carries at most (docs/throughput.md).
const DefaultBatchMax = 100

// enqueueBatched enqueues an account's claimed invitations as batch tasks
// where several fall in the same slot: the account has no gap between
// calls (no limits, or windows with room for them all at once, as with
// Partoo and Altegio bulk invitations), and each target is on its first
// attempt of its first task (anything else takes the single-target
// path, which closes and settles earlier attempts). The other targets
// get their own task as before. It reports false, enqueueing nothing, when
// the account does not batch at all.
func (s *Scheduler) enqueueBatched(ctx context.Context, typ string, pl planned, targets []*store.Target, now time.Time, ps *TickStats) bool {
	if s.cfg.BatchMax <= 1 || typ != worker.TypeInvite || pl.account == nil || !pl.account.Pace(store.ActionInvite).Gap.IsZero() || len(targets) < 2 {
		return false
	}
	type group struct {
		at      time.Time
		targets []*store.Target
	}
	var groups []group
	for j, t := range targets {
		at := pl.slots[j]
		if t.NextAttemptAt.After(at) {
			at = t.NextAttemptAt
		}
		if lag := now.Sub(t.NextAttemptAt); lag > ps.Lag {
			ps.Lag = lag
		}
		if !at.After(now) {
			at = now
		}
		batchable := t.TaskGen == 0 && t.Attempts == 0
		if g := len(groups) - 1; batchable && g >= 0 && groups[g].at.Equal(at) && len(groups[g].targets) > 0 &&
			len(groups[g].targets) < s.cfg.BatchMax && batchableTarget(groups[g].targets[0]) {
			groups[g].targets = append(groups[g].targets, t)
			continue
		}
		groups = append(groups, group{at: at, targets: []*store.Target{t}})
	}
	for _, g := range groups {
		var err error
		var conflict bool
		if len(g.targets) == 1 {
			t := g.targets[0]
			conflict, err = s.enqueue(ctx, typ, t.ID, t.TaskGen, g.at, now)
		} else {
			conflict, err = s.enqueueBatch(ctx, pl.account.ID, g.targets, g.at, now)
		}
		if err != nil {
			// The targets stay queued; reconciliation enqueues them (one
			// by one) once Redis answers again.
			if ctx.Err() == nil {
				s.log.ErrorContext(ctx, "enqueue", "account_id", pl.account.ID, "target_id", g.targets[0].ID, "targets", len(g.targets), "error", err)
			}
			break
		}
		if conflict {
			ps.Conflicts += len(g.targets)
		} else {
			ps.Enqueued += len(g.targets)
		}
	}
	return true
}

func batchableTarget(t *store.Target) bool { return t.TaskGen == 0 && t.Attempts == 0 }

// enqueueBatch puts one batch task for targets in Redis, to run at at.
func (s *Scheduler) enqueueBatch(ctx context.Context, accountID int64, targets []*store.Target, at, now time.Time) (conflict bool, err error) {
	ps := make([]worker.Payload, len(targets))
	for i, t := range targets {
		ps[i] = worker.Payload{TargetID: t.ID, Gen: t.TaskGen}
	}
	task, opts := worker.NewBatchTask(accountID, ps)
	if at.After(now) {
		opts = append(opts, asynq.ProcessAt(at))
	}
	_, err = s.client.Load().EnqueueContext(ctx, task, opts...)
	if errors.Is(err, asynq.ErrTaskIDConflict) {
		return true, nil
	}
	return false, err
}
