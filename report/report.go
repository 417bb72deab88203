// Package report reads progress from Postgres for operators: per campaign
// the targets by status and the main reasons for skips and failures, per
// account its status and the budget used and left in each limit window,
// and why targets and accounts wait (the target_waits view).
// The status command, the demo summary and the metrics' budget collector
// all read it. Every query is one round trip and uses the schema's indexes.
package report

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

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

const accountsSQL = `SELECT a.id, a.name, a.provider, a.status, coalesce(a.pause_reason, ''), a.paused_until, a.pacing,
	coalesce(l.action, ''), coalesce(l.max_count, 0), coalesce(extract(epoch from l.per)::float8, 0),
	coalesce((SELECT count(*) FROM sends s WHERE s.account_id = a.id AND s.action = l.action
		AND s.window_at > now() - l.per), 0), coalesce(l.source, '')
	FROM accounts a LEFT JOIN account_limits_effective l ON l.account_id = a.id
	WHERE $1 = '' OR a.name = $1
	ORDER BY a.id, l.action, l.per`

// Accounts returns every account (or the one named, if name is not
// empty) with its windows, by id.
func Accounts(ctx context.Context, db *pgxpool.Pool, name string) ([]*Account, error) {
	rows, err := db.Query(ctx, accountsSQL, name)
	if err != nil {
		return nil, fmt.Errorf("report accounts: %w", err)
	}
	var out []*Account
	byID := map[int64]*Account{}
	for rows.Next() {
		var a Account
		var w Window
		var per float64
		if err := rows.Scan(&a.ID, &a.Name, &a.Provider, &a.Status, &a.PauseReason, &a.PausedUntil, &a.Pacing,
			&w.Action, &w.Max, &per, &w.Used, &w.Source); err != nil {
			rows.Close()
			return nil, fmt.Errorf("report accounts: %w", err)
		}
		cur := byID[a.ID]
		if cur == nil {
			cur = &a
			cur.Windows = []Window{}
			byID[a.ID] = cur
			out = append(out, cur)
		}
		if w.Action != "" {
			// Clamped as the store clamps intervals: a row from before
			// migration 00002 can say '1000 years', more than a Duration holds.
			w.Per = time.Duration(min(per, 10*366*86400) * float64(time.Second))
			w.PerText, w.PerSeconds = FormatDuration(w.Per), w.Per.Seconds()
			w.Left = max(w.Max-w.Used, 0)
			cur.Windows = append(cur.Windows, w)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("report accounts: %w", err)
	}
	if len(out) == 0 {
		return out, nil
	}
	if err := addPaces(ctx, db, byID); err != nil {
		return nil, err
	}
	sent, err := db.Query(ctx, `SELECT account_id, count(*) FROM sends WHERE action = 'invite' AND outcome = 'sent' GROUP BY 1`)
	if err != nil {
		return nil, fmt.Errorf("report accounts: %w", err)
	}
	var id int64
	var n int
	_, err = pgx.ForEachRow(sent, []any{&id, &n}, func() error {
		if a := byID[id]; a != nil {
			a.Sent = n
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("report accounts: %w", err)
	}
	if err := accountWaits(ctx, db, byID); err != nil {
		return nil, err
	}
	return out, nil
}

// accountWaitsSQL gives why each account sends nothing now: its own state,
// else the planner's account_waits that still hold.
const accountWaitsSQL = `SELECT a.id, '', CASE a.status WHEN 'disabled' THEN 'account_disabled' ELSE 'account_paused' END,
		CASE a.status WHEN 'disabled' THEN 'account disabled (' || coalesce(nullif(a.pause_reason, ''), 'no reason given')
			|| '); run ` + "`outreach resume account '" + ` || a.name || '` + "`'" + `
		ELSE 'account paused (' || coalesce(nullif(a.pause_reason, ''), 'no reason given') || ')' END,
		a.paused_until, outreach_local_time(a.paused_until, a.timezone)
	FROM accounts a WHERE a.id = ANY($1) AND (a.status = 'disabled' OR (a.status = 'paused' AND a.paused_until > now()))
	UNION ALL
	SELECT w.account_id, w.action, w.kind, w.reason, w.until, outreach_local_time(w.until, a.timezone)
	FROM account_waits w JOIN accounts a ON a.id = w.account_id
	WHERE w.account_id = ANY($1) AND a.status = 'active' AND (w.until IS NULL OR w.until > now())
	UNION ALL
	SELECT a.id, '', 'due', 'targets are due since over a minute and none is queued: is a scheduler running?', NULL, NULL
	FROM accounts a
	WHERE a.id = ANY($1) AND a.status = 'active'
		AND NOT EXISTS (SELECT 1 FROM account_waits w WHERE w.account_id = a.id AND (w.until IS NULL OR w.until > now()))
		AND NOT EXISTS (SELECT 1 FROM targets t WHERE t.account_id = a.id AND t.status IN ('queued', 'sending'))
		AND EXISTS (SELECT 1 FROM campaigns c JOIN targets t ON t.campaign_id = c.id
			WHERE c.account_id = a.id AND c.status = 'active' AND t.status = 'pending'
			AND t.normalized_identifier IS NOT NULL AND t.next_attempt_at < now() - interval '1 minute')
	ORDER BY 1, 2`

func accountWaits(ctx context.Context, db *pgxpool.Pool, byID map[int64]*Account) error {
	ids := make([]int64, 0, len(byID))
	for id, a := range byID {
		ids = append(ids, id)
		a.Waits = []AccountWait{}
	}
	rows, err := db.Query(ctx, accountWaitsSQL, ids)
	if err != nil {
		return fmt.Errorf("report account waits: %w", err)
	}
	var id int64
	var w AccountWait
	var local *string
	_, err = pgx.ForEachRow(rows, []any{&id, &w.Action, &w.Wait, &w.Reason, &w.Until, &local}, func() error {
		ww := w
		if w.Until != nil {
			u := *w.Until
			ww.Until = &u
		}
		if local != nil {
			ww.UntilLocal = *local
		}
		byID[id].Waits = append(byID[id].Waits, ww)
		return nil
	})
	if err != nil {
		return fmt.Errorf("report account waits: %w", err)
	}
	return nil
}

// Campaigns returns every campaign (or those named name, if not empty)
// with its progress, by id.
func Campaigns(ctx context.Context, db *pgxpool.Pool, name string) ([]*Campaign, error) {
	rows, err := db.Query(ctx, `SELECT c.id, c.name, a.name, c.status FROM campaigns c JOIN accounts a ON a.id = c.account_id
		WHERE $1 = '' OR c.name = $1 ORDER BY c.id`, name)
	if err != nil {
		return nil, fmt.Errorf("report campaigns: %w", err)
	}
	var out []*Campaign
	byID := map[int64]*Campaign{}
	var c Campaign
	_, err = pgx.ForEachRow(rows, []any{&c.ID, &c.Name, &c.Account, &c.Status}, func() error {
		cc := c
		cc.Counts = map[string]int{}
		for _, s := range Statuses {
			cc.Counts[s] = 0
		}
		out = append(out, &cc)
		byID[cc.ID] = &cc
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("report campaigns: %w", err)
	}
	if len(out) == 0 {
		return out, nil
	}
	ids := make([]int64, len(out))
	for i, c := range out {
		ids[i] = c.ID
	}
	rows, err = db.Query(ctx, `SELECT campaign_id, status, count(*) FROM targets WHERE campaign_id = ANY($1) GROUP BY 1, 2`, ids)
	if err != nil {
		return nil, fmt.Errorf("report campaigns: %w", err)
	}
	var id int64
	var status string
	var n int
	_, err = pgx.ForEachRow(rows, []any{&id, &status, &n}, func() error {
		byID[id].Counts[status] = n
		byID[id].Total += n
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("report campaigns: %w", err)
	}
	rows, err = db.Query(ctx, `SELECT campaign_id, status, reason, n FROM (
			SELECT campaign_id, status, reason, n, row_number() OVER (PARTITION BY campaign_id, status ORDER BY n DESC, reason) AS rank
			FROM (SELECT campaign_id, status, coalesce(nullif(error_type, ''), nullif(last_error, ''), 'unknown') AS reason, count(*) AS n
				FROM targets WHERE campaign_id = ANY($1) AND status IN ('skipped', 'failed') GROUP BY 1, 2, 3) g) r
		WHERE rank <= 5 ORDER BY campaign_id, status DESC, n DESC, reason`, ids)
	if err != nil {
		return nil, fmt.Errorf("report campaigns: %w", err)
	}
	var r Reason
	_, err = pgx.ForEachRow(rows, []any{&id, &r.Status, &r.Reason, &r.Count}, func() error {
		byID[id].Reasons = append(byID[id].Reasons, r)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("report campaigns: %w", err)
	}
	for _, c := range out {
		c.Waiting = []WaitGroup{}
	}
	rows, err = db.Query(ctx, `SELECT g.campaign_id, g.wait, g.reason, g.n, g.until, outreach_local_time(g.until, a.timezone)
		FROM (SELECT campaign_id, account_id, wait, reason, count(*) AS n, min(until) AS until
			FROM target_waits WHERE campaign_id = ANY($1) GROUP BY 1, 2, 3, 4) g
		JOIN accounts a ON a.id = g.account_id
		ORDER BY g.campaign_id, g.n DESC, g.wait, g.reason`, ids)
	if err != nil {
		return nil, fmt.Errorf("report campaign waits: %w", err)
	}
	var g WaitGroup
	var local *string
	_, err = pgx.ForEachRow(rows, []any{&id, &g.Wait, &g.Reason, &g.Count, &g.Until, &local}, func() error {
		gg := g
		if g.Until != nil {
			u := *g.Until
			gg.Until = &u
		}
		if local != nil {
			gg.UntilLocal = *local
		}
		byID[id].Waiting = append(byID[id].Waiting, gg)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("report campaign waits: %w", err)
	}
	return out, nil
}

// addPaces fills each account's pacing summary and paces from the store's
// view of the account (store.Account.Pace).
func addPaces(ctx context.Context, db *pgxpool.Pool, byID map[int64]*Account) error {
	accounts, err := store.New(db).Accounts(ctx)
	if err != nil {
		return fmt.Errorf("report accounts: %w", err)
	}
	for _, a := range accounts {
		r := byID[a.ID]
		if r == nil {
			continue
		}
		r.PacingSummary = a.PacingSummary()
		r.Paces = []Pace{}
		for _, action := range a.PacedActions() {
			p := a.Pace(action)
			r.Paces = append(r.Paces, Pace{Action: string(action), LimitSource: p.LimitSource, GapSource: p.Gap.Source,
				MinGapSeconds: p.Gap.Min.Seconds(), GapJitterSeconds: p.Gap.Jitter.Seconds(), GapText: FormatGap(p.Gap.Min, p.Gap.Jitter)})
		}
	}
	return nil
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
