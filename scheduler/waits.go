package scheduler

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/outreach-dev/outreach/store"
)

// waitRefresh is how long the planner trusts its memory of an account wait
// it wrote; after it the row is written again (a no-op when unchanged), in
// case another process cleared it (`outreach resume account`).
const waitRefresh = time.Minute

// farAhead bounds the search for an account's next slot when explaining a
// wait: beyond it the next slot is reported as unknown.
const farAhead = 400 * 24 * time.Hour

// waitKey names an account's wait for one action.
type waitKey struct {
	account int64
	action  store.Action
}

// knownWait is an account wait the planner wrote, and when.
type knownWait struct {
	wait    store.AccountWait
	written time.Time
}

// explainWait says why the account has no send slot for action before the
// horizon although targets are due: the constraint that frees last among
// working hours, its full windows and its gap, until the next slot
// planSlots finds.
func explainWait(a *store.Account, recent map[store.Limit][]time.Time, action store.Action, queued int, nextCall, now time.Time) store.AccountWait {
	w := store.AccountWait{AccountID: a.ID, Action: action}
	open := a.NextOpen(now)
	if open.IsZero() {
		w.Kind, w.Reason = store.WaitHours, "no working days (work_days is empty)"
		return w
	}
	type cause struct {
		kind, reason string
		end          time.Time
	}
	var causes []cause
	if open.After(now) {
		causes = append(causes, cause{store.WaitHours, "outside working hours", open})
	}
	for _, l := range a.LimitsFor(action) {
		times := recent[l]
		used := len(times) + queued
		if used < l.Max {
			continue
		}
		var frees []time.Time
		for _, t := range times {
			if !t.IsZero() {
				frees = append(frees, t.Add(l.Per))
			}
		}
		sort.Slice(frees, func(i, j int) bool { return frees[i].Before(frees[j]) })
		c := cause{kind: store.WaitWindow, reason: fmt.Sprintf("window `%s %d per %s` full", l.Action, l.Max, perText(l.Per))}
		if i := used - l.Max; i < len(frees) {
			c.end = frees[i]
		} else {
			c.reason += " of requests still out"
			c.end = now
		}
		if queued > 0 {
			c.reason += fmt.Sprintf(" (%d queued)", queued)
		}
		causes = append(causes, c)
	}
	start := now
	if action == store.ActionInvite && a.NextSendAt.After(start) {
		start = a.NextSendAt
	}
	if nextCall.After(start) {
		start = nextCall
	}
	what := "calls of this action"
	switch action {
	case store.ActionInvite:
		what = "invitations"
	case store.ActionLookup:
		what = "profile lookups"
	}
	reason := "minimum gap between " + what
	switch a.Pace(action).Gap.Source {
	case store.SourceDefault:
		reason += " (provider default pacing)"
	case store.SourceSpread:
		reason += " (limits spread evenly)"
	}
	if gap := a.Pace(action).Gap; gap.Min+gap.Jitter/2 > 0 && queued > 0 {
		start = start.Add(time.Duration(queued) * (gap.Min + gap.Jitter/2))
		reason += fmt.Sprintf(" (%d queued ahead)", queued)
	}
	if start.After(now) {
		causes = append(causes, cause{store.WaitGap, reason, start})
	}
	binding := cause{store.WaitPacing, "next send slot planned later", time.Time{}}
	for _, c := range causes {
		if binding.end.IsZero() || c.end.After(binding.end) {
			binding = c
		}
	}
	w.Kind, w.Reason, w.Until = binding.kind, binding.reason, binding.end
	if next := planSlots(a, recent, action, queued, nextCall, now, now.Add(farAhead), 1); len(next) == 1 {
		w.Until = next[0]
	}
	return w
}

// perText renders a window length as people say it: 1 day, 7 days, 1h,
// 10s.
func perText(d time.Duration) string {
	const day = 24 * time.Hour
	switch {
	case d == day:
		return "1 day"
	case d > 0 && d%day == 0:
		return fmt.Sprintf("%d days", d/day)
	}
	s := d.String()
	for _, suf := range []string{"m0s", "h0m"} {
		if strings.HasSuffix(s, suf) && len(s) > len(suf) {
			s = s[:len(s)-len(suf)+1]
		}
	}
	return s
}

// recordWaits writes the account waits that changed since the planner
// last wrote them (or that it has not confirmed for waitRefresh).
func (s *Scheduler) recordWaits(ctx context.Context, waits []store.AccountWait, now time.Time) {
	if s.waits == nil {
		s.waits = map[waitKey]knownWait{}
	}
	var changed []store.AccountWait
	for _, w := range waits {
		k := waitKey{w.AccountID, w.Action}
		old, ok := s.waits[k]
		if ok && sameWait(old.wait, w) && now.Sub(old.written) < waitRefresh {
			continue
		}
		changed = append(changed, w)
	}
	if len(changed) == 0 {
		return
	}
	if _, err := s.cfg.Store.SetAccountWaits(ctx, changed); err != nil {
		if ctx.Err() == nil {
			s.log.ErrorContext(ctx, "recording why accounts wait", "accounts", len(changed), "error", err)
		}
		return
	}
	for _, w := range changed {
		s.waits[waitKey{w.AccountID, w.Action}] = knownWait{wait: w, written: now}
	}
}

func sameWait(a, b store.AccountWait) bool {
	return a.Kind == b.Kind && a.Reason == b.Reason && a.Until.Equal(b.Until)
}
