package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// The operator console's read queries. Each is one or two round trips and
// is served by the schema's indexes (TestExplainAtScale/console checks them on a
// million targets).

// WindowUse is one of an account's limits and how much of it the ledger
// uses now: the rows whose window_at is inside the rolling window,
// requests in flight included, as the workers count them.
type WindowUse struct {
	Limit
	Used int
	// FreesAt is when a full window has room for one more call again: the
	// answer to its Max-th newest call leaves it then. Zero when the window
	// has room now, or when no time is known (Held).
	FreesAt time.Time
	// Held: the window is full and no time is known: calls still out (the
	// provider has not answered them) fill it, or Max is 0.
	Held bool
}

// Left is Max - Used, never below zero.
func (w WindowUse) Left() int { return max(w.Max-w.Used, 0) }

// ConsoleAccount is an account as the console shows it: its settings, its
// windows' use, and its recent activity.
type ConsoleAccount struct {
	Account
	Windows []WindowUse
	// Invites sent and refusals (outcome refused) in the last day and week,
	// from the ledger.
	SentDay, SentWeek, RefusedDay, RefusedWeek int
	// InFlight counts targets queued in Redis or held by a worker.
	InFlight int
	// Campaigns counts the campaigns the account sends for (its own and
	// the pools it is in), ActiveCampaigns the active ones, Pools those
	// with other senders too.
	Campaigns, ActiveCampaigns, Pools int
	// Invitations accepted in the last day and week (targets.accepted_at).
	AcceptedDay, AcceptedWeek int
	// Warmup is the account's warm-up ramp now; nil without one.
	Warmup *WarmupNow
}

// WarmupNow is where an account's warm-up ramp stands (the view
// account_warmup_state): on day Day, Today invitations a day of Full.
type WarmupNow struct {
	Day, Today, Full int
	Done             bool
	// HeldUntil is when a hold after a provider's warning ends (zero: not
	// held).
	HeldUntil time.Time
}

// consoleAccountSQL reads an account with its windows' use: per limit, in
// the order of Account.Limits, the ledger's rows inside the window
// (requests in flight included, as the workers count them) and, for a full
// window only, when the Max-th newest leaves it (one more index probe).
const consoleAccountSQL = `SELECT ` + accountColumns + `,
	coalesce(win.used, '{}'), coalesce(win.frees, '{}'),
	act.sent_day, act.sent_week, act.refused_day, act.refused_week,
	(SELECT count(*) FROM targets t WHERE t.account_id = a.id AND t.status IN ('queued', 'sending')),
	camps.n, camps.active, camps.pools,
	(SELECT count(*) FILTER (WHERE t.accepted_at > $1::timestamptz - interval '1 day') FROM targets t
		WHERE t.account_id = a.id AND t.accepted_at > $1::timestamptz - interval '7 days'),
	(SELECT count(*) FROM targets t WHERE t.account_id = a.id AND t.accepted_at > $1::timestamptz - interval '7 days'),
	w.day, w.today, w.full_count, w.done, w.held_until
	FROM accounts a CROSS JOIN LATERAL (
		SELECT count(*) AS n, count(*) FILTER (WHERE c.status = 'active') AS active,
			count(*) FILTER (WHERE EXISTS (SELECT 1 FROM campaign_senders o WHERE o.campaign_id = c.id AND o.account_id <> a.id)) AS pools
		FROM campaign_senders cs JOIN campaigns c ON c.id = cs.campaign_id WHERE cs.account_id = a.id) camps
	LEFT JOIN account_warmup_state w ON w.account_id = a.id
	LEFT JOIN LATERAL (
		SELECT array_agg(u.n ORDER BY l.action, l.per) AS used,
			array_agg(CASE WHEN l.max_count <= 0 THEN 'infinity'::timestamptz
				WHEN u.n >= l.max_count THEN (SELECT s.window_at + l.per FROM sends s
					WHERE s.account_id = a.id AND s.action = l.action AND s.window_at > $1::timestamptz - l.per
					ORDER BY s.window_at DESC OFFSET l.max_count - 1 LIMIT 1) END ORDER BY l.action, l.per) AS frees
		FROM account_limits_effective l CROSS JOIN LATERAL (SELECT count(*) AS n FROM sends s
			WHERE s.account_id = a.id AND s.action = l.action AND s.window_at > $1::timestamptz - l.per) u
		WHERE l.account_id = a.id) win ON true
	CROSS JOIN LATERAL (
		SELECT count(*) FILTER (WHERE s.outcome = 'sent' AND s.window_at > $1::timestamptz - interval '1 day') AS sent_day,
			count(*) FILTER (WHERE s.outcome = 'sent') AS sent_week,
			count(*) FILTER (WHERE s.outcome = 'refused' AND s.window_at > $1::timestamptz - interval '1 day') AS refused_day,
			count(*) FILTER (WHERE s.outcome = 'refused') AS refused_week
		FROM sends s WHERE s.account_id = a.id AND s.action = 'invite'
		AND s.window_at > $1::timestamptz - interval '7 days' AND s.window_at < 'infinity') act`

