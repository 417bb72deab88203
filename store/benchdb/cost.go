package benchdb

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// CostSnapshot is the server's cumulative work at one moment: what the
// throughput benchmark subtracts to tell what a target costs.
type CostSnapshot struct {
	// Statements is pg_stat_statements' calls over every statement of the
	// database (BEGIN and COMMIT included: each is a round trip);
	// ExecMS their execution and planning time. Both zero when the
	// extension is not loaded (HasStatements false).
	HasStatements bool
	Statements    int64
	ExecMS        float64
	// Commits and Rollbacks are pg_stat_database's for the database.
	Commits, Rollbacks int64
	// WALBytes is pg_current_wal_lsn() as a byte position; WALRecords
	// pg_stat_wal's wal_records (the whole server).
	WALBytes, WALRecords int64
	// Inserts, Updates, HotUpdates, Deletes are pg_stat_user_tables' totals
	// over the database's tables.
	Inserts, Updates, HotUpdates, Deletes int64
	// CPUTicks is the Postgres server's CPU time (postmaster and its
	// children, exited ones included), in clock ticks from /proc; zero when
	// the server's processes cannot be read (another machine).
	CPUTicks int64
}

// StatementCost is one statement's share of a run.
type StatementCost struct {
	Query  string
	Calls  int64
	ExecMS float64
	Rows   int64
}

// EnableStatements creates pg_stat_statements in the database and resets
// its counters; it reports false (and no error) when the server was not
// started with the library preloaded.
func (db *DB) EnableStatements(ctx context.Context) (bool, error) {
	var loaded bool
	if err := db.pool.QueryRow(ctx, `SELECT 'pg_stat_statements' = ANY(string_to_array(current_setting('shared_preload_libraries'), ','))`).Scan(&loaded); err != nil {
		return false, err
	}
	if !loaded {
		return false, nil
	}
	if _, err := db.pool.Exec(ctx, `CREATE EXTENSION IF NOT EXISTS pg_stat_statements`); err != nil {
		return false, err
	}
	_, err := db.pool.Exec(ctx, `SELECT pg_stat_statements_reset()`)
	return err == nil, err
}

// AnalyzeTargets updates the planner's statistics of targets after a bulk
// load, as ImportTargets does. (Not of every table: a table analysed
// while empty, such as sends before the first reservation, is planned as
// empty until autovacuum analyses it again.)
func (db *DB) AnalyzeTargets(ctx context.Context) error {
	_, err := db.pool.Exec(ctx, `ANALYZE targets`)
	return err
}

// Cost reads the cumulative counters. withStatements reads
// pg_stat_statements too (EnableStatements said it is there).
func (db *DB) Cost(ctx context.Context, withStatements bool) (CostSnapshot, error) {
	var c CostSnapshot
	var lsn string
	var dataDir string
	if err := db.pool.QueryRow(ctx, `SELECT d.xact_commit, d.xact_rollback, pg_current_wal_lsn()::text, w.wal_records,
			(SELECT coalesce(sum(n_tup_ins), 0)::bigint FROM pg_stat_user_tables), (SELECT coalesce(sum(n_tup_upd), 0)::bigint FROM pg_stat_user_tables),
			(SELECT coalesce(sum(n_tup_hot_upd), 0)::bigint FROM pg_stat_user_tables), (SELECT coalesce(sum(n_tup_del), 0)::bigint FROM pg_stat_user_tables),
			current_setting('data_directory')
		FROM pg_stat_database d, pg_stat_wal w WHERE d.datname = current_database()`).Scan(
		&c.Commits, &c.Rollbacks, &lsn, &c.WALRecords, &c.Inserts, &c.Updates, &c.HotUpdates, &c.Deletes, &dataDir); err != nil {
		return c, err
	}
	c.WALBytes = parseLSN(lsn)
	if withStatements {
		c.HasStatements = true
		if err := db.pool.QueryRow(ctx, `SELECT coalesce(sum(calls), 0)::bigint, coalesce(sum(total_exec_time + total_plan_time), 0)
			FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&c.Statements, &c.ExecMS); err != nil {
			return c, err
		}
	}
	c.CPUTicks = serverCPU(dataDir)
	return c, nil
}

// TopStatements returns the n statements of the database with the most
// execution time since the last reset.
func (db *DB) TopStatements(ctx context.Context, n int) ([]StatementCost, error) {
	rows, err := db.pool.Query(ctx, `SELECT query, calls, total_exec_time + total_plan_time, rows FROM pg_stat_statements
		WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
		ORDER BY total_exec_time + total_plan_time DESC LIMIT $1`, n)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []StatementCost
	for rows.Next() {
		var s StatementCost
		if err := rows.Scan(&s.Query, &s.Calls, &s.ExecMS, &s.Rows); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// parseLSN turns "16/B374D848" into a byte position.
func parseLSN(s string) int64 {
	hi, lo, ok := strings.Cut(s, "/")
	if !ok {
		return 0
	}
	h, err1 := strconv.ParseInt(hi, 16, 64)
	l, err2 := strconv.ParseInt(lo, 16, 64)
	if err1 != nil || err2 != nil {
		return 0
	}
	return h<<32 | l
}

// serverCPU sums the CPU ticks of the postmaster whose data directory is
// dataDir (its own and its reaped children's) and of its live children.
func serverCPU(dataDir string) int64 {
	b, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return 0
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pm, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil {
		return 0
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	var total int64
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		// Fields after the command (which may hold spaces): state is 3.
		_, rest, ok := strings.Cut(string(st), ") ")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < 15 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		num := func(i int) int64 { v, _ := strconv.ParseInt(f[i], 10, 64); return v }
		switch {
		case pid == pm:
			total += num(11) + num(12) + num(13) + num(14) // utime stime cutime cstime
		case ppid == pm:
			total += num(11) + num(12)
		}
	}
	return total
}
