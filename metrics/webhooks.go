package metrics

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/outreach-dev/outreach/store"
)

var (
	webhookFailingDesc = prometheus.NewDesc("outreach_webhook_failing",
		"1 if a webhook subscriber's deliveries fail (failing_since is set), by subscriber id.",
		[]string{"webhook"}, nil)
	webhookAttemptsDesc = prometheus.NewDesc("outreach_webhook_attempts",
		"Failed tries of a subscriber's current delivery since its last success.",
		[]string{"webhook"}, nil)
	webhookFailingSinceDesc = prometheus.NewDesc("outreach_webhook_failing_since_seconds",
		"Unix time since which a subscriber's deliveries fail (0: they do not).",
		[]string{"webhook"}, nil)
	webhookDeliveredDesc = prometheus.NewDesc("outreach_webhook_delivered_events_total",
		"Events delivered to a subscriber (webhook_subscribers.delivered).",
		[]string{"webhook"}, nil)
	webhookUpDesc = prometheus.NewDesc("outreach_webhook_scrape_success",
		"1 if the webhook subscribers query against Postgres succeeded during this scrape.", nil, nil)
)

// webhookCollector reads the webhook subscribers' delivery state from
// Postgres at scrape time. Labels carry the subscriber's id, never its
// URL (which may hold a token).
type webhookCollector struct {
	st      *store.Store
	timeout time.Duration
}

// NewWebhookCollector returns a collector of each webhook subscriber's
// delivery state, read from st at each scrape with the given timeout
// (default 5 s).
func NewWebhookCollector(st *store.Store, timeout time.Duration) prometheus.Collector {
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	return &webhookCollector{st: st, timeout: timeout}
}

func (c *webhookCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- webhookFailingDesc
	ch <- webhookAttemptsDesc
	ch <- webhookFailingSinceDesc
	ch <- webhookDeliveredDesc
	ch <- webhookUpDesc
}

func (c *webhookCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	ws, err := c.st.Webhooks(ctx)
	if err != nil {
		ch <- prometheus.MustNewConstMetric(webhookUpDesc, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(webhookUpDesc, prometheus.GaugeValue, 1)
	for _, w := range ws {
		id := fmt.Sprint(w.ID)
		failing, since := 0.0, 0.0
		if !w.FailingSince.IsZero() {
			failing, since = 1, float64(w.FailingSince.Unix())
		}
		ch <- prometheus.MustNewConstMetric(webhookFailingDesc, prometheus.GaugeValue, failing, id)
		ch <- prometheus.MustNewConstMetric(webhookAttemptsDesc, prometheus.GaugeValue, float64(w.Attempts), id)
		ch <- prometheus.MustNewConstMetric(webhookFailingSinceDesc, prometheus.GaugeValue, since, id)
		ch <- prometheus.MustNewConstMetric(webhookDeliveredDesc, prometheus.CounterValue, float64(w.Delivered), id)
	}
}
