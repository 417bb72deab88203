package main

import (
	"context"
	"net/http"

	"github.com/redis/go-redis/v9"

	"github.com/outreach-dev/outreach/metrics"
	"github.com/outreach-dev/outreach/store"
)

// serveMetrics serves /metrics on addr (nothing if addr is empty): the
// process's counters m (made by the command, shared with the scheduler or
// workers it runs), asynq's queue metrics read from rdb and the accounts'
// budgets read from st at scrape time.
func serveMetrics(ctx context.Context, env *Env, addr string, m *metrics.Metrics, rdb redis.UniversalClient, st *store.Store) (func(), error) {
	if addr == "" {
		return func() {}, nil
	}
	h, err := m.HandlerWith(metrics.NewQueueCollector(rdb), metrics.NewBudgetCollector(st, 0), metrics.NewAcceptanceCollector(st, 0, 0),
		metrics.NewWebhookCollector(st, 0))
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", h)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	if err := mountWebhooks(ctx, env, mux, st, m); err != nil {
		return nil, err
	}
	a, stop, err := serveHTTP(ctx, env, "metrics", addr, mux)
	if err != nil {
		return nil, err
	}
	env.Logger.InfoContext(ctx, "serving metrics", "url", "http://"+a.String()+"/metrics")
	return stop, nil
}
