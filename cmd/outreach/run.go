package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/outreach-dev/outreach/provider/simulator"
	"github.com/outreach-dev/outreach/scheduler"
	"github.com/outreach-dev/outreach/store"
	"github.com/outreach-dev/outreach/worker"
)

func init() {
	register(&command{name: "migrate", summary: "apply the database migrations (safe to repeat)", run: runMigrate})
	register(&command{name: "scheduler", summary: "plan send slots and enqueue due targets (long-running)", run: runScheduler})
	register(&command{name: "worker", summary: "send invitations from the queue (long-running)", run: runWorker})
	register(&command{name: "simulate", summary: "serve a simulator of the Unipile, Partoo and Altegio APIs", run: runSimulate})
}

func runMigrate(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "migrate", "migrate\n\nApplies the embedded SQL migrations to DATABASE_URL. Running it again applies nothing.")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	applied, err := store.Migrate(ctx, env.DatabaseURL)
	for _, m := range applied {
		fmt.Fprintf(env.Stdout, "applied %s (%.2fs)\n", m.Name, m.Seconds)
	}
	if err != nil {
		return err
	}
	cur, _, err := store.SchemaVersion(ctx, env.DatabaseURL)
	if err != nil {
		return err
	}
	if len(applied) == 0 {
		fmt.Fprintf(env.Stdout, "database is up to date (version %d)\n", cur)
	} else {
		fmt.Fprintf(env.Stdout, "database migrated to version %d\n", cur)
	}
	return nil
}

func runScheduler(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "scheduler", "scheduler [flags]\n\nPlans each account's send slots and enqueues due targets into Redis.")
	horizon := fs.Duration("horizon", time.Minute, "how far ahead tasks are enqueued")
	poll := fs.Duration("poll", 2*time.Second, "fallback polling interval (notifications wake it at once)")
	reconcile := fs.Duration("reconcile", 30*time.Second, "how often lost tasks are looked for")
	metricsAddr := fs.String("metrics-addr", "", "serve Prometheus /metrics on this address (e.g. 127.0.0.1:9101)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	st, rdb, closeAll, err := openBackends(ctx, env, 8)
	if err != nil {
		return err
	}
	defer closeAll()
	s, err := scheduler.New(scheduler.Config{
		Store: st, Redis: rdb, Logger: env.Logger.With("component", "scheduler"),
		Horizon: *horizon, PollInterval: *poll, ReconcileInterval: *reconcile,
		RequestTimeout: env.Timeout, Metrics: schedulerMetrics(),
	})
	if err != nil {
		return err
	}
	stopMetrics, err := serveMetrics(ctx, env, *metricsAddr, rdb, st)
	if err != nil {
		return err
	}
	defer stopMetrics()
	return s.Run(ctx)
}

func runWorker(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "worker", "worker [flags]\n\nRuns the invite and lookup handlers. SIGTERM finishes the calls in flight, then exits.")
	concurrency := fs.Int("concurrency", 20, "tasks processed at once")
	metricsAddr := fs.String("metrics-addr", "", "serve Prometheus /metrics on this address (e.g. 127.0.0.1:9102)")
	dashboardAddr := fs.String("dashboard-addr", "", "also serve the dashboard on this address (e.g. 127.0.0.1:8080)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	// Up to a connection per handler, but at most 12: a handler waits for
	// a free one, Postgres' connections are few (100 by default) and
	// several workers share them. More did not speed up the benchmarks.
	st, rdb, closeAll, err := openBackends(ctx, env, min(*concurrency+4, 12))
	if err != nil {
		return err
	}
	defer closeAll()
	w, err := worker.New(worker.Config{
		Store: st, Clients: env.Client, Logger: env.Logger.With("component", "worker"),
		RequestTimeout: env.Timeout, Metrics: workerMetrics(),
	})
	if err != nil {
		return err
	}
	reportCredentials(ctx, env, w)
	srv := w.NewServer(rdb, worker.ServerConfig{Concurrency: *concurrency})
	stopMetrics, err := serveMetrics(ctx, env, *metricsAddr, rdb, st)
	if err != nil {
		return err
	}
	defer stopMetrics()
	stopDash, err := serveDashboard(ctx, env, *dashboardAddr, dashboardOptions{})
	if err != nil {
		return err
	}
	defer stopDash()
	if err := srv.Start(w.Mux()); err != nil {
		return fmt.Errorf("start worker: %w", err)
	}
	env.Logger.InfoContext(ctx, "worker started", "concurrency", *concurrency)
	<-ctx.Done()
	env.Logger.InfoContext(context.WithoutCancel(ctx), "stopping: finishing the calls in flight")
	srv.Shutdown()
	env.Logger.InfoContext(context.WithoutCancel(ctx), "worker stopped")
	return nil
}

