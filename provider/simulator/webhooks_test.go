package simulator_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outreach-dev/outreach/provider/simulator"
)

// TestWebhooksNewRelationDropRepeat: each accepted invitation gives one
// new_relation webhook with the configured header, except those dropped;
// Repeat delivers duplicates; nothing is sent twice across deliveries.
func TestWebhooksNewRelationDropRepeat(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	sim := simulator.New(simulator.Config{Now: func() time.Time { return now }})
	sim.SetAcceptance(simulator.Acceptance{Probability: 1, Delay: time.Hour})
	var mu sync.Mutex
	got := map[string]int{}
	var statuses []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Unipile-Auth") != "s3cret" {
			t.Errorf("webhook without its header")
		}
		b, _ := io.ReadAll(r.Body)
		var body struct {
			Event          string `json:"event"`
			UserProviderID string `json:"user_provider_id"`
			AccountStatus  *struct {
				Message string `json:"message"`
			} `json:"AccountStatus"`
		}
		if err := json.Unmarshal(b, &body); err != nil {
			t.Errorf("body %s: %v", b, err)
		}
		mu.Lock()
		defer mu.Unlock()
		if body.AccountStatus != nil {
			statuses = append(statuses, body.AccountStatus.Message)
		} else {
			got[body.UserProviderID]++
		}
	}))
	defer srv.Close()
	srvSim := httptest.NewServer(sim)
	defer srvSim.Close()
	ids := invite(t, srvSim.URL, "acc", "ann-a", "bob-b", "cat-c")
	dropped := ids[1]
	sim.SetWebhook(simulator.Webhook{URL: srv.URL, Header: "Unipile-Auth", Value: "s3cret", Repeat: 1,
		Drop: func(e simulator.WebhookEvent) bool { return e.ProviderID == dropped }})
	ctx := context.Background()
	if rep, err := sim.DeliverWebhooks(ctx); err != nil || rep.Events != 0 {
		t.Fatalf("before acceptance: %+v, %v", rep, err)
	}
	now = now.Add(2 * time.Hour)
	rep, err := sim.DeliverWebhooks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Events != 3 || rep.Dropped != 1 || rep.Posts != 4 {
		t.Errorf("report %+v, want 3 events, 1 dropped, 4 posts", rep)
	}
	if rep, _ := sim.DeliverWebhooks(ctx); rep.Events != 0 {
		t.Errorf("second delivery sent %d events again", rep.Events)
	}
	if got[ids[0]] != 2 || got[ids[2]] != 2 || got[dropped] != 0 {
		t.Errorf("deliveries %v", got)
	}
	sim.SetAccountStatus("acc", simulator.StatusCredentials)
	sim.SetAccountStatus("acc", simulator.StatusOK)
	sim.DeliverWebhooks(ctx)
	if len(statuses) != 4 || statuses[0] != "CREDENTIALS" || statuses[2] != "RECONNECTED" {
		t.Errorf("account status webhooks %v", statuses)
	}
}

// invite resolves and invites each slug from account, returning the
// provider ids.
func invite(t *testing.T, base, account string, slugs ...string) []string {
	t.Helper()
	var ids []string
	for _, slug := range slugs {
		req, _ := http.NewRequest(http.MethodGet, base+"/api/v1/users/"+slug+"?account_id="+account, nil)
		req.Header.Set("X-API-KEY", simulator.DefaultUnipileAPIKey)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var p struct {
			ProviderID string `json:"provider_id"`
		}
		json.NewDecoder(res.Body).Decode(&p)
		res.Body.Close()
		body := `{"provider_id":"` + p.ProviderID + `","account_id":"` + account + `"}`
		req, _ = http.NewRequest(http.MethodPost, base+"/api/v1/users/invite", strings.NewReader(body))
		req.Header.Set("X-API-KEY", simulator.DefaultUnipileAPIKey)
		req.Header.Set("Content-Type", "application/json")
		res, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 200 && res.StatusCode != 201 {
			t.Fatalf("invite %s: HTTP %d", slug, res.StatusCode)
		}
		ids = append(ids, p.ProviderID)
	}
	return ids
}

// TestAcceptedInvitationIsARelation: once accepted, the person's profile
// reads as a first-degree relation and the invitation leaves the sent
// list.
func TestAcceptedInvitationIsARelation(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	sim := simulator.New(simulator.Config{Now: func() time.Time { return now }})
	sim.SetAcceptance(simulator.Acceptance{Probability: 1, Delay: time.Hour})
	srv := httptest.NewServer(sim)
	defer srv.Close()
	invite(t, srv.URL, "acc", "ann-a")
	get := func(path string) map[string]any {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		req.Header.Set("X-API-KEY", simulator.DefaultUnipileAPIKey)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var m map[string]any
		json.NewDecoder(res.Body).Decode(&m)
		return m
	}
	if p := get("/api/v1/users/ann-a?account_id=acc"); p["invitation"] == nil || p["is_relationship"] == true {
		t.Errorf("before acceptance: %v, want a pending invitation", p)
	}
	now = now.Add(2 * time.Hour)
	if p := get("/api/v1/users/ann-a?account_id=acc"); p["invitation"] != nil || p["is_relationship"] != true || p["network_distance"] != "FIRST_DEGREE" {
		t.Errorf("after acceptance: %v, want a first-degree relation", p)
	}
	if l := get("/api/v1/users/invite/sent?account_id=acc"); len(l["items"].([]any)) != 0 {
		t.Errorf("sent list after acceptance: %v, want empty", l["items"])
	}
	if l := get("/api/v1/users/relations?account_id=acc"); len(l["items"].([]any)) != 1 {
		t.Errorf("relations after acceptance: %v, want one", l["items"])
	}
}
