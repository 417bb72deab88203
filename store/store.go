// Package store is outreach's access to Postgres: accounts, limits,
// campaigns, targets, the resolve cache and the send ledger. Postgres is the
// truth; everything in Redis can be rebuilt from what is here.
//
// pgx errors are translated at this edge into the domain errors below,
// wrapped with the operation that failed.
package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Domain errors. Check them with errors.Is.
var (
	// ErrNotFound: the row asked for does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict: a uniqueness rule refused the write (a second target for
	// a person the account already invites, a duplicate name).
	ErrConflict = errors.New("conflict")
	// ErrInvalid: the database refused a value (a check constraint, a bad
	// time zone, an interval that does not parse).
	ErrInvalid = errors.New("invalid")
	// ErrStale: the target is no longer in the state the caller expected
	// (another process took it, or an operator changed it).
	ErrStale = errors.New("stale")
)

// Store is a pool of connections to the outreach database.
type Store struct {
	pool *pgxpool.Pool
}

// Option configures Open.
type Option func(*pgxpool.Config, string)

// PoolSize sets the most connections of the pool when the DSN does not say
// (pool_max_conns). A worker wants about one per concurrent task.
func PoolSize(n int) Option {
	return func(cfg *pgxpool.Config, dsn string) {
		if n > 0 && !strings.Contains(dsn, "pool_max_conns") {
			cfg.MaxConns = int32(n)
		}
	}
}

// Open connects to the database at dsn (a postgres:// URL or key=value
// string). The pool size follows pool_max_conns in the DSN, else PoolSize,
// else pgx's default (the number of CPUs, at least 4).
func Open(ctx context.Context, dsn string, opts ...Option) (*Store, error) {
	cfg, err := parseConfig(dsn)
	if err != nil {
		return nil, err
	}
	for _, o := range opts {
		o(cfg, dsn)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to postgres: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to postgres at %s: %w", redactDSN(cfg), err)
	}
	return &Store{pool: pool}, nil
}

// New wraps an existing pool.
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// Close closes the pool.
func (s *Store) Close() { s.pool.Close() }

func parseConfig(dsn string) (*pgxpool.Config, error) {
	if dsn == "" {
		return nil, fmt.Errorf("%w: empty database URL (set DATABASE_URL)", ErrInvalid)
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgx's parse errors can echo the DSN, password included.
		return nil, fmt.Errorf("%w: database URL does not parse (expected postgres://user@host:port/db)", ErrInvalid)
	}
	// Every query here is short and served by an index. Postgres's JIT
	// compiles a query whose estimated cost passes jit_above_cost (the
	// console's account list over a thousand accounts does), which costs
	// hundreds of milliseconds to seconds on a busy machine and saves
	// nothing here. A jit setting in the URL wins.
	if _, set := cfg.ConnConfig.RuntimeParams["jit"]; !set {
		cfg.ConnConfig.RuntimeParams["jit"] = "off"
	}
	return cfg, nil
}

func redactDSN(cfg *pgxpool.Config) string {
	c := cfg.ConnConfig
	return fmt.Sprintf("%s:%d/%s", c.Host, c.Port, c.Database)
}

// translate turns pgx errors into the domain errors, wrapped with op.
func translate(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%s: %w", op, ErrNotFound)
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "23505": // unique_violation
			return fmt.Errorf("%s: %w: %s", op, ErrConflict, pgErr.Message)
		case "23503": // foreign_key_violation
			return fmt.Errorf("%s: %w: %s", op, ErrNotFound, pgErr.Detail)
		case "23514", "23502", "22P02", "22007", "22008", "22015", "22023", "22004", "22003":
			// check (and the validating triggers, whose messages name the
			// column), not null, invalid text, datetime and interval
			// overflow, invalid parameter (time zone), ...
			msg := pgErr.Message
			if pgErr.ConstraintName != "" {
				msg += " (" + pgErr.ConstraintName + ")"
			}
			return fmt.Errorf("%s: %w: %s", op, ErrInvalid, msg)
		}
	}
	return fmt.Errorf("%s: %w", op, err)
}

// maxReadDuration bounds the intervals read from the database. The schema
// allows far less (a gap of a day, a window of 366 days: migration 00002),
// but rows written before it can hold '1000 years', which does not fit a
// time.Duration (at most 292 years). Clamped to ten years it still means
// "not any time soon", and sums, doublings and multiples of such durations
// (a gap plus its jitter, doubled on a usage warning) cannot overflow.
const maxReadDuration = 10 * 366 * 24 * time.Hour

// seconds converts a float number of seconds from SQL into a Duration,
// clamped to ±maxReadDuration (NaN is zero): it never wraps around.
func seconds(f float64) time.Duration {
	switch ns := f * float64(time.Second); {
	case ns != ns:
		return 0
	case ns >= float64(maxReadDuration):
		return maxReadDuration
	case ns <= -float64(maxReadDuration):
		return -maxReadDuration
	default:
		return time.Duration(ns)
	}
}
