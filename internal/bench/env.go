package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime/pprof"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/outreach-dev/outreach/internal/system"
	"github.com/outreach-dev/outreach/provider"
	"github.com/outreach-dev/outreach/provider/simulator"
	"github.com/outreach-dev/outreach/provider/unipile"
	"github.com/outreach-dev/outreach/scheduler"
	"github.com/outreach-dev/outreach/store"
	"github.com/outreach-dev/outreach/store/benchdb"
	"github.com/outreach-dev/outreach/worker"
)

// env is what the scenarios share: the servers and the Redis client.
type env struct {
	cfg Config
	rdb *redis.Client
	// profiled is whether CPUProfile has had its run.
	profiled bool
}

// profile starts the CPU profile of Config.CPUProfile for the first
// pipeline run that asks, and returns what stops it.
func (e *env) profile() (stop func(), err error) {
	if e.cfg.CPUProfile == nil || e.profiled {
		return func() {}, nil
	}
	e.profiled = true
	if err := pprof.StartCPUProfile(e.cfg.CPUProfile); err != nil {
		return nil, err
	}
	return pprof.StopCPUProfile, nil
}

func newEnv(ctx context.Context, cfg Config) (*env, error) {
	opt, err := redis.ParseURL(cfg.RedisURL)
	if err != nil {
		return nil, fmt.Errorf("bench: redis URL: %w", err)
	}
	opt.PoolSize = 64
	rdb := redis.NewClient(opt)
	if err := rdb.Ping(ctx).Err(); err != nil {
		rdb.Close()
		return nil, fmt.Errorf("bench: connect to redis: %w", err)
	}
	return &env{cfg: cfg, rdb: rdb}, nil
}

func (e *env) close() { e.rdb.Close() }

func (e *env) progress(format string, a ...any) {
	fmt.Fprintf(e.cfg.Progress, "bench: "+format+"\n", a...)
}

// fresh empties Redis and opens a fresh, migrated database for one
// scenario; cleanup closes and drops it.
func (e *env) fresh(ctx context.Context, name string) (st *store.Store, dsn string, cleanup func(), err error) {
	if err := e.flushRedis(ctx); err != nil {
		return nil, "", nil, err
	}
	dsn, drop, err := e.database(ctx, name)
	if err != nil {
		return nil, "", nil, err
	}
	st, err = store.Open(ctx, dsn)
	if err != nil {
		drop()
		return nil, "", nil, err
	}
	return st, dsn, func() { st.Close(); drop() }, nil
}

// database creates a fresh, migrated database for one scenario and
// returns its URL and a function that drops it.
func (e *env) database(ctx context.Context, name string) (string, func(), error) {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	db := "outreach_bench_" + name + "_" + hex.EncodeToString(b)
	if err := benchdb.CreateDatabase(ctx, e.cfg.DatabaseURL, db); err != nil {
		return "", nil, err
	}
	drop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = benchdb.DropDatabase(ctx, e.cfg.DatabaseURL, db)
	}
	u, err := url.Parse(e.cfg.DatabaseURL)
	if err != nil || u.Scheme == "" {
		drop()
		return "", nil, fmt.Errorf("bench: the database URL must be a postgres:// URL")
	}
	u.Path = "/" + db
	dsn := u.String()
	if _, err := store.Migrate(ctx, dsn); err != nil {
		drop()
		return "", nil, err
	}
	return dsn, drop, nil
}

// flushRedis empties the Redis database between scenarios.
func (e *env) flushRedis(ctx context.Context) error { return e.rdb.FlushDB(ctx).Err() }

// usedMemory reads INFO memory used_memory.
func (e *env) usedMemory(ctx context.Context) (int64, error) {
	info, err := e.rdb.Info(ctx, "memory").Result()
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
			var n int64
			_, err := fmt.Sscan(v, &n)
			return n, err
		}
	}
	return 0, fmt.Errorf("no used_memory in INFO memory")
}

// simTransport serves requests with the simulator's handler in this
// process: no sockets, no latency.
type simTransport struct{ h http.Handler }