func scanConsoleAccount(row pgx.Row) (*ConsoleAccount, error) {
	var ca ConsoleAccount
	var used []int64
	var frees []pgtype.Timestamptz
	var day, today, full *int
	var done *bool
	var held *time.Time
	a, err := scanAccount(row, &used, &frees, &ca.SentDay, &ca.SentWeek, &ca.RefusedDay, &ca.RefusedWeek,
		&ca.InFlight, &ca.Campaigns, &ca.ActiveCampaigns, &ca.Pools, &ca.AcceptedDay, &ca.AcceptedWeek,
		&day, &today, &full, &done, &held)
	if err != nil {
		return nil, err
	}
	ca.Account = *a
	if day != nil && today != nil && full != nil && done != nil {
		ca.Warmup = &WarmupNow{Day: *day, Today: *today, Full: *full, Done: *done, HeldUntil: finite(held)}
	}
	for i, l := range a.Limits {
		w := WindowUse{Limit: l}
		if i < len(used) {
			w.Used = int(used[i])
		}
		if i < len(frees) && frees[i].Valid {
			if frees[i].InfinityModifier == pgtype.Finite {
				w.FreesAt = frees[i].Time
			} else {
				w.Held = true
			}
		}
		ca.Windows = append(ca.Windows, w)
	}
	return &ca, nil
}

// AccountFilter selects a page of the console's account list: by status
// and a part of the name (empty: any), after the name After (keyset paging,
// in name order), at most Limit (default 100).
type AccountFilter struct {
	Status AccountStatus
	Search string
	After  string
	Limit  int
}

// ConsoleAccounts returns one page of accounts with their windows and
// activity at now, by name: one row more than the limit when there is a
// next page. Each row costs a few index scans of its own ledger, so a page
// costs the same with ten accounts or a thousand.
func (s *Store) ConsoleAccounts(ctx context.Context, now time.Time, f AccountFilter) ([]*ConsoleAccount, error) {
	const op = "console accounts"
	if f.Limit <= 0 {
		f.Limit = 100
	}
	rows, err := s.pool.Query(ctx, consoleAccountSQL+` WHERE a.name > $2 AND ($3 = '' OR a.status = $3)
		AND ($4 = '' OR strpos(lower(a.name), lower($4)) > 0) ORDER BY a.name LIMIT $5`,
		now, f.After, string(f.Status), f.Search, f.Limit+1)
	if err != nil {
		return nil, translate(op, err)
	}
	defer rows.Close()
	var out []*ConsoleAccount
	for rows.Next() {
		a, err := scanConsoleAccount(rows)
		if err != nil {
			return nil, translate(op, err)
		}
		out = append(out, a)
	}
	return out, translate(op, rows.Err())
}