func runSimulate(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "simulate", "simulate [flags]\n\nServes the Unipile, Partoo and Altegio APIs on one port, with limits and refusals, for tests and demos.")
	addr := fs.String("addr", "127.0.0.1:8089", "listen address")
	latency := fs.Duration("latency", 0, "delay of every answer")
	jitter := fs.Duration("jitter", 0, "extra random delay below this")
	errRate := fs.Float64("error-rate", 0, "share of requests answered with a transient error (0 to 1)")
	daily := fs.Int("daily-limit", 0, "invitations per account per day before limit_exceeded (0: none)")
	seed := fs.Uint64("seed", 1, "random seed")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg := simulator.Config{Latency: *latency, Jitter: *jitter, ErrorRate: *errRate, Seed: *seed}
	if k := os.Getenv("SIMULATOR_UNIPILE_API_KEY"); k != "" {
		cfg.UnipileAPIKeys = []string{k}
	}
	if k := os.Getenv("SIMULATOR_PARTOO_API_KEY"); k != "" {
		cfg.PartooAPIKeys = []string{k}
	}
	if k := os.Getenv("SIMULATOR_ALTEGIO_PARTNER_TOKEN"); k != "" {
		cfg.AltegioPartnerTokens = []string{k}
	}
	if k := os.Getenv("SIMULATOR_ALTEGIO_USER_TOKEN"); k != "" {
		cfg.AltegioUserTokens = []string{k}
	}
	if *daily > 0 {
		cfg.DefaultLimits = []simulator.Window{{Max: *daily, Per: 24 * time.Hour}}
	}
	sim := simulator.New(cfg)
	err := sim.ListenAndServe(ctx, *addr, func(a net.Addr) {
		env.Logger.InfoContext(ctx, "simulator listening", "addr", a.String())
		fmt.Fprintf(env.Stdout, "simulator listening on http://%s\n", a)
	})
	if errors.Is(err, http.ErrServerClosed) || ctx.Err() != nil {
		return nil
	}
	return err
}

// openBackends connects to Postgres (with a pool of poolSize unless
// DATABASE_URL says) and Redis, after checking the schema is migrated.
func openBackends(ctx context.Context, env *Env, poolSize int) (*store.Store, redis.UniversalClient, func(), error) {
	st, err := env.OpenStore(ctx, store.PoolSize(poolSize))
	if err != nil {
		return nil, nil, nil, err
	}
	if err := checkSchema(ctx, env); err != nil {
		st.Close()
		return nil, nil, nil, err
	}
	rdb, err := env.OpenRedis(ctx)
	if err != nil {
		st.Close()
		return nil, nil, nil, err
	}
	return st, rdb, func() { rdb.Close(); st.Close() }, nil
}

// checkSchema refuses to run against a database that is not migrated.
func checkSchema(ctx context.Context, env *Env) error {
	cur, latest, err := store.SchemaVersion(ctx, env.DatabaseURL)
	if err != nil {
		return err
	}
	if cur < latest {
		return fmt.Errorf("database schema is at version %d, this binary needs %d: run `outreach migrate` first", cur, latest)
	}
	return nil
}
