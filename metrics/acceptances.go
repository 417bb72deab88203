package metrics

import (
	"context"
	"strconv"
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

// rateCollector reads acceptance rates from Postgres at scrape time.
type rateCollector struct {
	st      *store.Store
	timeout time.Duration
}

// NewAcceptanceCollector returns a collector of the acceptance rates per
// account, campaign and message template (numbered in the order of
// `outreach status`: template texts never become labels), read from st
// at each scrape with the given timeout (default 5 s).
func NewAcceptanceCollector(st *store.Store, timeout time.Duration) prometheus.Collector {
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	return &rateCollector{st: st, timeout: timeout}
}

func (c *rateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- acceptSentDesc
	ch <- acceptAcceptedDesc
	ch <- acceptRateDesc
}

func (c *rateCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	rates, err := c.st.AcceptanceRates(ctx)
	if err != nil {
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
