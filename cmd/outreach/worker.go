package main

import (
	"context"
	"fmt"

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
