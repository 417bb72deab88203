package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/outreach-dev/outreach/report"
	"github.com/outreach-dev/outreach/store"
)

var (
	budgetLeftDesc = prometheus.NewDesc("outreach_account_budget_remaining",
		"Sends an account may still make in a rolling window now (max_count minus the ledger's rows in the window).",
		[]string{"provider", "account", "action", "window"}, nil)
	budgetMaxDesc = prometheus.NewDesc("outreach_account_budget_limit",
		"An account's limit for a window (account_limits.max_count).",
		[]string{"provider", "account", "action", "window"}, nil)
	accountStatusDesc = prometheus.NewDesc("outreach_account_status",
		"1 for an account's current status (active, paused, disabled), by provider and account.",
		[]string{"provider", "account", "status"}, nil)
	accountPausedUntilDesc = prometheus.NewDesc("outreach_account_paused_until_seconds",
		"Unix time until which a paused account waits.",
		[]string{"provider", "account"}, nil)
	budgetUpDesc = prometheus.NewDesc("outreach_budget_scrape_success",
		"1 if the budget query against Postgres succeeded during this scrape.", nil, nil)
)

// budgetCollector reads every account's windows from Postgres at scrape
// time: one query using the ledger's window index.
type budgetCollector struct {
	st      *store.Store
	timeout time.Duration
}

// NewBudgetCollector returns a collector of every account's status and
// remaining budget per limit window, read from st at each scrape with
// the given timeout (default 5 s).
func NewBudgetCollector(st *store.Store, timeout time.Duration) prometheus.Collector {
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	return &budgetCollector{st: st, timeout: timeout}
}

func (c *budgetCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- budgetLeftDesc
	ch <- budgetMaxDesc
	ch <- accountStatusDesc
	ch <- accountPausedUntilDesc
	ch <- budgetUpDesc
}

func (c *budgetCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	accounts, err := report.Accounts(ctx, c.st, "")
	if err != nil {
		ch <- prometheus.MustNewConstMetric(budgetUpDesc, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(budgetUpDesc, prometheus.GaugeValue, 1)
	for _, a := range accounts {
		for _, s := range []store.AccountStatus{store.AccountActive, store.AccountPaused, store.AccountDisabled} {
			v := 0.0
			if a.Status == string(s) {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(accountStatusDesc, prometheus.GaugeValue, v, a.Provider, a.Name, string(s))
		}
		if a.PausedUntil != nil && a.Status == string(store.AccountPaused) {
			ch <- prometheus.MustNewConstMetric(accountPausedUntilDesc, prometheus.GaugeValue,
				float64(a.PausedUntil.Unix()), a.Provider, a.Name)
		}
		for _, w := range a.Windows {
			ch <- prometheus.MustNewConstMetric(budgetLeftDesc, prometheus.GaugeValue, float64(w.Left), a.Provider, a.Name, w.Action, w.PerText)
			ch <- prometheus.MustNewConstMetric(budgetMaxDesc, prometheus.GaugeValue, float64(w.Max), a.Provider, a.Name, w.Action, w.PerText)
		}
	}
}
