package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// AccountProgress is an account's state for operators: the use of each of
// its limits now, its invitations sent and why it waits. The status
// command, the demo summary and the budget metrics read it (package report).
type AccountProgress struct {
	ID          int64
	Name        string
	Provider    string
	Status      string
	PauseReason string
	PausedUntil *time.Time
	Pacing      string
	// Account is the store's view of the account, for its paces.
	Account *Account
	// Limits are the limits that apply (account_limits_effective), the
	// account's own or its provider's defaults, by action and window.
	Limits []LimitUse
	// Sent counts the account's invitations sent, ever.
	Sent int
	// Waits says why the account's due targets get no send slot now;
	// empty when it can send.
	Waits []AccountWaitNow
}

// LimitUse is one of an account's limits and how much of it is used now.
type LimitUse struct {
	Action string
	Max    int
	Per    time.Duration
	// Used counts the ledger's rows inside the rolling window (requests
	// in flight included), as the workers count them.
	Used int
	// Source is "custom" (the account's own limit) or "default".
	Source string
}

// AccountWaitNow is why an account sends nothing now, for one action or
// for all ("" when the whole account is disabled or paused).
type AccountWaitNow struct {
	Action string
	// Wait is a keyword of target_waits (docs/waiting.md), or due when
	// targets are due and nothing plans them.
	Wait       string
	Reason     string
	Until      *time.Time
	UntilLocal string
}

// CampaignProgress is a campaign's progress for operators.
type CampaignProgress struct {
	ID      int64
	Name    string
	Account string
	Status  string
	Total   int
	// Counts holds the targets by status (statuses with none are absent).
	Counts map[string]int
	// Reasons are the most frequent causes of skips and failures, at most
	// five per status, by campaign, status descending, count descending.
	Reasons []ReasonCount
	// Waiting groups the targets that are not terminal by why they wait
	// (the target_waits view), most first.
	Waiting []WaitCount
}

// WaitCount is a number of a campaign's targets that wait for the same
// reason, and the earliest time one of them can go on.
type WaitCount struct {
	Wait       string
	Reason     string
	Count      int
	Until      *time.Time
	UntilLocal string
}

const accountProgressSQL = `SELECT a.id, a.name, a.provider, a.status, coalesce(a.pause_reason, ''), a.paused_until, a.pacing,
	coalesce(l.action, ''), coalesce(l.max_count, 0), coalesce(extract(epoch from l.per)::float8, 0),
	coalesce((SELECT count(*) FROM sends s WHERE s.account_id = a.id AND s.action = l.action
		AND s.window_at > now() - l.per), 0), coalesce(l.source, '')
	FROM accounts a LEFT JOIN account_limits_effective l ON l.account_id = a.id
	WHERE $1 = '' OR a.name = $1
	ORDER BY a.id, l.action, l.per`

// accountsSentSQL counts the invitations the accounts $1 sent, ever, by
// their ledger's window index (one account's rows, for `outreach limits`,
// not the whole ledger's).
const accountsSentSQL = `SELECT account_id, count(*) FROM sends WHERE account_id = ANY($1) AND action = 'invite' AND outcome = 'sent'
	GROUP BY 1`

