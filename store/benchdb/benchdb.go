// Package benchdb holds the SQL of the benchmarks (internal/bench): bulk
// seeding of accounts, campaigns and targets, the timed claim query, and
// the rows the benchmarks watch. It works on a pool of its own on a
// benchmark's database: the store exports no pool, and none of this is
// part of the store's API for the scheduler and the workers.
package benchdb

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// DB is a pool on a benchmark's database.
type DB struct {
	pool *pgxpool.Pool
}

// Open connects to the database at dsn.
func Open(ctx context.Context, dsn string) (*DB, error) {
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("connect to postgres: %w", err)
	}
	return &DB{pool: pool}, nil
}

// Close closes the pool.
func (db *DB) Close() { db.pool.Close() }

// CreateDatabase creates the database name (a plain identifier) through
// the server at dsn.
func CreateDatabase(ctx context.Context, dsn, name string) error {
	conn, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return fmt.Errorf("connect to postgres: %w", err)
	}
	defer conn.Close()
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return fmt.Errorf("create database: %w", err)
	}
	return nil
}

// DropDatabase drops the database name through the server at dsn, if it
// exists, closing its connections.
func DropDatabase(ctx context.Context, dsn, name string) error {
	conn, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return fmt.Errorf("connect to postgres: %w", err)
	}
	defer conn.Close()
	_, err = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	return err
}

// Window is an invite limit: Max per Per.
type Window struct {
	Max int
	Per time.Duration
}

