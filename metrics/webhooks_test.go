package metrics_test

import (
	"context"
	"strings"
	"testing"

	"github.com/outreach-dev/outreach/internal/testenv"
	"github.com/outreach-dev/outreach/metrics"
	"github.com/outreach-dev/outreach/store/storetest"
)

// A failing webhook subscriber shows in the metrics by its id, never by
// its URL.
func TestWebhookMetrics(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, db := testenv.StoreDB(t)
	id, err := st.AddWebhook(ctx, "https://hooks.example.com/p?token=tok-metrics", "whsec_0123456789abcdef")
	if err != nil {
		t.Fatal(err)
	}
	storetest.MarkWebhookFailing(t, db, id, storetest.WebhookFailure{Attempts: 4, LastError: "HTTP 500", Delivered: 7})
	h, err := metrics.New().HandlerWith(metrics.NewWebhookCollector(st, 0))
	if err != nil {
		t.Fatal(err)
	}
	body := scrape(t, h)
	for _, want := range []string{
		`outreach_webhook_failing{webhook="1"} 1`,
		`outreach_webhook_attempts{webhook="1"} 4`,
		`outreach_webhook_delivered_events_total{webhook="1"} 7`,
		`outreach_webhook_scrape_success 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if strings.Contains(body, "tok-metrics") || strings.Contains(body, "hooks.example.com") {
		t.Error("metrics hold the subscriber's URL")
	}
}