func (t simTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, req)
	resp := rec.Result()
	resp.Request = req
	return resp, nil
}

// clients returns a worker.ClientFunc with one Unipile client on the
// in-process simulator.
func clients(sim *simulator.Simulator) (worker.ClientFunc, error) {
	c, err := unipile.New(unipile.Config{BaseURL: "http://simulator.invalid", APIKey: simulator.DefaultUnipileAPIKey,
		Transport: simTransport{sim}, Timeout: 10 * time.Second})
	if err != nil {
		return nil, err
	}
	return func(p provider.Name, _ string) (provider.Client, error) {
		if p != provider.Unipile {
			return nil, fmt.Errorf("bench: no client for %s", p)
		}
		return c, nil
	}, nil
}

// outcomes counts the worker's recorded outcomes and signals each one.
type outcomes struct {
	sent, other atomic.Int64
	each        chan struct{} // nil: no signal
}

func (o *outcomes) Outcome(_, _, outcome, _ string) {
	if outcome == string(store.TargetSent) {
		o.sent.Add(1)
	} else {
		o.other.Add(1)
	}
	if o.each != nil {
		select {
		case o.each <- struct{}{}:
		default:
		}
	}
}

func (o *outcomes) AccountPaused(_, _, _ string) {}

// pipeline is a scheduler and worker servers running in this process,
// each with its own connection pool, as separate processes would have:
// the system the commands run, built by internal/system.
type pipeline struct{ sys *system.System }

type pipelineConfig struct {
	dsn         string
	sim         *simulator.Simulator
	sched       scheduler.Config // Store, Redis and Logger are filled in
	workers     int
	concurrency int
	metrics     worker.Metrics
}

func (e *env) startPipeline(ctx context.Context, pc pipelineConfig) (*pipeline, error) {
	cl, err := clients(pc.sim)
	if err != nil {
		return nil, err
	}
	sc := pc.sched
	sys, err := system.New(ctx, system.Config{
		OpenStore: func(ctx context.Context) (*store.Store, error) { return store.Open(ctx, pc.dsn) },
		Redis:     e.rdb, Logger: e.cfg.Logger,
		Scheduler: &sc,
		Workers:   max(pc.workers, 1),
		Worker:    worker.Config{Clients: cl, Metrics: pc.metrics, RequestTimeout: 10 * time.Second},
		Server:    worker.ServerConfig{Concurrency: pc.concurrency, ShutdownTimeout: 10 * time.Second},
	})
	if err != nil {
		return nil, err
	}
	if err := sys.Run(ctx); err != nil {
		return nil, err
	}
	return &pipeline{sys: sys}, nil
}

func (p *pipeline) stop() { p.sys.Close() }

// seedPool opens a pool on the scenario's database for seeding and
// checking rows in bulk (benchdb; the store exports no pool). The caller
// closes it.
func seedPool(ctx context.Context, dsn string) (*benchdb.DB, error) {
	return benchdb.Open(ctx, dsn)
}

// seedAccounts inserts n accounts named acct-1… with the windows as
// invite limits, and a campaign each; it returns the campaign ids in
// account order. The accounts opt out of the provider's default pacing
// (pacing 'unlimited'): the benchmarks measure the pipeline and the
// windows alone.
func seedAccounts(ctx context.Context, db *benchdb.DB, n int, windows []Window) ([]int64, error) {
	ws := make([]benchdb.Window, len(windows))
	for i, w := range windows {
		ws[i] = benchdb.Window{Max: w.Max, Per: w.Per}
	}
	return db.SeedAccounts(ctx, n, ws)
}

// seedTargets inserts n targets spread round-robin over the campaigns,
// identified by LinkedIn member ids (no lookup needed). With resolved they
// are inserted already normalised, as after the scheduler's first pass.
func seedTargets(ctx context.Context, db *benchdb.DB, campaigns []int64, n int, resolved bool, tag string) error {
	return db.SeedTargets(ctx, campaigns, n, resolved, tag)
}
