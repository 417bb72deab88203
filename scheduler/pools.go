package scheduler

import (
	"context"
	"time"

	"github.com/outreach-dev/outreach/store"
)

// Sender pools (docs/pools.md): before each planning pass, targets of
// paused or disabled senders go back to their pools; then, for each action,
// the pools' unassigned due targets are given to the senders with slots in
// this pass, in proportion to their slots, and the ordinary per-account
// claim takes them.

// releaseStoppedSenders gives the not-yet-invited targets of paused and
// disabled senders back to their pools.
func (s *Scheduler) releaseStoppedSenders(ctx context.Context, now time.Time) error {
	n, err := s.cfg.Store.ReleaseStoppedSenders(ctx, now)
	if err != nil {
		return err
	}
	if n > 0 {
		s.log.InfoContext(ctx, "targets of paused or disabled senders moved back to their pools", "count", n)
	}
	return nil
}

// assignPools gives the pools' unassigned due targets of one action to the
// accounts planned in this pass (plans), each up to its slots. A sender
// looks up only as many people as it has invitation slots for, so that the
// person it looks up is one it can invite soon.
func (s *Scheduler) assignPools(ctx context.Context, lookup bool, work []*store.AccountWork, plans map[int64]planned,
	now, end time.Time) {
	var rooms []store.SenderRoom
	for _, w := range work {
		pl, ok := plans[w.Account.ID]
		if !ok {
			continue
		}
		n := len(pl.slots)
		if lookup {
			invites := planSlots(w.Account, w.Recent, store.ActionInvite, w.QueuedInvites-w.SendingInvites,
				w.NextCall[store.ActionInvite], now, end, s.cfg.MaxQueuedPerAccount-w.QueuedInvites)
			n = min(n, len(invites))
		}
		if n > 0 {
			rooms = append(rooms, store.SenderRoom{AccountID: w.Account.ID, N: n})
		}
	}
	given, err := s.cfg.Store.AssignPoolTargets(ctx, lookup, rooms, end)
	if err != nil {
		if ctx.Err() == nil {
			s.log.ErrorContext(ctx, "assigning pool targets", "lookup", lookup, "error", err)
		}
		return
	}
	for id, n := range given {
		s.log.DebugContext(ctx, "pool targets given to a sender", "account_id", id, "lookup", lookup, "count", n)
	}
}
