// Package metrics exposes outreach's Prometheus metrics: asynq's queue
// metrics, the workers' outcomes and account pauses, the scheduler's lag,
// tick duration and resolve cache hits, and every account's remaining
// budget read from Postgres at scrape time.
//
// Labels hold provider names, account names, outcomes, error types and
// queue names only: never credentials, identifiers of people or payloads.
package metrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/outreach-dev/outreach/scheduler"
)

// Metrics holds one process's collectors. It implements worker.Metrics and
// scheduler.Metrics; pass it as their Config.Metrics. The zero value is
// not usable; call New.
type Metrics struct {
	reg       *prometheus.Registry
	outcomes  *prometheus.CounterVec
	pauses    *prometheus.CounterVec
	cacheHits prometheus.Counter
	prepared  *prometheus.CounterVec
	enqueued  prometheus.Counter
	failed    prometheus.Counter
	lag       prometheus.Gauge
	tick      prometheus.Histogram
	held      prometheus.Gauge
	retries   prometheus.Counter
	acc       *acceptanceCounters // acceptances.go
}

// New returns Metrics with its own registry, holding the project's
// collectors and Go's process and runtime collectors.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "outreach_outcomes_total",
			Help: "Answers handled by the workers, by provider, account, outcome (sent, deferred, failed, skipped, retried, resolved) and error type (empty on success).",
		}, []string{"provider", "account", "outcome", "error_type"}),
		pauses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "outreach_account_pauses_total",
			Help: "Accounts paused or disabled by the workers, by provider, account and reason kind (the error type, or disabled).",
		}, []string{"provider", "account", "kind"}),
		cacheHits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "outreach_resolve_cache_hits_total",
			Help: "New targets whose identifier was resolved from the people cache, with no lookup call.",
		}),
		prepared: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "outreach_scheduler_prepared_total",
			Help: "New targets the scheduler normalised, by result (resolved from cache, need_lookup, skipped, failed).",
		}, []string{"result"}),
		enqueued: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "outreach_scheduler_enqueued_total",
			Help: "Tasks the scheduler put into Redis.",
		}),
		failed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "outreach_scheduler_failed_total",
			Help: "Targets the scheduler failed while claiming them (message too long, bad template).",
		}),
		lag: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "outreach_scheduler_lag_seconds",
			Help: "How late the most overdue target enqueued in the last tick was.",
		}),
		tick: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "outreach_scheduler_tick_duration_seconds",
			Help:    "How long one planning tick took.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12),
		}),
		held: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "outreach_answers_held",
			Help: "Provider answers a worker holds because recording them in Postgres failed so far (retried with backoff).",
		}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "outreach_answer_record_retries_total",
			Help: "Failed attempts to record a provider answer in Postgres, each retried.",
		}),
	}
	m.reg.MustRegister(m.outcomes, m.pauses, m.cacheHits, m.prepared, m.enqueued, m.failed, m.lag, m.tick, m.held, m.retries,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.acc = newAcceptanceCounters(m.reg)
	return m
}

// Register adds a collector, such as NewBudgetCollector's or
// NewQueueCollector's, to the registry.
func (m *Metrics) Register(c prometheus.Collector) error { return m.reg.Register(c) }

// Registry returns the registry, for tests and extra collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in Prometheus's text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// HandlerWith serves the registry together with extra collectors kept in a
// registry of their own, so that several servers of one process (a test
// running the command twice) share the counters but not the collectors of
// a store or Redis that one of them closed.
func (m *Metrics) HandlerWith(extra ...prometheus.Collector) (http.Handler, error) {
	local := prometheus.NewRegistry()
	for _, c := range extra {
		if err := local.Register(c); err != nil {
			return nil, err
		}
	}
	g := prometheus.Gatherers{m.reg, local}
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{Registry: local}), nil
}

// Outcome counts one answer handled by a worker (worker.Metrics).
func (m *Metrics) Outcome(provider, account, outcome, errorType string) {
	m.outcomes.WithLabelValues(provider, account, outcome, errorType).Inc()
}

// AccountPaused counts an account pause or disable (worker.Metrics).
// An empty kind is counted as "other".
func (m *Metrics) AccountPaused(provider, account, kind string) {
	if kind == "" {
		kind = "other"
	}
	m.pauses.WithLabelValues(provider, account, kind).Inc()
}

// AnswersHeld adds delta to the answers held unrecorded (worker.RecordMetrics).
func (m *Metrics) AnswersHeld(delta int) { m.held.Add(float64(delta)) }

// RecordRetry counts a failed attempt to record an answer (worker.RecordMetrics).
func (m *Metrics) RecordRetry() { m.retries.Inc() }

// Tick records one scheduler tick (scheduler.Metrics).
func (m *Metrics) Tick(st scheduler.TickStats) {
	m.tick.Observe(st.Duration.Seconds())
	m.lag.Set(st.Lag.Seconds())
	m.enqueued.Add(float64(st.Enqueued))
	m.failed.Add(float64(st.Failed))
	m.cacheHits.Add(float64(st.Prepared.CacheHits))
	for result, n := range map[string]int{
		"resolved": st.Prepared.Resolved, "need_lookup": st.Prepared.NeedLookup,
		"skipped": st.Prepared.Skipped, "failed": st.Prepared.Failed,
	} {
		if n > 0 {
			m.prepared.WithLabelValues(result).Add(float64(n))
		}
	}
}