// SeedAccounts inserts n Unipile accounts named acct-1… with the windows
// as invite limits, and a campaign each; it returns the campaign ids in
// account order. The accounts opt out of the provider's default pacing
// (pacing 'unlimited').
func (db *DB) SeedAccounts(ctx context.Context, n int, windows []Window) ([]int64, error) {
	if _, err := db.pool.Exec(ctx, `INSERT INTO accounts (name, provider, provider_account_id, pacing)
		SELECT 'acct-' || i, 'unipile', 'acct-' || i, 'unlimited' FROM generate_series(1, $1) i`, n); err != nil {
		return nil, fmt.Errorf("seed accounts: %w", err)
	}
	// Benchmarks measure limits in full: no warm-up ramp (docs/warmup.md).
	if _, err := db.pool.Exec(ctx, `DELETE FROM account_warmups`); err != nil {
		return nil, fmt.Errorf("seed accounts: %w", err)
	}
	for _, w := range windows {
		if _, err := db.pool.Exec(ctx, `INSERT INTO account_limits (account_id, action, max_count, per)
			SELECT id, 'invite', $1, make_interval(secs => $2) FROM accounts`, w.Max, w.Per.Seconds()); err != nil {
			return nil, fmt.Errorf("seed limits: %w", err)
		}
	}
	rows, err := db.pool.Query(ctx, `INSERT INTO campaigns (name, account_id, message_template)
		SELECT 'camp-' || id, id, 'Hello {{.FirstName}}' FROM accounts ORDER BY id RETURNING id`)
	if err != nil {
		return nil, fmt.Errorf("seed campaigns: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("seed campaigns: %w", err)
	}
	return ids, nil
}

// SeedTargets inserts n targets spread round-robin over the campaigns,
// identified by LinkedIn member ids made from tag (no lookup needed), then
// analyses. With resolved they are inserted already normalised, as after
// the scheduler's first pass.
func (db *DB) SeedTargets(ctx context.Context, campaigns []int64, n int, resolved bool, tag string) error {
	q := `INSERT INTO targets (campaign_id, identifier)
		SELECT ($1::bigint[])[1 + g % cardinality($1::bigint[])], 'ACoAA' || md5($3 || g::text) FROM generate_series(0, $2 - 1) g`
	if resolved {
		q = `INSERT INTO targets (campaign_id, identifier, normalized_identifier, provider_id)
		SELECT ($1::bigint[])[1 + g % cardinality($1::bigint[])], x.id, x.id, x.id
		FROM generate_series(0, $2 - 1) g, LATERAL (SELECT 'ACoAA' || md5($3 || g::text) AS id) x`
	}
	if _, err := db.pool.Exec(ctx, q, campaigns, n, tag); err != nil {
		return fmt.Errorf("seed targets: %w", err)
	}
	_, err := db.pool.Exec(ctx, `ANALYZE`)
	return err
}

// AddTarget inserts one target of the campaign, a LinkedIn member id made
// from tag, and returns its id and creation time.
func (db *DB) AddTarget(ctx context.Context, campaign int64, tag string) (id int64, created time.Time, err error) {
	err = db.pool.QueryRow(ctx, `INSERT INTO targets (campaign_id, identifier) VALUES ($1, 'ACoAA' || md5('w' || $2))
			RETURNING id, created_at`, campaign, tag).Scan(&id, &created)
	return id, created, err
}

// SentAt returns when the target was sent, nil if it is not sent.
func (db *DB) SentAt(ctx context.Context, target int64) (*time.Time, error) {
	var finished *time.Time
	err := db.pool.QueryRow(ctx, `SELECT finished_at FROM targets WHERE id = $1 AND status = 'sent'`, target).Scan(&finished)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	return finished, err
}

// InFlightInvites counts the invitations in flight at the worker process
// pid.
func (db *DB) InFlightInvites(ctx context.Context, pid int) (int, error) {
	var n int
	err := db.pool.QueryRow(ctx, `SELECT count(*) FROM sends s JOIN workers w ON w.id = s.worker_id
				WHERE s.outcome = 'in_flight' AND s.action = 'invite' AND w.pid = $1`, pid).Scan(&n)
	return n, err
}

// LastWorker returns the database's clock now and the id of the latest
// worker of process pid.
func (db *DB) LastWorker(ctx context.Context, pid int) (now time.Time, id int64, err error) {
	err = db.pool.QueryRow(ctx, `SELECT now(), (SELECT id FROM workers WHERE pid = $1 ORDER BY id DESC LIMIT 1)`, pid).Scan(&now, &id)
	return now, id, err
}

// FirstSettle returns when the first settling lookup of a target the
// worker had in hand was reserved, nil before any.
func (db *DB) FirstSettle(ctx context.Context, worker int64) (*time.Time, error) {
	var first *time.Time
	err := db.pool.QueryRow(ctx, `SELECT min(l.reserved_at) FROM sends o JOIN sends l ON l.target_id = o.target_id
				WHERE o.worker_id = $1 AND l.action = 'lookup' AND l.detail LIKE 'settle:%'`, worker).Scan(&first)
	return first, err
}

// DueQuery times the claim query of store.ClaimTargets (its SELECT) for
// one campaign's account, limit targets, in a transaction rolled back.
func (db *DB) DueQuery(ctx context.Context, campaign int64, limit int) (time.Duration, error) {
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback(ctx)
	var account int64
	if err := tx.QueryRow(ctx, `SELECT account_id FROM campaigns WHERE id = $1`, campaign).Scan(&account); err != nil {
		return 0, err
	}
	start := time.Now()
	rows, err := tx.Query(ctx, `SELECT t.id FROM campaigns c
		CROSS JOIN LATERAL (SELECT * FROM targets t0 WHERE t0.campaign_id = c.id AND t0.status = 'pending'
			AND t0.normalized_identifier IS NOT NULL AND (t0.provider_id IS NULL) IS FALSE AND t0.next_attempt_at <= $3
			ORDER BY t0.next_attempt_at LIMIT $2 FOR UPDATE SKIP LOCKED) t
		JOIN accounts a ON a.id = c.account_id
		LEFT JOIN people p ON p.provider = a.provider AND p.normalized_identifier = t.normalized_identifier
		WHERE c.account_id = $1 AND c.status = 'active'
		ORDER BY t.next_attempt_at LIMIT $2`, account, limit, time.Now().Add(time.Minute))
	if err != nil {
		return 0, err
	}
	if _, err := pgx.CollectRows(rows, pgx.RowTo[int64]); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// BulkLoad inserts n targets over the campaigns, all terminal (sent, with
// their ledger rows two days old or more) but pending of them, which are
// resolved and due now. It loads in chunks with triggers off
// (session_replication_role = replica), calling progress after each, then
// analyses.
func (db *DB) BulkLoad(ctx context.Context, camps []int64, n, pending int, progress func(int)) error {
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SET session_replication_role = replica`); err != nil {
		return fmt.Errorf("bulk load: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), `RESET session_replication_role`)
	const chunk = 1_000_000
	for lo := 0; lo < n; lo += chunk {
		hi := min(lo+chunk, n)
		// Targets g < pending wait; the others were sent days ago.
		if _, err := conn.Exec(ctx, `INSERT INTO targets (campaign_id, account_id, identifier, normalized_identifier, provider_id,
				status, attempts, next_attempt_at, finished_at, created_at, updated_at, invitation_id)
			SELECT c.id, c.account_id, x.id, x.id, x.id,
				CASE WHEN g < $4 THEN 'pending' ELSE 'sent' END, CASE WHEN g < $4 THEN 0 ELSE 1 END,
				now() - make_interval(secs => g % 3600),
				CASE WHEN g < $4 THEN NULL ELSE x.at END, x.at, x.at,
				CASE WHEN g < $4 THEN NULL ELSE 'inv-' || g END
			FROM generate_series($2::int, $3::int - 1) g
			CROSS JOIN LATERAL (SELECT 'ACoAA' || md5(g::text) AS id,
				now() - interval '2 days' - make_interval(secs => (g % 2592000)) AS at) x
			JOIN campaigns c ON c.id = ($1::bigint[])[1 + g % cardinality($1::bigint[])]`, camps, lo, hi, pending); err != nil {
			return fmt.Errorf("bulk load targets: %w", err)
		}
		if _, err := conn.Exec(ctx, `INSERT INTO sends (account_id, target_id, action, reserved_at, window_at, outcome, invitation_id)
			SELECT account_id, id, 'invite', finished_at, finished_at, 'sent', invitation_id FROM targets
			WHERE status = 'sent' AND id > (SELECT coalesce(max(target_id), 0) FROM sends)`); err != nil {
			return fmt.Errorf("bulk load sends: %w", err)
		}
		progress(hi)
	}
	// The load bypassed the triggers that keep campaign_counts.
	if _, err := conn.Exec(ctx, `RESET session_replication_role`); err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, `SELECT outreach_recount_campaigns()`); err != nil {
		return fmt.Errorf("bulk load: recount campaigns: %w", err)
	}
	if _, err := conn.Exec(ctx, `VACUUM ANALYZE targets`); err != nil {
		return err
	}
	_, err = conn.Exec(ctx, `VACUUM ANALYZE sends`)
	return err
}
