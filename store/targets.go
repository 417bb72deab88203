package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// TargetStatus is the state of a target (targets.status).
type TargetStatus string

// Target statuses, in pipeline order (TargetStatuses lists them).
const (
	TargetPending TargetStatus = "pending" // waiting for next_attempt_at: a lookup, a slot, a deferral
	TargetQueued  TargetStatus = "queued"  // a task for it is in Redis
	TargetSending TargetStatus = "sending" // a worker holds it until locked_until
	TargetSent    TargetStatus = "sent"
	TargetSkipped TargetStatus = "skipped"
	TargetFailed  TargetStatus = "failed"
)

// TargetStatuses returns every target status in pipeline order.
func TargetStatuses() []TargetStatus {
	return []TargetStatus{TargetPending, TargetQueued, TargetSending, TargetSent, TargetSkipped, TargetFailed}
}

// Terminal reports whether the status is final: sent, skipped or failed.
func (s TargetStatus) Terminal() bool {
	return s == TargetSent || s == TargetSkipped || s == TargetFailed
}

// CampaignStatus is the state of a campaign (campaigns.status).
type CampaignStatus string

// Campaign statuses.
const (
	CampaignActive CampaignStatus = "active" // its targets are sent
	CampaignPaused CampaignStatus = "paused" // its targets wait until it is active again
	CampaignDone   CampaignStatus = "done"   // closed: its targets are no longer sent
)

// Target is one person to invite in one campaign, with what a worker needs
// to send to them.
type Target struct {
	ID                   int64
	CampaignID           int64
	AccountID            int64
	Identifier           string
	NormalizedIdentifier string
	ProviderID           string
	Vars                 map[string]any
	Status               TargetStatus
	Attempts             int // calls of the current action: lookups, then (reset by the resolving lookup) invitations
	Deferrals            int
	NextAttemptAt        time.Time
	LockedUntil          time.Time
	LastError            string
	ErrorType            string
	InvitationID         string
	Message              string
	// TaskGen is the generation of the target's task (see TaskID in
	// package worker); it grows when the target is recovered from a dead
	// worker.
	TaskGen int

	// From the campaign.
	CampaignStatus  CampaignStatus
	MessageTemplate string
	ProviderOptions map[string]any
	// DailyCap is the campaign's daily cap of invitations; 0 for none
	// (docs/pools.md).
	DailyCap int
}

// NewTarget is a target to add to a campaign.
type NewTarget struct {
	Identifier string
	Vars       map[string]any
}

// AddTargets inserts targets into a campaign, skipping identifiers the
// campaign already has, and returns how many it inserted.
func (s *Store) AddTargets(ctx context.Context, campaignID int64, targets []NewTarget) (int64, error) {
	ids := make([]string, len(targets))
	vars := make([]string, len(targets))
	for i, t := range targets {
		ids[i] = t.Identifier
		v := t.Vars
		if v == nil {
			v = map[string]any{}
		}
		b, err := json.Marshal(v)
		if err != nil {
			return 0, fmt.Errorf("add targets: vars of %q: %w", t.Identifier, err)
		}
		vars[i] = string(b)
	}
	tag, err := s.pool.Exec(ctx, `INSERT INTO targets (campaign_id, identifier, vars)
		SELECT $1, i, v::jsonb FROM unnest($2::text[], $3::text[]) AS x(i, v)
		ON CONFLICT (campaign_id, identifier) DO NOTHING`, campaignID, ids, vars)
	if err != nil {
		return 0, translate(fmt.Sprintf("add targets to campaign %d", campaignID), err)
	}
	return tag.RowsAffected(), nil
}

const targetColumns = `t.id, t.campaign_id, coalesce(t.account_id, 0), t.identifier, coalesce(t.normalized_identifier, ''),
	coalesce(t.provider_id, ''), t.vars, t.status, t.attempts, t.deferrals, t.next_attempt_at, t.locked_until,
	coalesce(t.last_error, ''), coalesce(t.error_type, ''), coalesce(t.invitation_id, ''), coalesce(t.message, ''),
	c.status, c.message_template, c.provider_options, coalesce(c.daily_cap, 0)`

