package bench

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/outreach-dev/outreach/scheduler"
)

// ScaleResult is the scheduler's cost at one table size.
type ScaleResult struct {
	Targets, Pending, Accounts int
	// Load is how long the bulk load took.
	Load time.Duration
	// FirstTick plans and enqueues the waiting targets' slots (Enqueued
	// tasks); Tick is the median of the ticks after it, with nothing new
	// to enqueue.
	FirstTick, Tick time.Duration
	Enqueued        int
	// DueQuery is the median time of the claim query (one account's due
	// targets, oldest first) and AccountsQuery of AccountsWithWork.
	DueQuery, AccountsQuery time.Duration
	// RedisBytes is Redis's used_memory after the first tick, RedisEmpty
	// before it.
	RedisBytes, RedisEmpty int64
}

// scaleLimit is each account's budget in the scale run: a day's worth, so
// that the first tick enqueues the same number of tasks at every size.
const scaleLimit = 20

func (e *env) scale(ctx context.Context, n int) (*ScaleResult, error) {
	cfg := e.cfg
	res := &ScaleResult{Targets: n, Pending: min(cfg.ScalePending, n), Accounts: cfg.ScaleAccounts}
	st, dsn, cleanup, err := e.fresh(ctx, "scale")
	if err != nil {
		return nil, err
	}
	defer cleanup()
	db, err := seedPool(ctx, dsn)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	camps, err := seedAccounts(ctx, db, cfg.ScaleAccounts, []Window{{Max: scaleLimit, Per: 24 * time.Hour}})
	if err != nil {
		return nil, err
	}
	start := time.Now()
	if err := bulkLoad(ctx, db, camps, n, res.Pending, func(done int) {
		e.progress("scale: loaded %d of %d targets", done, n)
	}); err != nil {
		return nil, err
	}
	res.Load = time.Since(start)
	e.progress("scale: %d targets loaded in %s", n, res.Load.Round(time.Second))

	if res.RedisEmpty, err = e.usedMemory(ctx); err != nil {
		return nil, err
	}
	s, err := scheduler.New(scheduler.Config{Store: st, Redis: e.rdb, Horizon: time.Minute, Logger: e.cfg.Logger})
	if err != nil {
		return nil, err
	}
	ts, err := s.Tick(ctx)
	if err != nil {
		return nil, err
	}
	res.FirstTick, res.Enqueued = ts.Duration, ts.Enqueued
	if res.RedisBytes, err = e.usedMemory(ctx); err != nil {
		return nil, err
	}
	var ticks, dues, accs []time.Duration
	for range 7 {
		ts, err := s.Tick(ctx)
		if err != nil {
			return nil, err
		}
		ticks = append(ticks, ts.Duration)
		t0 := time.Now()
		if _, err := st.AccountsWithWork(ctx, time.Now(), time.Now().Add(time.Minute)); err != nil {
			return nil, err
		}
		accs = append(accs, time.Since(t0))
		d, err := dueQuery(ctx, db, camps[len(camps)/2])
		if err != nil {
			return nil, err
		}
		dues = append(dues, d)
	}
	res.Tick, res.DueQuery, res.AccountsQuery = median(ticks), median(dues), median(accs)
	return res, e.flushRedis(ctx)
}

// dueQuery times the claim query of store.ClaimTargets (its SELECT, the
// same text) for one campaign's account, in a transaction rolled back.
func dueQuery(ctx context.Context, db *pgxpool.Pool, campaign int64) (time.Duration, error) {
	tx, err := db.Begin(ctx)
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
		ORDER BY t.next_attempt_at LIMIT $2`, account, scaleLimit, time.Now().Add(time.Minute))
	if err != nil {
		return 0, err
	}
	if _, err := pgx.CollectRows(rows, pgx.RowTo[int64]); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// bulkLoad inserts n targets over the campaigns, all terminal (sent, with
// their ledger rows two days old or more) but pending of them, which are
// resolved and due now. It loads in chunks with triggers off
// (session_replication_role = replica), then analyses.
func bulkLoad(ctx context.Context, db *pgxpool.Pool, camps []int64, n, pending int, progress func(int)) error {
	conn, err := db.Acquire(ctx)
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
	if _, err := conn.Exec(ctx, `VACUUM ANALYZE targets`); err != nil {
		return err
	}
	_, err = conn.Exec(ctx, `VACUUM ANALYZE sends`)
	return err
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}