// AccountStatusCounts counts the accounts of each status.
func (s *Store) AccountStatusCounts(ctx context.Context) (map[AccountStatus]int, error) {
	rows, err := s.pool.Query(ctx, `SELECT status, count(*) FROM accounts GROUP BY 1`)
	if err != nil {
		return nil, translate("account status counts", err)
	}
	out := map[AccountStatus]int{}
	var st AccountStatus
	var n int
	_, err = pgx.ForEachRow(rows, []any{&st, &n}, func() error {
		out[st] = n
		return nil
	})
	return out, translate("account status counts", err)
}

// ConsoleAccount returns one account with its windows and activity at
// now; ErrNotFound if there is none.
func (s *Store) ConsoleAccount(ctx context.Context, id int64, now time.Time) (*ConsoleAccount, error) {
	a, err := scanConsoleAccount(s.pool.QueryRow(ctx, consoleAccountSQL+` WHERE a.id = $2`, now, id))
	if err != nil {
		return nil, translate(fmt.Sprintf("console account %d", id), err)
	}
	return a, nil
}

// LedgerRow is one row of the send ledger: one call to a provider.
type LedgerRow struct {
	ID         int64
	AccountID  int64
	TargetID   int64 // 0 if the target was deleted
	Action     string
	ReservedAt time.Time
	// At is when the answer came (window_at); zero while in flight.
	At           time.Time
	Outcome      string
	ErrorType    string
	HTTPStatus   int
	InvitationID string
	Detail       string
}

const ledgerColumns = `s.id, s.account_id, coalesce(s.target_id, 0), s.action, s.reserved_at,
	CASE WHEN s.window_at = 'infinity' THEN NULL ELSE s.window_at END, s.outcome, coalesce(s.error_type, ''),
	coalesce(s.http_status, 0), coalesce(s.invitation_id, ''), coalesce(s.detail, '')`

func scanLedger(rows pgx.Rows) ([]LedgerRow, error) {
	defer rows.Close()
	var out []LedgerRow
	for rows.Next() {
		var l LedgerRow
		var at *time.Time
		if err := rows.Scan(&l.ID, &l.AccountID, &l.TargetID, &l.Action, &l.ReservedAt, &at, &l.Outcome,
			&l.ErrorType, &l.HTTPStatus, &l.InvitationID, &l.Detail); err != nil {
			return nil, err
		}
		l.At = finite(at)
		out = append(out, l)
	}
	return out, rows.Err()
}

// RecentLedger returns the account's latest n ledger rows, newest first
// (requests in flight first of all). Each action is read newest first from
// the ledger's window index and the two are merged.
func (s *Store) RecentLedger(ctx context.Context, accountID int64, n int) ([]LedgerRow, error) {
	const op = "recent ledger"
	rows, err := s.pool.Query(ctx, `SELECT * FROM (
			(SELECT `+ledgerColumns+`, extract(epoch from s.window_at)::float8 AS w FROM sends s WHERE s.account_id = $1 AND s.action = 'invite' ORDER BY s.window_at DESC LIMIT $2)
			UNION ALL
			(SELECT `+ledgerColumns+`, extract(epoch from s.window_at)::float8 AS w FROM sends s WHERE s.account_id = $1 AND s.action = 'lookup' ORDER BY s.window_at DESC LIMIT $2)
		) r ORDER BY w DESC, id DESC LIMIT $2`, accountID, n)
	if err != nil {
		return nil, translate(op, err)
	}
	defer rows.Close()
	var out []LedgerRow
	for rows.Next() {
		var l LedgerRow
		var at *time.Time
		var w float64
		if err := rows.Scan(&l.ID, &l.AccountID, &l.TargetID, &l.Action, &l.ReservedAt, &at, &l.Outcome,
			&l.ErrorType, &l.HTTPStatus, &l.InvitationID, &l.Detail, &w); err != nil {
			return nil, translate(op, err)
		}
		l.At = finite(at)
		out = append(out, l)
	}
	return out, translate(op, rows.Err())
}

