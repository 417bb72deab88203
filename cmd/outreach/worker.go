package main

import (
	"context"

	"github.com/outreach-dev/outreach/internal/system"
	"github.com/outreach-dev/outreach/metrics"
	"github.com/outreach-dev/outreach/worker"
)

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
	m := metrics.New()
	sys, err := system.New(ctx, system.Config{
		Store: st, Redis: rdb, Logger: env.Logger, Workers: 1,
		Worker: worker.Config{Clients: env.Client, RequestTimeout: env.Timeout, Metrics: m},
		Server: worker.ServerConfig{Concurrency: *concurrency},
	})
	if err != nil {
		return err
	}
	defer sys.Close()
	reportCredentials(ctx, env, sys.Workers[0])
	stopMetrics, err := serveMetrics(ctx, env, *metricsAddr, m, rdb, st)
	if err != nil {
		return err
	}
	defer stopMetrics()
	stopDash, err := serveDashboard(ctx, env, *dashboardAddr, dashboardOptions{})
	if err != nil {
		return err
	}
	defer stopDash()
	if err := sys.Run(ctx); err != nil {
		return err
	}
	env.Logger.InfoContext(ctx, "worker started", "concurrency", *concurrency)
	<-ctx.Done()
	env.Logger.InfoContext(context.WithoutCancel(ctx), "stopping: finishing the calls in flight")
	sys.Close()
	env.Logger.InfoContext(context.WithoutCancel(ctx), "worker stopped")
	return nil
}
