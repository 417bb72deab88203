package scheduler

import (
	"sort"
	"time"

	"github.com/outreach-dev/outreach/store"
)

// planSlots returns the times of the account's next send slots for action
// that fall before end, at most n of them. It follows the action's pacing
// (store.Account.Pace: limits and gap, the account's own or its
// provider's): it counts the sends already in each rolling window (recent,
// newest first; a zero time is a request still out) and the tasks queued
// and not started yet (queued; a task being sent is a request still out
// in recent), starts no earlier than nextCall (when the gap after the latest
// call ends, zero if none), spaces slots by the mean gap and moves them
// into working hours. The worker's reservation remains the authority; a
// slot is the planner's best estimate of when it will pass.
func planSlots(a *store.Account, recent map[store.Limit][]time.Time, action store.Action, queued int, nextCall, now, end time.Time, n int) []time.Time {
	if n <= 0 {
		return nil
	}
	pace := a.Pace(action)
	start := now
	if action == store.ActionInvite && a.NextSendAt.After(start) {
		start = a.NextSendAt
	}
	if nextCall.After(start) {
		start = nextCall
	}
	gap := pace.Gap.Mean()
	if gap > 0 && queued > 0 {
		// One at a time: queued tasks already take the next slots.
		start = start.Add(time.Duration(queued) * gap)
	}
	// For each limit, when its k-th next slot frees.
	type window struct {
		freeNow int
		frees   []time.Time // when older sends leave the window, ascending
	}
	var windows []window
	for _, l := range pace.Limits {
		times := recent[l]
		w := window{freeNow: l.Max - len(times) - queued}
		var finite []time.Time
		for _, t := range times {
			if !t.IsZero() {
				finite = append(finite, t.Add(l.Per))
			}
		}
		sort.Slice(finite, func(i, j int) bool { return finite[i].Before(finite[j]) })
		if w.freeNow < 0 {
			// Queued tasks take the frees first.
			drop := min(-w.freeNow, len(finite))
			finite = finite[drop:]
			w.freeNow = 0
		}
		w.frees = finite
		windows = append(windows, w)
	}
	var out []time.Time
	prev := time.Time{}
	for k := 0; len(out) < n; k++ {
		slot := start
		for _, w := range windows {
			switch {
			case k < w.freeNow:
			case k-w.freeNow < len(w.frees):
				if t := w.frees[k-w.freeNow]; t.After(slot) {
					slot = t
				}
			default:
				return out // this window has no more room before end
			}
		}
		if !prev.IsZero() && gap > 0 && slot.Before(prev.Add(gap)) {
			slot = prev.Add(gap)
		}
		open := a.NextOpen(slot)
		if open.IsZero() {
			return out
		}
		slot = open
		if slot.After(end) {
			return out
		}
		out = append(out, slot)
		prev = slot
	}
	return out
}