// TargetLedger returns every ledger row of a target, oldest first.
func (s *Store) TargetLedger(ctx context.Context, targetID int64) ([]LedgerRow, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+ledgerColumns+` FROM sends s WHERE s.target_id = $1 ORDER BY s.id`, targetID)
	if err != nil {
		return nil, translate("target ledger", err)
	}
	out, err := scanLedger(rows)
	return out, translate("target ledger", err)
}

// HourCount is the number of an account's ledger rows of one action whose
// answer came within the hour starting at Hour, by outcome.
type HourCount struct {
	Hour    time.Time
	Sent    int // outcome sent (or resolved, for lookups)
	Other   int // refused, error, unknown, cached
	InHours bool
}

// SendsPerHour returns, for each hour in [since, now) that had any, the
// account's answered calls of action, by hour.
func (s *Store) SendsPerHour(ctx context.Context, accountID int64, action Action, since, now time.Time) ([]HourCount, error) {
	const op = "sends per hour"
	rows, err := s.pool.Query(ctx, `SELECT date_trunc('hour', s.window_at),
			count(*) FILTER (WHERE s.outcome IN ('sent', 'resolved')), count(*) FILTER (WHERE s.outcome NOT IN ('sent', 'resolved'))
		FROM sends s WHERE s.account_id = $1 AND s.action = $2 AND s.window_at >= $3 AND s.window_at < $4
		GROUP BY 1 ORDER BY 1`, accountID, action, since, now)
	if err != nil {
		return nil, translate(op, err)
	}
	defer rows.Close()
	var out []HourCount
	for rows.Next() {
		var h HourCount
		if err := rows.Scan(&h.Hour, &h.Sent, &h.Other); err != nil {
			return nil, translate(op, err)
		}
		out = append(out, h)
	}
	return out, translate(op, rows.Err())
}

// ConsoleCampaign is a campaign with its progress.
type ConsoleCampaign struct {
	ID              int64
	Name            string
	AccountID       int64
	AccountName     string
	Status          CampaignStatus
	MessageTemplate string
	CreatedAt       time.Time
	// Counts has every target status, zero included; Total is their sum.
	Counts map[string]int
	Total  int
	// Reasons are the most frequent causes of skips and failures.
	Reasons []ReasonCount
	// SentDay counts the campaign's invitations sent in the last day,
	// for the pace.
	SentDay int
	// Accepted counts its invitations accepted (targets.accepted_at).
	Accepted int
	// Senders counts the accounts it sends from (campaign_senders).
	Senders int
}

// AcceptPct is the share of the campaign's sent invitations that were
// accepted, in percent; 0 before any was sent.
func (c *ConsoleCampaign) AcceptPct() int {
	if sent := c.Counts[string(TargetSent)]; sent > 0 {
		return 100 * c.Accepted / sent
	}
	return 0
}

// ReasonCount is a cause of skips or failures and how many targets it hit.
type ReasonCount struct {
	Status string
	Reason string
	Count  int
}

// Waiting counts the targets not yet final.
func (c *ConsoleCampaign) Waiting() int {
	return c.Counts[string(TargetPending)] + c.Counts[string(TargetQueued)] + c.Counts[string(TargetSending)]
}

// ConsoleCampaigns returns the campaigns (every one if id is 0, else that
// one) with their counts and top reasons at now, by id.
func (s *Store) ConsoleCampaigns(ctx context.Context, id int64, now time.Time) ([]*ConsoleCampaign, error) {
	return s.consoleCampaigns(ctx, "$1 = 0 OR c.id = $1", id, now)
}

// AccountCampaigns returns the account's campaigns with their counts and
// top reasons at now, by id.
func (s *Store) AccountCampaigns(ctx context.Context, accountID int64, now time.Time) ([]*ConsoleCampaign, error) {
	return s.consoleCampaigns(ctx, accountCampaignsWhere, accountID, now)
}

