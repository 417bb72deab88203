package main

import (
	"context"

	"github.com/redis/go-redis/v9"

	"github.com/outreach-dev/outreach/scheduler"
	"github.com/outreach-dev/outreach/store"
	"github.com/outreach-dev/outreach/worker"
)

// These hooks are filled in by the metrics and dashboard work (issue 5):
// until then, the flags that use them refuse to start.

type dashboardOptions struct{}

func schedulerMetrics() scheduler.Metrics { return nil }
func workerMetrics() worker.Metrics       { return nil }

func serveMetrics(ctx context.Context, env *Env, addr string, rdb redis.UniversalClient, st *store.Store) (func(), error) {
	if addr != "" {
		return nil, usagef("--metrics-addr is not available in this build")
	}
	return func() {}, nil
}

func serveDashboard(ctx context.Context, env *Env, addr string, o dashboardOptions) (func(), error) {
	if addr != "" {
		return nil, usagef("--dashboard-addr is not available in this build")
	}
	return func() {}, nil
}
