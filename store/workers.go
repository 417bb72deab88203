package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrRecovered is returned by Heartbeat when the worker was taken for dead
// (its heartbeat was too old, or it stopped) and its in-flight sends were
// handed to others: it must register again under a new id.
var ErrRecovered = errors.New("worker was taken for dead and recovered")

// HeartbeatConn is a connection of its own on which a worker registers and
// renews its liveness row, so that a busy pool never delays a heartbeat.
// It reconnects after an error. It is not safe for concurrent use.
type HeartbeatConn struct {
	cfg  *pgx.ConnConfig
	conn *pgx.Conn
}

// HeartbeatConn returns a liveness connection to the store's database; it
// connects on first use.
func (s *Store) HeartbeatConn() *HeartbeatConn {
	return &HeartbeatConn{cfg: s.pool.Config().ConnConfig.Copy()}
}

func (h *HeartbeatConn) do(ctx context.Context, f func(*pgx.Conn) error) error {
	if h.conn == nil || h.conn.IsClosed() {
		c, err := pgx.ConnectConfig(ctx, h.cfg)
		if err != nil {
			return err
		}
		h.conn = c
	}
	err := f(h.conn)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) && !errors.Is(err, ErrRecovered) {
		// The connection may be broken: start afresh next time.
		_ = h.conn.Close(context.WithoutCancel(ctx))
		h.conn = nil
	}
	return err
}

// Register inserts a liveness row for a worker process on host with pid
// and returns its id.
func (h *HeartbeatConn) Register(ctx context.Context, host string, pid int) (int64, error) {
	var id int64
	err := h.do(ctx, func(c *pgx.Conn) error {
		return c.QueryRow(ctx, `INSERT INTO workers (host, pid) VALUES ($1, $2) RETURNING id`, host, pid).Scan(&id)
	})
	return id, translate("register worker", err)
}

// Heartbeat renews worker id's heartbeat (by the database's clock). It
// returns ErrRecovered if the worker was taken for dead meanwhile.
func (h *HeartbeatConn) Heartbeat(ctx context.Context, id int64) error {
	err := h.do(ctx, func(c *pgx.Conn) error {
		tag, err := c.Exec(ctx, `UPDATE workers SET heartbeat_at = now() WHERE id = $1 AND recovered_at IS NULL AND stopped_at IS NULL`, id)
		if err == nil && tag.RowsAffected() == 0 {
			return ErrRecovered
		}
		return err
	})
	if errors.Is(err, ErrRecovered) {
		return fmt.Errorf("heartbeat of worker %d: %w", id, err)
	}
	return translate(fmt.Sprintf("heartbeat of worker %d", id), err)
}

// Stopped marks worker id stopped: whatever it left in flight is examined
// at the next recovery, without waiting for its heartbeat to age.
func (h *HeartbeatConn) Stopped(ctx context.Context, id int64) error {
	err := h.do(ctx, func(c *pgx.Conn) error {
		_, err := c.Exec(ctx, `UPDATE workers SET stopped_at = now() WHERE id = $1`, id)
		return err
	})
	return translate(fmt.Sprintf("mark worker %d stopped", id), err)
}

// Close closes the connection.
func (h *HeartbeatConn) Close(ctx context.Context) {
	if h.conn != nil {
		_ = h.conn.Close(ctx)
		h.conn = nil
	}
}

// DeadWorker is a worker found dead by RecoverDeadWorkers.
type DeadWorker struct {
	ID          int64
	Host        string
	PID         int
	HeartbeatAt time.Time
	Stopped     bool
	// Sends is how many of its ledger rows were still in flight.
	Sends int
}

// Recovered is a target whose attempt was in flight at a dead worker,
// queued again under a new task generation.
type Recovered struct {
	ID          int64
	AccountID   int64
	Lookup      bool
	TaskGen     int
	NextAttempt time.Time
	WorkerID    int64
}