// accountCampaignsWhere selects the campaigns an account sends for: its
// own and the pools it is a sender of.
const accountCampaignsWhere = "EXISTS (SELECT 1 FROM campaign_senders cs WHERE cs.campaign_id = c.id AND cs.account_id = $1)"

func (s *Store) consoleCampaigns(ctx context.Context, where string, id int64, now time.Time) ([]*ConsoleCampaign, error) {
	const op = "console campaigns"
	rows, err := s.pool.Query(ctx, `SELECT c.id, c.name, c.account_id, a.name, c.status, c.message_template, c.created_at,
			(SELECT count(*) FROM campaign_senders cs WHERE cs.campaign_id = c.id)
		FROM campaigns c JOIN accounts a ON a.id = c.account_id WHERE `+where+` ORDER BY c.id`, id)
	if err != nil {
		return nil, translate(op, err)
	}
	var out []*ConsoleCampaign
	byID := map[int64]*ConsoleCampaign{}
	for rows.Next() {
		c := &ConsoleCampaign{Counts: map[string]int{}}
		if err := rows.Scan(&c.ID, &c.Name, &c.AccountID, &c.AccountName, &c.Status, &c.MessageTemplate, &c.CreatedAt,
			&c.Senders); err != nil {
			rows.Close()
			return nil, translate(op, err)
		}
		for _, st := range TargetStatuses() {
			c.Counts[string(st)] = 0
		}
		out = append(out, c)
		byID[c.ID] = c
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, translate(op, err)
	}
	if len(out) == 0 {
		if id != 0 && where != accountCampaignsWhere {
			return nil, fmt.Errorf("%s: campaign %d: %w", op, id, ErrNotFound)
		}
		return out, nil
	}
	ids := make([]int64, len(out))
	for i, c := range out {
		ids[i] = c.ID
	}
	var cid int64
	var n int
	if err := s.campaignCounts(ctx, ids, byID); err != nil {
		return nil, translate(op, err)
	}
	rows, err = s.pool.Query(ctx, `SELECT t.campaign_id, count(*) FROM sends s JOIN targets t ON t.id = s.target_id
		WHERE s.account_id IN (SELECT account_id FROM campaign_senders WHERE campaign_id = ANY($1)) AND s.action = 'invite'
		AND s.outcome = 'sent' AND s.window_at > $2::timestamptz - interval '1 day' AND s.window_at < 'infinity'
		AND t.campaign_id = ANY($1)
		GROUP BY 1`, ids, now)
	if err != nil {
		return nil, translate(op, err)
	}
	if _, err := pgx.ForEachRow(rows, []any{&cid, &n}, func() error {
		byID[cid].SentDay = n
		return nil
	}); err != nil {
		return nil, translate(op, err)
	}
	return out, nil
}

// TargetFilter selects a page of a campaign's targets: by status and
// error type (empty: any), after the identifier After (keyset paging, in
// identifier order), at most Limit (default 50).
type TargetFilter struct {
	CampaignID int64
	Status     string
	ErrorType  string
	After      string
	Limit      int
}

// TargetRow is a target as the console lists it.
type TargetRow struct {
	ID            int64
	CampaignID    int64
	AccountID     int64
	Identifier    string
	ProviderID    string
	Normalized    bool
	Status        string
	Attempts      int
	Deferrals     int
	NextAttemptAt time.Time
	LastError     string
	ErrorType     string
	InvitationID  string
	Message       string
	UpdatedAt     time.Time
	FinishedAt    time.Time
}

const targetRowColumns = `t.id, t.campaign_id, t.account_id, t.identifier, coalesce(t.provider_id, ''),
	t.normalized_identifier IS NOT NULL, t.status, t.attempts, t.deferrals, t.next_attempt_at,
	coalesce(t.last_error, ''), coalesce(t.error_type, ''), coalesce(t.invitation_id, ''), coalesce(t.message, ''),
	t.updated_at, t.finished_at`