// accountWaitsNowSQL gives why each account sends nothing now: its own
// state, else the planner's account_waits that still hold.
const accountWaitsNowSQL = `SELECT a.id, '', CASE a.status WHEN 'disabled' THEN 'account_disabled' ELSE 'account_paused' END,
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

// AccountProgress returns every account (or the one named, if name is not
// empty) with its limits' use, sends and waits, by id.
func (s *Store) AccountProgress(ctx context.Context, name string) ([]*AccountProgress, error) {
	rows, err := s.pool.Query(ctx, accountProgressSQL, name)
	if err != nil {
		return nil, fmt.Errorf("report accounts: %w", err)
	}
	var out []*AccountProgress
	byID := map[int64]*AccountProgress{}
	for rows.Next() {
		var a AccountProgress
		var l LimitUse
		var per float64
		if err := rows.Scan(&a.ID, &a.Name, &a.Provider, &a.Status, &a.PauseReason, &a.PausedUntil, &a.Pacing,
			&l.Action, &l.Max, &per, &l.Used, &l.Source); err != nil {
			rows.Close()
			return nil, fmt.Errorf("report accounts: %w", err)
		}
		cur := byID[a.ID]
		if cur == nil {
			cur = &a
			cur.Limits = []LimitUse{}
			byID[a.ID] = cur
			out = append(out, cur)
		}
		if l.Action != "" {
			// Clamped: a row from before migration 00002 can say
			// '1000 years', more than a Duration holds.
			l.Per = seconds(per)
			cur.Limits = append(cur.Limits, l)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("report accounts: %w", err)
	}
	if len(out) == 0 {
		return out, nil
	}
	accounts, err := s.Accounts(ctx)
	if err != nil {
		return nil, fmt.Errorf("report accounts: %w", err)
	}
	for _, a := range accounts {
		if p := byID[a.ID]; p != nil {
			p.Account = a
		}
	}
	ids := make([]int64, 0, len(out))
	for _, a := range out {
		ids = append(ids, a.ID)
	}
	sent, err := s.pool.Query(ctx, accountsSentSQL, ids)
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
	if err := s.accountWaitsNow(ctx, byID); err != nil {
		return nil, err
	}
	return out, nil
}

func (s *Store) accountWaitsNow(ctx context.Context, byID map[int64]*AccountProgress) error {
	ids := make([]int64, 0, len(byID))
	for id, a := range byID {
		ids = append(ids, id)
		a.Waits = []AccountWaitNow{}
	}
	rows, err := s.pool.Query(ctx, accountWaitsNowSQL, ids)
	if err != nil {
		return fmt.Errorf("report account waits: %w", err)
	}
	var id int64
	var w AccountWaitNow
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

const campaignProgressSQL = `SELECT c.id, c.name, a.name, c.status FROM campaigns c JOIN accounts a ON a.id = c.account_id
		WHERE $1 = '' OR c.name = $1 ORDER BY c.id`

const campaignCountsSQL = `SELECT campaign_id, status, count(*) FROM targets WHERE campaign_id = ANY($1) GROUP BY 1, 2`

const campaignReasonsSQL = `SELECT campaign_id, status, reason, n FROM (
			SELECT campaign_id, status, reason, n, row_number() OVER (PARTITION BY campaign_id, status ORDER BY n DESC, reason) AS rank
			FROM (SELECT campaign_id, status, coalesce(nullif(error_type, ''), nullif(last_error, ''), 'unknown') AS reason, count(*) AS n
				FROM targets WHERE campaign_id = ANY($1) AND status IN ('skipped', 'failed') GROUP BY 1, 2, 3) g) r
		WHERE rank <= 5 ORDER BY campaign_id, status DESC, n DESC, reason`

const campaignWaitsSQL = `SELECT g.campaign_id, g.wait, g.reason, g.n, g.until, outreach_local_time(g.until, coalesce(a.timezone, 'UTC'))
		FROM (SELECT campaign_id, account_id, wait, reason, count(*) AS n, min(until) AS until
			FROM target_waits WHERE campaign_id = ANY($1) GROUP BY 1, 2, 3, 4) g
		LEFT JOIN accounts a ON a.id = g.account_id
		ORDER BY g.campaign_id, g.n DESC, g.wait, g.reason`

// CampaignProgress returns every campaign (or those named name, if not
// empty) with its targets by status, reasons and waits, by id.
func (s *Store) CampaignProgress(ctx context.Context, name string) ([]*CampaignProgress, error) {
	rows, err := s.pool.Query(ctx, campaignProgressSQL, name)
	if err != nil {
		return nil, fmt.Errorf("report campaigns: %w", err)
	}
	var out []*CampaignProgress
	byID := map[int64]*CampaignProgress{}
	var c CampaignProgress
	_, err = pgx.ForEachRow(rows, []any{&c.ID, &c.Name, &c.Account, &c.Status}, func() error {
		cc := c
		cc.Counts = map[string]int{}
		cc.Waiting = []WaitCount{}
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
	rows, err = s.pool.Query(ctx, campaignCountsSQL, ids)
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
	rows, err = s.pool.Query(ctx, campaignReasonsSQL, ids)
	if err != nil {
		return nil, fmt.Errorf("report campaigns: %w", err)
	}
	var r ReasonCount
	_, err = pgx.ForEachRow(rows, []any{&id, &r.Status, &r.Reason, &r.Count}, func() error {
		byID[id].Reasons = append(byID[id].Reasons, r)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("report campaigns: %w", err)
	}
	rows, err = s.pool.Query(ctx, campaignWaitsSQL, ids)
	if err != nil {
		return nil, fmt.Errorf("report campaign waits: %w", err)
	}
	var g WaitCount
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

// AccountsNotNamed counts the accounts whose name does not start with
// prefix (the demo refuses a database holding others).
func (s *Store) AccountsNotNamed(ctx context.Context, prefix string) (int, error) {
	var n int
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM accounts WHERE NOT starts_with(name, $1)`, prefix).Scan(&n)
	return n, translate("count accounts", err)
}

// CountTargets counts the targets in status, across campaigns.
func (s *Store) CountTargets(ctx context.Context, status TargetStatus) (int, error) {
	var n int
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM targets WHERE status = $1`, status).Scan(&n)
	return n, translate("count targets", err)
}