// targetDest is where targetColumns scan into: t, and locked for its
// locked_until (t.LockedUntil = finite(locked) after the scan).
func targetDest(t *Target, locked **time.Time) []any {
	return []any{&t.ID, &t.CampaignID, &t.AccountID, &t.Identifier, &t.NormalizedIdentifier,
		&t.ProviderID, &t.Vars, &t.Status, &t.Attempts, &t.Deferrals, &t.NextAttemptAt, locked,
		&t.LastError, &t.ErrorType, &t.InvitationID, &t.Message,
		&t.CampaignStatus, &t.MessageTemplate, &t.ProviderOptions, &t.DailyCap}
}

// Target returns one target with its campaign's settings and its task
// generation.
func (s *Store) Target(ctx context.Context, id int64) (*Target, error) {
	var t Target
	var locked *time.Time
	err := s.pool.QueryRow(ctx, `SELECT `+targetColumns+`, t.task_gen
		FROM targets t JOIN campaigns c ON c.id = t.campaign_id WHERE t.id = $1`, id).
		Scan(append(targetDest(&t, &locked), &t.TaskGen)...)
	if err != nil {
		return nil, translate(fmt.Sprintf("target %d", id), err)
	}
	t.LockedUntil = finite(locked)
	return &t, nil
}

// Campaign is a list of targets sent from one account.
type Campaign struct {
	ID              int64
	Name            string
	AccountID       int64
	MessageTemplate string
	Status          CampaignStatus
	ProviderOptions map[string]any
	// WithdrawAfter, if positive, is the campaign's own age after which a
	// pending invitation is withdrawn (campaigns.withdraw_after); zero
	// leaves it to the account's (docs/withdrawals.md).
	WithdrawAfter time.Duration
}

// CreateCampaign inserts a campaign and returns its id.
func (s *Store) CreateCampaign(ctx context.Context, c Campaign) (int64, error) {
	if c.ProviderOptions == nil {
		c.ProviderOptions = map[string]any{}
	}
	if c.Status == "" {
		c.Status = CampaignActive
	}
	var id int64
	err := s.pool.QueryRow(ctx, `INSERT INTO campaigns (name, account_id, message_template, status, provider_options, withdraw_after)
		VALUES ($1, $2, $3, $4, $5, CASE WHEN $6::float8 > 0 THEN make_interval(secs => $6) END) RETURNING id`,
		c.Name, c.AccountID, c.MessageTemplate, c.Status, c.ProviderOptions, c.WithdrawAfter.Seconds()).Scan(&id)
	return id, translate(fmt.Sprintf("create campaign %q", c.Name), err)
}

// SetCampaignStatus sets a campaign active, paused or done. Tasks already
// in Redis for a campaign that is no longer active are handed back by the
// worker when they come up.
func (s *Store) SetCampaignStatus(ctx context.Context, id int64, status CampaignStatus) error {
	tag, err := s.pool.Exec(ctx, `UPDATE campaigns SET status = $2, updated_at = now() WHERE id = $1`, id, status)
	if err == nil && tag.RowsAffected() == 0 {
		err = pgx.ErrNoRows
	}
	return translate(fmt.Sprintf("set campaign %d %s", id, status), err)
}

const campaignColumns = `id, name, account_id, message_template, status, provider_options`

func scanCampaign(row pgx.Row) (*Campaign, error) {
	var c Campaign
	if err := row.Scan(&c.ID, &c.Name, &c.AccountID, &c.MessageTemplate, &c.Status, &c.ProviderOptions); err != nil {
		return nil, err
	}
	return &c, nil
}

// CampaignByName returns a campaign by name (the newest, if several share it).
func (s *Store) CampaignByName(ctx context.Context, name string) (*Campaign, error) {
	c, err := scanCampaign(s.pool.QueryRow(ctx, `SELECT `+campaignColumns+`
		FROM campaigns WHERE name = $1 ORDER BY id DESC LIMIT 1`, name))
	if err != nil {
		return nil, translate(fmt.Sprintf("campaign %q", name), err)
	}
	return c, nil
}

// Campaign returns a campaign by id.
func (s *Store) Campaign(ctx context.Context, id int64) (*Campaign, error) {
	c, err := scanCampaign(s.pool.QueryRow(ctx, `SELECT `+campaignColumns+`
		FROM campaigns WHERE id = $1`, id))
	if err != nil {
		return nil, translate(fmt.Sprintf("campaign %d", id), err)
	}
	return c, nil
}
