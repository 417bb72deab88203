package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/outreach-dev/outreach/store"
	"github.com/outreach-dev/outreach/store/storetest"
)

// TestStatusShowsAcceptanceRates: `status` and `status --json` give the
// acceptance rate per account, campaign and message template.
func TestStatusShowsAcceptanceRates(t *testing.T) {
	st := cliEnv(t)
	db := cliDB(t)
	ctx := context.Background()
	mustRun(t, "account", "add", "li-ann", "--provider", "unipile", "--provider-account-id", "u1")
	a, err := st.AccountByName(ctx, "li-ann")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ name, tmpl string }{{"spring", "Hi {{.FirstName}}"}, {"summer", "Hi {{.FirstName}}"}} {
		id, err := st.CreateCampaign(ctx, store.Campaign{Name: c.name, AccountID: a.ID, MessageTemplate: c.tmpl})
		if err != nil {
			t.Fatal(err)
		}
		// 4 sent per campaign; spring has 3 accepted, summer 1.
		accepted := map[string]int{"spring": 3, "summer": 1}[c.name]
		for i := 0; i < 4; i++ {
			var at *time.Time
			if i < accepted {
				a := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
				at = &a
			}
			storetest.AddAcceptedTarget(t, db, id, c.name+"-"+string(rune('a'+i)), at)
		}
	}
	out := mustRun(t, "status")
	for _, want := range []string{"ACCEPTANCES", "account li-ann", "50.0%  4 / 8", "campaign #1 spring", "75.0%  3 / 4",
		"25.0%  1 / 4", `template 1 "Hi {{.FirstName}}" (2 campaigns)`} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	out = mustRun(t, "status", "--json", "--campaign", "summer")
	var rep statusReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	var got []string
	for _, r := range rep.Acceptances {
		got = append(got, string(r.Scope)+":"+r.Campaign)
		if r.Scope == store.RateCampaign && (r.Sent != 4 || r.Accepted != 1 || r.Rate != 0.25) {
			t.Errorf("summer: %+v", r)
		}
	}
	if strings.Join(got, ",") != "account:,campaign:summer" {
		t.Errorf("status --json --campaign summer acceptances: %v", got)
	}
}
