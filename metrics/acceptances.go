package metrics

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/outreach-dev/outreach/inbound"
	"github.com/outreach-dev/outreach/store"
	"github.com/outreach-dev/outreach/worker"
)

var (
	_ worker.PollMetrics = (*Metrics)(nil)
	_ inbound.Metrics    = (*Metrics)(nil)
)

// acceptanceCounters count acceptances, polls and inbound webhooks as they
// happen (worker.PollMetrics, inbound.Metrics).
type acceptanceCounters struct {
	accepted *prometheus.CounterVec
	polls    *prometheus.CounterVec
	webhooks *prometheus.CounterVec
}

func newAcceptanceCounters(reg *prometheus.Registry) *acceptanceCounters {
	c := &acceptanceCounters{
		accepted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "outreach_acceptances_total",
			Help: "Invitations recorded as accepted, by provider, account and how they were first seen (poll, webhook).",
		}, []string{"provider", "account", "via"}),
		polls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "outreach_relation_polls_total",
			Help: "Relation polls, by provider, account and outcome (polled, refused, error, unhealthy: the account is not running, deferred: its pacing said not now).",
		}, []string{"provider", "account", "outcome"}),
		webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "outreach_webhooks_received_total",
			Help: "Provider webhooks received, by source (users, account_status, unknown) and result (accepted, duplicate, ignored, error; refused: unauthenticated, too_large, malformed, method).",
		}, []string{"source", "result"}),
	}
	reg.MustRegister(c.accepted, c.polls, c.webhooks)
	return c
}

// Accepted counts acceptances recorded (worker.PollMetrics).
func (m *Metrics) Accepted(provider, account, via string, n int) {
	m.acc.accepted.WithLabelValues(provider, account, via).Add(float64(n))
}

// Poll counts a relation poll (worker.PollMetrics).
func (m *Metrics) Poll(provider, account, outcome string) {
	m.acc.polls.WithLabelValues(provider, account, outcome).Inc()
}

// Webhook counts an inbound webhook (inbound.Metrics).
func (m *Metrics) Webhook(source, result string) {
	m.acc.webhooks.WithLabelValues(source, result).Inc()
}

var (
	acceptSentDesc = prometheus.NewDesc("outreach_invitations_sent",
		"Sent invitations, by scope (account, campaign, template), account, campaign and template number (in `outreach status`).",
		[]string{"scope", "account", "campaign", "template"}, nil)
	acceptAcceptedDesc = prometheus.NewDesc("outreach_invitations_accepted",
		"Sent invitations accepted, by scope (account, campaign, template), account, campaign and template number.",
		[]string{"scope", "account", "campaign", "template"}, nil)
	acceptRateDesc = prometheus.NewDesc("outreach_acceptance_rate",
		"Accepted over sent invitations, by scope (account, campaign, template), account, campaign and template number.",
		[]string{"scope", "account", "campaign", "template"}, nil)
)

// rateCollector reads acceptance rates from Postgres at scrape time, at
// most once per every: the rates count every sent target (a whole-table
// aggregate: about 0.12 s at a million targets), change slowly, and every
// process with metrics serves them.
type rateCollector struct {
	st      *store.Store
	timeout time.Duration
	every   time.Duration
	now     func() time.Time
	mu      sync.Mutex
	readAt  time.Time // zero before the first read
	rates   []store.AcceptanceRate
}

// NewAcceptanceCollector returns a collector of the acceptance rates per
// account, campaign and message template (numbered in the order of
// `outreach status`: template texts never become labels), read from st
// with the given timeout (default 5 s) at a scrape, and kept for every
// (default 1 minute): scrapes in between get the same figures.
func NewAcceptanceCollector(st *store.Store, timeout, every time.Duration) prometheus.Collector {
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	if every <= 0 {
		every = time.Minute
	}
	return &rateCollector{st: st, timeout: timeout, every: every, now: time.Now}
}

func (c *rateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- acceptSentDesc
	ch <- acceptAcceptedDesc
	ch <- acceptRateDesc
}

// read returns the rates, read again when the last read is every old (a
// failed read serves nothing and is tried again at the next scrape).
func (c *rateCollector) read() ([]store.AcceptanceRate, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if !c.readAt.IsZero() && now.Sub(c.readAt) < c.every {
		return c.rates, true
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	rates, err := c.st.AcceptanceRates(ctx)
	if err != nil {
		return nil, false
	}
	c.rates, c.readAt = rates, now
	return rates, true
}

func (c *rateCollector) Collect(ch chan<- prometheus.Metric) {
	rates, ok := c.read()
	if !ok {
		return
	}
	tmpl := 0
	for _, r := range rates {
		labels := []string{string(r.Scope), r.Account, r.Campaign, ""}
		if r.Scope == store.RateTemplate {
			tmpl++
			labels[3] = strconv.Itoa(tmpl)
		}
		ch <- prometheus.MustNewConstMetric(acceptSentDesc, prometheus.GaugeValue, float64(r.Sent), labels...)
		ch <- prometheus.MustNewConstMetric(acceptAcceptedDesc, prometheus.GaugeValue, float64(r.Accepted), labels...)
		ch <- prometheus.MustNewConstMetric(acceptRateDesc, prometheus.GaugeValue, r.Rate, labels...)
	}
}