// RecoverDeadWorkers finds workers that stopped, or whose heartbeat is
// older than deadAfter by the database's clock (and not merely because
// the database itself restarted less than deadAfter ago), and examines
// their in-flight sends at once: each ledger row becomes 'unknown' (the
// provider may have seen it, at the latest at its reservation plus
// requestTimeout, or now), and its target is queued again under a new task
// generation, so that a new task runs it (settling the uncertain attempt
// first) while asynq still holds the dead worker's task, which the
// reservation will refuse. Several callers may run it at once; each dead
// worker is recovered by one of them.
func (s *Store) RecoverDeadWorkers(ctx context.Context, now time.Time, deadAfter, requestTimeout time.Duration) ([]DeadWorker, []Recovered, error) {
	var dead []DeadWorker
	var rec []Recovered
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		dead, rec = nil, nil
		rows, err := tx.Query(ctx, `WITH d AS (
				SELECT id FROM workers
				WHERE recovered_at IS NULL AND (stopped_at IS NOT NULL OR
					(heartbeat_at < now() - make_interval(secs => $1) AND pg_postmaster_start_time() < now() - make_interval(secs => $1)))
				FOR UPDATE SKIP LOCKED)
			UPDATE workers w SET recovered_at = now() FROM d WHERE w.id = d.id
			RETURNING w.id, w.host, w.pid, w.heartbeat_at, w.stopped_at IS NOT NULL`, deadAfter.Seconds())
		if err != nil {
			return err
		}
		var ids []int64
		for rows.Next() {
			var d DeadWorker
			if err := rows.Scan(&d.ID, &d.Host, &d.PID, &d.HeartbeatAt, &d.Stopped); err != nil {
				rows.Close()
				return err
			}
			dead = append(dead, d)
			ids = append(ids, d.ID)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if len(ids) == 0 {
			return nil
		}
		rows, err = tx.Query(ctx, `WITH s AS (
				UPDATE sends SET outcome = 'unknown', window_at = least($2::timestamptz, reserved_at + make_interval(secs => $3)),
					detail = 'worker ' || worker_id || ' stopped heartbeating before recording the answer'
				WHERE worker_id = ANY($1) AND outcome = 'in_flight' RETURNING id, target_id, worker_id),
			t AS (
				UPDATE targets t SET status = 'queued', task_gen = t.task_gen + 1, queued_at = $2, updated_at = $2,
					locked_until = NULL, current_send_id = NULL,
					last_error = 'waiting: its worker stopped during the call; the attempt is settled before anything is sent again'
				FROM s WHERE t.id = s.target_id AND t.status = 'sending' AND t.current_send_id = s.id
				RETURNING t.id, t.account_id, t.provider_id IS NULL AS lookup, t.task_gen, t.next_attempt_at, s.worker_id)
			SELECT 's', worker_id, 0, 0, false, 0, $2::timestamptz FROM s
			UNION ALL SELECT 't', worker_id, id, account_id, lookup, task_gen, next_attempt_at FROM t`, ids, now, requestTimeout.Seconds())
		if err != nil {
			return err
		}
		perWorker := map[int64]int{}
		for rows.Next() {
			var kind string
			var r Recovered
			if err := rows.Scan(&kind, &r.WorkerID, &r.ID, &r.AccountID, &r.Lookup, &r.TaskGen, &r.NextAttempt); err != nil {
				rows.Close()
				return err
			}
			if kind == "s" {
				perWorker[r.WorkerID]++
				continue
			}
			rec = append(rec, r)
		}
		for i := range dead {
			dead[i].Sends = perWorker[dead[i].ID]
		}
		if err := rows.Err(); err != nil {
			return err
		}
		// Forget workers recovered long ago.
		_, err = tx.Exec(ctx, `DELETE FROM workers WHERE recovered_at < now() - interval '7 days'`)
		return err
	})
	if err != nil {
		return nil, nil, translate("recover dead workers", err)
	}
	return dead, rec, nil
}
