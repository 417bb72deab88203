package metrics

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/outreach-dev/outreach/internal/testenv"
	"github.com/outreach-dev/outreach/store"
	"github.com/outreach-dev/outreach/store/storetest"
)

// TestAcceptanceRatesReadOncePerInterval: the acceptance rates count every
// sent target, so a scrape reads them from Postgres only when its last
// read is a minute old; scrapes in between serve the same figures.
func TestAcceptanceRatesReadOncePerInterval(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, db := testenv.StoreDB(t)
	acc, err := st.CreateAccount(ctx, store.NewAccount{Name: "li-alice", Provider: "unipile", ProviderAccountID: "a1"})
	if err != nil {
		t.Fatal(err)
	}
	camp, err := st.CreateCampaign(ctx, store.Campaign{Name: "c", AccountID: acc})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now().Add(-time.Hour)
	storetest.AddAcceptedTarget(t, db, camp, "a", &at)
	storetest.AddAcceptedTarget(t, db, camp, "b", nil)

	c := NewAcceptanceCollector(st, 0, time.Minute).(*rateCollector)
	clock := time.Now()
	c.now = func() time.Time { return clock }
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	rate := func() float64 {
		t.Helper()
		families, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range families {
			if f.GetName() != "outreach_acceptance_rate" {
				continue
			}
			for _, m := range f.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "scope" && l.GetValue() == "account" {
						return m.GetGauge().GetValue()
					}
				}
			}
		}
		t.Fatal("no outreach_acceptance_rate for the account")
		return 0
	}
	if r := rate(); r != 0.5 {
		t.Fatalf("rate = %v; want 0.5 (1 of 2)", r)
	}
	storetest.AddAcceptedTarget(t, db, camp, "c", &at)
	clock = clock.Add(59 * time.Second)
	if r := rate(); r != 0.5 {
		t.Errorf("rate %v within the minute; want the last read's 0.5", r)
	}
	clock = clock.Add(time.Second)
	if r := rate(); r != 2.0/3 {
		t.Errorf("rate %v a minute after the last read; want 2/3 read again", r)
	}
}
