package scheduler

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"time"

	"github.com/hibiken/asynq"

	"github.com/outreach-dev/outreach/store"
	"github.com/outreach-dev/outreach/worker"
)

// DefaultBatchMax is a good Config.BatchMax: how many targets a batch task
// carries at most (docs/throughput.md).
const DefaultBatchMax = 100

// plannedTask is one task a tick enqueues: a target's own (one target) or
// a batch, to run at at.
type plannedTask struct {
	at      time.Time
	targets []*store.Target
	batch   bool
}

// batchTasks turns the claimed targets into tasks. A target joins a batch
// when its account has no gap between calls and it is on its first attempt
// of its first task (anything else takes the single-target path, which
// closes and settles earlier attempts, and draws the gap); the batchable
// targets, of any accounts, are sorted by slot and cut into batches of up
// to BatchMax whose slots lie within BatchSpread of the first, each run at
// its latest slot, so that no target is sent before its own. A lone
// batchable target gets a task of its own.
func (s *Scheduler) batchTasks(typ string, claimed map[int64][]*store.Target, plans map[int64]planned, now time.Time, st *TickStats) []plannedTask {
	var out, pool []plannedTask
	batching := s.cfg.BatchMax > 1 && typ == worker.TypeInvite
	for id, targets := range claimed {
		pl := plans[id]
		batches := batching && pl.account != nil && pl.account.Pace(store.ActionInvite).Gap.IsZero()
		for j, t := range targets {
			at := pl.slots[j]
			if t.NextAttemptAt.After(at) {
				at = t.NextAttemptAt
			}
			if lag := now.Sub(t.NextAttemptAt); lag > st.Lag {
				st.Lag = lag
			}
			pt := plannedTask{at: at, targets: []*store.Target{t}}
			if batches && t.TaskGen == 0 && t.Attempts == 0 {
				if pt.at.Before(now) {
					pt.at = now
				}
				pool = append(pool, pt)
				continue
			}
			out = append(out, pt)
		}
	}
	slices.SortFunc(pool, func(x, y plannedTask) int {
		return cmp.Or(x.at.Compare(y.at), cmp.Compare(x.targets[0].AccountID, y.targets[0].AccountID),
			cmp.Compare(x.targets[0].ID, y.targets[0].ID))
	})
	for i := 0; i < len(pool); {
		j := i + 1
		for j < len(pool) && j-i < s.cfg.BatchMax && pool[j].at.Sub(pool[i].at) <= s.cfg.BatchSpread {
			j++
		}
		if j-i == 1 {
			out = append(out, pool[i])
		} else {
			b := plannedTask{at: pool[j-1].at, batch: true}
			for _, pt := range pool[i:j] {
				b.targets = append(b.targets, pt.targets[0])
			}
			out = append(out, b)
		}
		i = j
	}
	// The soonest first: the workers start on them while the rest are
	// enqueued.
	slices.SortStableFunc(out, func(x, y plannedTask) int { return x.at.Compare(y.at) })
	return out
}

// enqueueTask puts pt in Redis, to run at its time; it reports a conflict
// when the task is there already.
func (s *Scheduler) enqueueTask(ctx context.Context, typ string, pt plannedTask, now time.Time) (conflict bool, err error) {
	if !pt.batch {
		t := pt.targets[0]
		return s.enqueue(ctx, typ, t.ID, t.TaskGen, pt.at, now)
	}
	bts := make([]worker.BatchTarget, len(pt.targets))
	for i, t := range pt.targets {
		bts[i] = worker.BatchTarget{Payload: worker.Payload{TargetID: t.ID, Gen: t.TaskGen}, AccountID: t.AccountID}
	}
	task, opts := worker.NewBatchTask(bts)
	if pt.at.After(now) {
		opts = append(opts, asynq.ProcessAt(pt.at))
	}
	_, err = s.client.Load().EnqueueContext(ctx, task, opts...)
	if errors.Is(err, asynq.ErrTaskIDConflict) {
		return true, nil
	}
	return false, err
}
