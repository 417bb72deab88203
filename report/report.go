// Package report gives operators the progress the store reads: per campaign
// the targets by status and the main reasons for skips and failures, per
// account its status and the budget used and left in each limit window,
// and why targets and accounts wait (the target_waits view).
// The status command, the demo summary and the metrics' budget collector
// all read it. The queries live in the store (Store.AccountProgress,
// Store.CampaignProgress); this package shapes them for people and JSON.
package report

import (
	"context"
	"time"

	"github.com/outreach-dev/outreach/store"
)

// Window is one of an account's limits and how much of it is used now.
type Window struct {
	Action     string        `json:"action"` // invite or lookup
	Max        int           `json:"max"`
	Per        time.Duration `json:"-"`
	PerSeconds float64       `json:"per_seconds"`
	PerText    string        `json:"per"`
	// Used counts the ledger's rows inside the rolling window (requests in
	// flight included), as the workers count them.
	Used int `json:"used"`
	// Left is Max - Used, never below zero.
	Left int `json:"left"`
	// Source is "custom" (the account's own limit) or "default" (its
	// provider's, docs/pacing.md).
	Source string `json:"source"`
}

// Account is an account's state and budgets.
type Account struct {
	ID          int64      `json:"id"`
	Name        string     `json:"name"`
	Provider    string     `json:"provider"`
	Status      string     `json:"status"`
	PauseReason string     `json:"pause_reason,omitempty"`
	PausedUntil *time.Time `json:"paused_until,omitempty"`
	// Pacing is the account's pacing mode: "default" or "unlimited".
	Pacing string `json:"pacing"`
	// PacingSummary says in a word what paces it: "default" (its
	// provider's defaults), "custom" (its own settings), "custom+default",
	// "unlimited" (opted out, nothing of its own) or "none".
	PacingSummary string `json:"pacing_summary"`
	// Paces are the gaps of its actions, and where they and the limits
	// come from.
	Paces []Pace `json:"paces"`
	// Windows are the limits that apply, the account's own or its
	// provider's defaults.
	Windows []Window `json:"windows"`
	// Sent counts the account's invitations sent, ever.
	Sent int `json:"sent"`
	// Waits says why the account's due targets get no send slot now, and
	// until when (disabled, paused, or what the scheduler's planner found:
	// working hours, a full window, the gap); empty when it can send.
	Waits []AccountWait `json:"waits"`
	// Warmup is its warm-up ramp, nil when it has none (docs/warmup.md).
	Warmup *Warmup `json:"warmup,omitempty"`
}

// AccountWait is why an account sends nothing now, for one action or for
// all ("" when the whole account is disabled or paused).
type AccountWait struct {
	Action string `json:"action,omitempty"`
	// Wait is a keyword of target_waits: account_disabled,
	// account_paused, hours, window, gap or pacing (docs/waiting.md), or
	// due when targets are due and nothing plans them.
	Wait       string     `json:"wait"`
	Reason     string     `json:"reason"`
	Until      *time.Time `json:"until,omitempty"`
	UntilLocal string     `json:"until_local,omitempty"`
}

// WaitGroup is a number of a campaign's targets that wait for the same
// reason, and the earliest time one of them can go on.
type WaitGroup struct {
	Wait       string     `json:"wait"`
	Reason     string     `json:"reason"`
	Count      int        `json:"count"`
	Until      *time.Time `json:"until,omitempty"`
	UntilLocal string     `json:"until_local,omitempty"`
}

// Pace is how one action of an account is paced (store.Account.Pace).
type Pace struct {
	Action string `json:"action"`
	// LimitSource is "custom", "default" or "" (no limits); GapSource
	// "custom", "default", "spread" (limits spread evenly) or "" (no gap).
	LimitSource      string  `json:"limit_source"`
	GapSource        string  `json:"gap_source"`
	MinGapSeconds    float64 `json:"min_gap_seconds"`
	GapJitterSeconds float64 `json:"gap_jitter_seconds"`
	// GapText is the gap as users write it: "1m30s + up to 2m30s".
	GapText string `json:"gap"`
}

// Reason is a cause of skips or failures and how many targets it hit.
type Reason struct {
	Status string `json:"status"` // skipped or failed
	Reason string `json:"reason"`
	Count  int    `json:"count"`
}

// Campaign is a campaign's progress.
type Campaign struct {
	ID      int64  `json:"id"`
	Name    string `json:"name"`
	Account string `json:"account"`
	Status  string `json:"status"`
	Total   int    `json:"total"`
	// Counts has every target status, zero included.
	Counts map[string]int `json:"counts"`
	// Reasons are the most frequent causes of skips and failures, most
	// frequent first (at most five per status).
	Reasons []Reason `json:"reasons,omitempty"`
	// Waiting groups the targets that are not terminal by why they wait
	// (the target_waits view), most first.
	Waiting []WaitGroup `json:"waiting"`
}