func scanTargetRows(rows pgx.Rows) ([]TargetRow, error) {
	defer rows.Close()
	var out []TargetRow
	for rows.Next() {
		var t TargetRow
		var fin *time.Time
		if err := rows.Scan(&t.ID, &t.CampaignID, &t.AccountID, &t.Identifier, &t.ProviderID, &t.Normalized,
			&t.Status, &t.Attempts, &t.Deferrals, &t.NextAttemptAt, &t.LastError, &t.ErrorType, &t.InvitationID,
			&t.Message, &t.UpdatedAt, &fin); err != nil {
			return nil, err
		}
		t.FinishedAt = finite(fin)
		out = append(out, t)
	}
	return out, rows.Err()
}

// CampaignTargets returns one page of a campaign's targets in identifier
// order, read from the (campaign_id, identifier) unique index, so a page
// costs the same at any depth of any campaign. It returns one row more
// than the limit when there is a next page.
func (s *Store) CampaignTargets(ctx context.Context, f TargetFilter) ([]TargetRow, error) {
	if f.Limit <= 0 {
		f.Limit = 50
	}
	rows, err := s.pool.Query(ctx, `SELECT `+targetRowColumns+` FROM targets t
		WHERE t.campaign_id = $1 AND t.identifier > $2
		AND ($3 = '' OR t.status = $3) AND ($4 = '' OR t.error_type = $4)
		ORDER BY t.campaign_id, t.identifier LIMIT $5`, f.CampaignID, f.After, f.Status, f.ErrorType, f.Limit+1)
	if err != nil {
		return nil, translate("campaign targets", err)
	}
	out, err := scanTargetRows(rows)
	return out, translate("campaign targets", err)
}

// ErrorTypes returns the error types the campaign's skipped and failed
// targets have, most frequent first, for the console's filter; from
// campaign_counts, so its cost does not grow with the campaign.
func (s *Store) ErrorTypes(ctx context.Context, campaignID int64) ([]ReasonCount, error) {
	rows, err := s.pool.Query(ctx, `SELECT status, reason, sum(n)::bigint FROM campaign_counts
		WHERE campaign_id = $1 AND status IN ('skipped', 'failed') AND reason NOT IN ('', 'unknown')
		GROUP BY 1, 2 HAVING sum(n) > 0 ORDER BY 3 DESC, 2 LIMIT 30`, campaignID)
	if err != nil {
		return nil, translate("error types", err)
	}
	defer rows.Close()
	var out []ReasonCount
	for rows.Next() {
		var r ReasonCount
		if err := rows.Scan(&r.Status, &r.Reason, &r.Count); err != nil {
			return nil, translate("error types", err)
		}
		out = append(out, r)
	}
	return out, translate("error types", rows.Err())
}

// WaitingTargets returns up to n of the account's targets that are not
// final: those in flight, then the pending ones of each campaign in the
// order the scheduler takes them (from the targets_due index).
func (s *Store) WaitingTargets(ctx context.Context, accountID int64, n int) ([]TargetRow, error) {
	rows, err := s.pool.Query(ctx, `(SELECT `+targetRowColumns+` FROM targets t
			WHERE t.account_id = $1 AND t.status IN ('queued', 'sending') LIMIT $2)
		UNION ALL
		(SELECT w.* FROM campaigns c CROSS JOIN LATERAL (
			SELECT `+targetRowColumns+` FROM targets t
			WHERE t.campaign_id = c.id AND t.status = 'pending' AND t.normalized_identifier IS NOT NULL
			ORDER BY t.campaign_id, (t.provider_id IS NULL), t.next_attempt_at LIMIT $2) w
		WHERE c.account_id = $1 LIMIT $2)
		LIMIT $2`, accountID, n)
	if err != nil {
		return nil, translate("waiting targets", err)
	}
	out, err := scanTargetRows(rows)
	return out, translate("waiting targets", err)
}

