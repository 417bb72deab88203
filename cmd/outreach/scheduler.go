package main

import (
	"context"
	"time"

	"github.com/outreach-dev/outreach/internal/system"
	"github.com/outreach-dev/outreach/metrics"
	"github.com/outreach-dev/outreach/scheduler"
)

func runScheduler(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "scheduler", "scheduler [flags]\n\nPlans each account's send slots and enqueues due targets into Redis.")
	horizon := fs.Duration("horizon", time.Minute, "how far ahead tasks are enqueued")
	poll := fs.Duration("poll", 2*time.Second, "fallback polling interval (notifications wake it at once)")
	reconcile := fs.Duration("reconcile", 30*time.Second, "how often lost tasks are looked for")
	batch := fs.Int("batch", scheduler.DefaultBatchMax, "most invitations per batch task, of one account or several whose slots fall within 100 ms (1: a task per target; docs/throughput.md)")
	metricsAddr := fs.String("metrics-addr", "", "serve Prometheus /metrics on this address (e.g. 127.0.0.1:9101)")
	webhooks := fs.Bool("webhooks", true, "deliver events to webhook_subscribers (docs/events.md) in a loop of its own")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	st, rdb, closeAll, err := openBackends(ctx, env, 8)
	if err != nil {
		return err
	}
	defer closeAll()
	m := metrics.New()
	sys, err := system.New(ctx, system.Config{
		Store: st, Redis: rdb, Logger: env.Logger,
		Scheduler: &scheduler.Config{
			Horizon: *horizon, PollInterval: *poll, ReconcileInterval: *reconcile,
			RequestTimeout: env.Timeout, Metrics: m, BatchMax: *batch,
		},
		Webhooks: webhookConfig(*webhooks),
	})
	if err != nil {
		return err
	}
	defer sys.Close()
	stopMetrics, err := serveMetrics(ctx, env, *metricsAddr, m, rdb, st)
	if err != nil {
		return err
	}
	defer stopMetrics()
	if err := sys.Run(ctx); err != nil {
		return err
	}
	<-ctx.Done()
	sys.Close()
	return nil
}
