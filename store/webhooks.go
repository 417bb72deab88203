package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// WebhookSubscriber is a row of webhook_subscribers: a URL that receives
// the event stream, with its cursor and its delivery state.
type WebhookSubscriber struct {
	ID     int64
	URL    string // may hold a token: never log it (see package webhook)
	Secret string
	// Kinds are the kinds it wants (none: all).
	Kinds   []EventKind
	Enabled bool
	Cursor  EventCursor
	// Attempts are the failed tries of the delivery at the cursor since
	// the last success; FailingSince is when they began (zero: not
	// failing).
	Attempts      int
	FailingSince  time.Time
	LastError     string
	LastErrorAt   time.Time
	NextAttemptAt time.Time
	Delivered     int64
	DeliveredAt   time.Time
}

// Wants reports whether the subscriber wants events of kind k.
func (w *WebhookSubscriber) Wants(k EventKind) bool {
	if len(w.Kinds) == 0 {
		return true
	}
	for _, x := range w.Kinds {
		if x == k {
			return true
		}
	}
	return false
}

const webhookColumns = `id, url, secret, COALESCE(kinds, '{}'), enabled, cursor_xid::text::bigint, cursor_id, attempts,
	failing_since, COALESCE(last_error, ''), last_error_at, next_attempt_at, delivered, delivered_at`

func scanWebhook(r pgx.Row) (*WebhookSubscriber, error) {
	var w WebhookSubscriber
	var kinds []string
	var xid int64
	var failing, errAt, deliveredAt *time.Time
	if err := r.Scan(&w.ID, &w.URL, &w.Secret, &kinds, &w.Enabled, &xid, &w.Cursor.ID, &w.Attempts,
		&failing, &w.LastError, &errAt, &w.NextAttemptAt, &w.Delivered, &deliveredAt); err != nil {
		return nil, err
	}
	w.Cursor.XID = uint64(xid)
	for _, k := range kinds {
		w.Kinds = append(w.Kinds, EventKind(k))
	}
	if failing != nil {
		w.FailingSince = *failing
	}
	if errAt != nil {
		w.LastErrorAt = *errAt
	}
	if deliveredAt != nil {
		w.DeliveredAt = *deliveredAt
	}
	return &w, nil
}

// AddWebhook subscribes url with secret to the kinds given (none: all),
// from the start of the stream, and returns its id. (Users may as well
// insert the row themselves.)
func (s *Store) AddWebhook(ctx context.Context, url, secret string, kinds ...EventKind) (int64, error) {
	var ks []string
	for _, k := range kinds {
		ks = append(ks, string(k))
	}
	var id int64
	err := s.pool.QueryRow(ctx, `INSERT INTO webhook_subscribers (url, secret, kinds) VALUES ($1, $2, $3) RETURNING id`,
		url, secret, ks).Scan(&id)
	return id, translate("add webhook", err)
}

// Webhooks returns every subscriber, by id.
func (s *Store) Webhooks(ctx context.Context) ([]*WebhookSubscriber, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+webhookColumns+` FROM webhook_subscribers ORDER BY id`)
	if err != nil {
		return nil, translate("list webhooks", err)
	}
	ws, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*WebhookSubscriber, error) { return scanWebhook(r) })
	return ws, translate("list webhooks", err)
}

// DueWebhooks returns the ids of the enabled subscribers whose next try
// is due at now and that no live deliverer holds.
func (s *Store) DueWebhooks(ctx context.Context, now time.Time) ([]int64, error) {
	rows, err := s.pool.Query(ctx, `SELECT id FROM webhook_subscribers
		WHERE enabled AND next_attempt_at <= $1 AND (locked_until IS NULL OR locked_until < $1) ORDER BY id`, now)
	if err != nil {
		return nil, translate("due webhooks", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	return ids, translate("due webhooks", err)
}

// ClaimWebhook leases subscriber id to owner until now+lease, if it is
// enabled, due and not leased by another live deliverer (ErrStale
// otherwise), and returns it.
func (s *Store) ClaimWebhook(ctx context.Context, id int64, owner string, now time.Time, lease time.Duration) (*WebhookSubscriber, error) {
	w, err := scanWebhook(s.pool.QueryRow(ctx, `UPDATE webhook_subscribers SET locked_by = $2, locked_until = $3::timestamptz + $4::interval
		WHERE id = $1 AND enabled AND next_attempt_at <= $3 AND (locked_until IS NULL OR locked_until < $3 OR locked_by = $2)
		RETURNING `+webhookColumns, id, owner, now, lease))
	if err == pgx.ErrNoRows {
		return nil, fmt.Errorf("claim webhook %d: %w", id, ErrStale)
	}
	return w, translate(fmt.Sprintf("claim webhook %d", id), err)
}

// WebhookDelivered moves subscriber id's cursor to cur after delivering
// n events (n may be 0 for events it does not want), clears its failure
// state and renews owner's lease until now+lease. ErrStale if owner no
// longer holds it.
func (s *Store) WebhookDelivered(ctx context.Context, id int64, owner string, cur EventCursor, n int, now time.Time, lease time.Duration) error {
	tag, err := s.pool.Exec(ctx, `UPDATE webhook_subscribers SET cursor_xid = $3::text::xid8, cursor_id = $4,
			delivered = delivered + $5, delivered_at = CASE WHEN $5 > 0 THEN $6 ELSE delivered_at END,
			attempts = 0, failing_since = NULL, locked_until = $6::timestamptz + $7::interval
		WHERE id = $1 AND locked_by = $2`, id, owner, fmt.Sprint(cur.XID), cur.ID, n, now, lease)
	if err != nil {
		return translate(fmt.Sprintf("webhook %d delivered", id), err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("webhook %d delivered: %w", id, ErrStale)
	}
	return nil
}

// WebhookFailed records a failed delivery to subscriber id: one more
// attempt, the error (which must hold no secret), failing since now if it
// was not, the next try at retryAt; and releases owner's lease.
func (s *Store) WebhookFailed(ctx context.Context, id int64, owner, errText string, now, retryAt time.Time) error {
	_, err := s.pool.Exec(ctx, `UPDATE webhook_subscribers SET attempts = attempts + 1, last_error = $3, last_error_at = $4,
			failing_since = COALESCE(failing_since, $4), next_attempt_at = $5, locked_by = NULL, locked_until = NULL
		WHERE id = $1 AND locked_by = $2`, id, owner, errText, now, retryAt)
	return translate(fmt.Sprintf("webhook %d failed", id), err)
}

// ReleaseWebhook gives subscriber id back (owner is done with it for now).
func (s *Store) ReleaseWebhook(ctx context.Context, id int64, owner string) error {
	_, err := s.pool.Exec(ctx, `UPDATE webhook_subscribers SET locked_by = NULL, locked_until = NULL WHERE id = $1 AND locked_by = $2`, id, owner)
	return translate(fmt.Sprintf("release webhook %d", id), err)
}