// ConsoleTarget is one target with its campaign, account and cached
// profile.
type ConsoleTarget struct {
	TargetRow
	CampaignName   string
	CampaignStatus string
	AccountName    string
	Person         *Person // nil if not looked up
}

// ConsoleTargetByID returns a target; ErrNotFound if there is none.
func (s *Store) ConsoleTargetByID(ctx context.Context, id int64) (*ConsoleTarget, error) {
	const op = "console target"
	rows, err := s.pool.Query(ctx, `SELECT `+targetRowColumns+` FROM targets t WHERE t.id = $1`, id)
	if err != nil {
		return nil, translate(op, err)
	}
	list, err := scanTargetRows(rows)
	if err != nil {
		return nil, translate(op, err)
	}
	if len(list) == 0 {
		return nil, fmt.Errorf("%s %d: %w", op, id, ErrNotFound)
	}
	ct := &ConsoleTarget{TargetRow: list[0]}
	var p Person
	var lookedUp *int64
	var dist, inv *string
	var found bool
	err = s.pool.QueryRow(ctx, `SELECT c.name, c.status, a.name, p.provider IS NOT NULL,
			coalesce(p.provider, ''), coalesce(p.normalized_identifier, ''), coalesce(p.provider_id, ''),
			coalesce(p.first_name, ''), coalesce(p.last_name, ''), coalesce(p.headline, ''), p.looked_up_by,
			p.network_distance, coalesce(p.is_relationship, false), p.invitation_status
		FROM targets t JOIN campaigns c ON c.id = t.campaign_id JOIN accounts a ON a.id = t.account_id
		LEFT JOIN people p ON p.provider = a.provider AND p.normalized_identifier = t.normalized_identifier
		WHERE t.id = $1`, id).Scan(&ct.CampaignName, &ct.CampaignStatus, &ct.AccountName, &found,
		&p.Provider, &p.NormalizedIdentifier, &p.ProviderID, &p.FirstName, &p.LastName, &p.Headline, &lookedUp,
		&dist, &p.IsRelationship, &inv)
	if err != nil {
		return nil, translate(op, err)
	}
	if found {
		if lookedUp != nil {
			p.LookedUpBy = *lookedUp
		}
		if dist != nil {
			p.NetworkDistance = *dist
		}
		if inv != nil {
			p.InvitationStatus = *inv
		}
		ct.Person = &p
	}
	return ct, nil
}

// Wait is why a target that is not final waits, and until when (zero when
// it waits for something without a known time).
type Wait struct {
	Reason string
	Until  time.Time
}

// Waits reads why each of the given targets waits, and until when, from
// the target_waits view (docs/waiting.md): the one place that decides it.
// Final targets are absent from the map.
func (s *Store) Waits(ctx context.Context, ids []int64) (map[int64]Wait, error) {
	const op = "target waits"
	out := make(map[int64]Wait, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT target_id, reason, until FROM target_waits WHERE target_id = ANY($1)`, ids)
	if err != nil {
		return nil, translate(op, err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var reason *string
		var until *time.Time
		if err := rows.Scan(&id, &reason, &until); err != nil {
			return nil, translate(op, err)
		}
		w := Wait{Until: finite(until)}
		if reason != nil {
			w.Reason = *reason
		}
		out[id] = w
	}
	return out, translate(op, rows.Err())
}

// TargetLabel names a target for the task view of the asynq dashboard:
// "account <name> · campaign <name>". ErrNotFound if there is no such
// target.
func (s *Store) TargetLabel(ctx context.Context, targetID int64) (string, error) {
	var account, campaign string
	err := s.pool.QueryRow(ctx, `SELECT a.name, c.name FROM targets t JOIN campaigns c ON c.id = t.campaign_id
		JOIN accounts a ON a.id = t.account_id WHERE t.id = $1`, targetID).Scan(&account, &campaign)
	if err != nil {
		return "", translate(fmt.Sprintf("target label %d", targetID), err)
	}
	return "account " + account + " · campaign " + campaign, nil
}
