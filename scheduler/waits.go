package scheduler

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/outreach-dev/outreach/store"
)

// waitRefresh is how long the planner trusts its memory of an account wait
// it wrote; after it the row is written again (a no-op when unchanged), in
// case another process cleared it (`outreach resume account`).
const waitRefresh = time.Minute

// waitShort is how near a wait's end must be for the planner not to
// record it: a wait over within seconds (a window full of requests still
// out, a second's window about to free) is not worth a row a tick, and its
// targets show as due, waiting for their turn. It is also the least
// change of a recorded wait's end worth writing again.
const waitShort = 2 * time.Second

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
// last wrote them (or that it has not confirmed for waitRefresh). A wait
// that ends within waitShort is recorded as none: a longer one recorded
// before is cleared, one that ends within waitShort too is left to end. A
// recorded wait still running is not written again for a change that does
// not matter to its reader: the same kind and reason (its counts of
// queued tasks aside) with an end moved by at most waitShort or a tenth of
// the time left. (At 1,000 accounts with windows of seconds, ends and
// counts moved on every tick, and the planner rewrote about 1,000 rows a
// tick.)
func (s *Scheduler) recordWaits(ctx context.Context, waits []store.AccountWait, now time.Time) {
	if s.waits == nil {
		s.waits = map[waitKey]knownWait{}
	}
	var changed []store.AccountWait
	for _, w := range waits {
		if endsSoon(w, now) {
			w = store.AccountWait{AccountID: w.AccountID, Action: w.Action}
		}
		k := waitKey{w.AccountID, w.Action}
		old, ok := s.waits[k]
		if ok && now.Sub(old.written) < waitRefresh && (sameWait(old.wait, w) || closeWait(old.wait, w, now) ||
			w.Kind == "" && endsSoon(old.wait, now)) {
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

// closeWait reports whether the recorded wait old, still running at now,
// says what w says: the same kind, the same reason but for its counts of
// queued tasks, and an end within waitShort or a tenth of the time left.
func closeWait(old, w store.AccountWait, now time.Time) bool {
	if old.Kind == "" || old.Kind != w.Kind || old.Until.IsZero() || w.Until.IsZero() || !old.Until.After(now) ||
		queuedCounts.ReplaceAllString(old.Reason, "") != queuedCounts.ReplaceAllString(w.Reason, "") {
		return false
	}
	return old.Until.Sub(w.Until).Abs() <= max(waitShort, w.Until.Sub(now)/10)
}

// endsSoon reports whether the wait ends within waitShort.
func endsSoon(w store.AccountWait, now time.Time) bool {
	return w.Kind != "" && !w.Until.IsZero() && !w.Until.After(now.Add(waitShort))
}

// queuedCounts matches the counts of queued tasks explainWait puts in a
// reason.
var queuedCounts = regexp.MustCompile(` \(\d+ queued( ahead)?\)`)

func sameWait(a, b store.AccountWait) bool {
	return a.Kind == b.Kind && a.Reason == b.Reason && a.Until.Equal(b.Until)
}