// Statuses are the target statuses in pipeline order, as text: those of
// store.TargetStatuses.
var Statuses = statusTexts(store.TargetStatuses())

func statusTexts(ss []store.TargetStatus) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = string(s)
	}
	return out
}

// Terminal reports whether a target status is final (store.TargetStatus.Terminal).
func Terminal(status string) bool { return store.TargetStatus(status).Terminal() }

// Done is how many targets reached a final status.
func (c *Campaign) Done() int { return c.Counts["sent"] + c.Counts["skipped"] + c.Counts["failed"] }

// Accounts returns every account (or the one named, if name is not
// empty) with its windows, by id.
func Accounts(ctx context.Context, st *store.Store, name string) ([]*Account, error) {
	progress, err := st.AccountProgress(ctx, name)
	if err != nil {
		return nil, err
	}
	var out []*Account
	for _, p := range progress {
		a := &Account{ID: p.ID, Name: p.Name, Provider: p.Provider, Status: p.Status, PauseReason: p.PauseReason,
			PausedUntil: p.PausedUntil, Pacing: p.Pacing, Sent: p.Sent, Windows: []Window{}, Waits: []AccountWait{}}
		for _, l := range p.Limits {
			a.Windows = append(a.Windows, Window{Action: l.Action, Max: l.Max, Per: l.Per, PerSeconds: l.Per.Seconds(),
				PerText: FormatDuration(l.Per), Used: l.Used, Left: max(l.Max-l.Used, 0), Source: l.Source})
		}
		if sa := p.Account; sa != nil {
			a.PacingSummary = sa.PacingSummary()
			a.Paces = []Pace{}
			for _, action := range sa.PacedActions() {
				pc := sa.Pace(action)
				a.Paces = append(a.Paces, Pace{Action: string(action), LimitSource: pc.LimitSource, GapSource: pc.Gap.Source,
					MinGapSeconds: pc.Gap.Min.Seconds(), GapJitterSeconds: pc.Gap.Jitter.Seconds(), GapText: FormatGap(pc.Gap.Min, pc.Gap.Jitter)})
			}
		}
		for _, w := range p.Waits {
			a.Waits = append(a.Waits, AccountWait{Action: w.Action, Wait: w.Wait, Reason: w.Reason, Until: w.Until, UntilLocal: w.UntilLocal})
		}
		out = append(out, a)
	}
	return out, addWarmups(ctx, st, out)
}

// Campaigns returns every campaign (or those named name, if not empty)
// with its progress, by id.
func Campaigns(ctx context.Context, st *store.Store, name string) ([]*Campaign, error) {
	progress, err := st.CampaignProgress(ctx, name)
	if err != nil {
		return nil, err
	}
	var out []*Campaign
	for _, p := range progress {
		c := &Campaign{ID: p.ID, Name: p.Name, Account: p.Account, Status: p.Status, Total: p.Total,
			Counts: map[string]int{}, Waiting: []WaitGroup{}}
		for _, s := range Statuses {
			c.Counts[s] = 0
		}
		for s, n := range p.Counts {
			c.Counts[s] = n
		}
		for _, r := range p.Reasons {
			c.Reasons = append(c.Reasons, Reason{Status: r.Status, Reason: r.Reason, Count: r.Count})
		}
		for _, g := range p.Waiting {
			c.Waiting = append(c.Waiting, WaitGroup{Wait: g.Wait, Reason: g.Reason, Count: g.Count, Until: g.Until, UntilLocal: g.UntilLocal})
		}
		out = append(out, c)
	}
	return out, nil
}

// FormatGap renders a gap as users write it: "1m30s + up to 2m30s",
// "500ms", "none".
func FormatGap(minGap, jitter time.Duration) string {
	switch {
	case minGap <= 0 && jitter <= 0:
		return "none"
	case jitter <= 0:
		return FormatDuration(minGap)
	}
	return FormatDuration(minGap) + " + up to " + FormatDuration(jitter)
}

// FormatDuration renders a window length as users write it: 24h, 168h,
// 10s, 1h30m.
func FormatDuration(d time.Duration) string {
	s := d.String()
	for _, suf := range []string{"m0s", "h0m"} {
		if len(s) > len(suf) && s[len(s)-len(suf):] == suf {
			s = s[:len(s)-len(suf)+1]
		}
	}
	return s
}
