package inbound_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/outreach-dev/outreach/inbound"
	"github.com/outreach-dev/outreach/internal/testenv"
	"github.com/outreach-dev/outreach/provider/simulator"
	"github.com/outreach-dev/outreach/store"
	"github.com/outreach-dev/outreach/store/storetest"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const secret = "whsec-inbound-test-91c2"

type counts struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *counts) Webhook(source, result string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n[source+"/"+result]++
}

// setup makes a Unipile account "u1" with one sent target (the simulator's
// person ann-a) and serves the handler.
func setup(t *testing.T) (*store.Store, *httptest.Server, *counts, int64, int64) {
	t.Helper()
	st, db := testenv.StoreDB(t)
	ctx := context.Background()
	acc, err := st.CreateAccount(ctx, store.NewAccount{Name: "acc", Provider: "unipile", ProviderAccountID: "u1", Pacing: store.PacingUnlimited})
	if err != nil {
		t.Fatal(err)
	}
	camp, err := st.CreateCampaign(ctx, store.Campaign{Name: "c", AccountID: acc})
	if err != nil {
		t.Fatal(err)
	}
	target := storetest.AddSentTarget(t, db, camp, "ann-a", simulator.ProviderID("ann-a"))
	c := &counts{n: map[string]int{}}
	h, err := inbound.NewUnipile(inbound.UnipileConfig{Store: st, Secret: secret, Metrics: c, MaxBody: 4096})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return st, srv, c, acc, target
}

func post(t *testing.T, url, method, header, value, body string) int {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if header != "" {
		req.Header.Set(header, value)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

// TestWebhookRefusesBadRequestsAndChangesNothing: unauthenticated, wrongly
// authenticated, oversized, malformed and non-POST requests are refused,
// counted, and change nothing; then the right one is recorded once.
func TestWebhookRefusesBadRequestsAndChangesNothing(t *testing.T) {
	t.Parallel()
	st, srv, c, acc, _ := setup(t)
	ctx := context.Background()
	relation := string(simulator.WebhookEvent{Kind: simulator.WebhookNewRelation, Account: "u1",
		ProviderID: simulator.ProviderID("ann-a"), PublicID: "ann-a"}.Body("Ann A"))
	down := `{"AccountStatus":{"account_id":"u1","account_type":"LINKEDIN","message":"CREDENTIALS"}}`
	for _, tc := range []struct {
		name, method, header, value, body string
		want                              int
		result                            string
	}{
		{"no header", http.MethodPost, "", "", relation, 401, "unauthenticated"},
		{"no header, account down", http.MethodPost, "", "", down, 401, "unauthenticated"},
		{"wrong secret", http.MethodPost, inbound.DefaultHeader, secret + "x", relation, 401, "unauthenticated"},
		{"secret prefix", http.MethodPost, inbound.DefaultHeader, secret[:len(secret)-1], down, 401, "unauthenticated"},
		{"secret in another header", http.MethodPost, "X-Api-Key", secret, relation, 401, "unauthenticated"},
		{"empty secret", http.MethodPost, inbound.DefaultHeader, "", down, 401, "unauthenticated"},
		{"oversized", http.MethodPost, inbound.DefaultHeader, secret, `{"event":"new_relation","pad":"` + strings.Repeat("x", 5000) + `"}`, 413, "too_large"},
		{"not JSON", http.MethodPost, inbound.DefaultHeader, secret, `event=new_relation`, 400, "malformed"},
		{"JSON array", http.MethodPost, inbound.DefaultHeader, secret, `[` + relation + `]`, 400, "malformed"},
		{"truncated", http.MethodPost, inbound.DefaultHeader, secret, relation[:len(relation)/2], 400, "malformed"},
		{"two objects", http.MethodPost, inbound.DefaultHeader, secret, relation + relation, 400, "malformed"},
		{"relation without user", http.MethodPost, inbound.DefaultHeader, secret, `{"event":"new_relation","account_id":"u1"}`, 400, "malformed"},
		{"status without account", http.MethodPost, inbound.DefaultHeader, secret, `{"AccountStatus":{"message":"CREDENTIALS"}}`, 400, "malformed"},
		{"GET", http.MethodGet, inbound.DefaultHeader, secret, "", 405, "method"},
	} {
		if got := post(t, srv.URL, tc.method, tc.header, tc.value, tc.body); got != tc.want {
			t.Errorf("%s: HTTP %d, want %d", tc.name, got, tc.want)
		}
	}
	c.mu.Lock()
	if got := c.n["unknown/unauthenticated"]; got != 6 {
		t.Errorf("unauthenticated counted %d times, want 6 (%v)", got, c.n)
	}
	if c.n["unknown/too_large"] != 1 || c.n["unknown/malformed"] != 6 || c.n["unknown/method"] != 1 {
		t.Errorf("refusals counted %v", c.n)
	}
	c.mu.Unlock()
	a, err := st.Account(ctx, acc)
	if err != nil {
		t.Fatal(err)
	}
	if a.Status != store.AccountActive {
		t.Errorf("account %s after refused requests, want active", a.Status)
	}
	if n := acceptedCount(t, st, acc); n != 0 {
		t.Fatalf("%d acceptances after refused requests, want 0", n)
	}
	// The authenticated webhook is recorded, once however often it comes.
	for i := 0; i < 3; i++ {
		if got := post(t, srv.URL, http.MethodPost, inbound.DefaultHeader, secret, relation); got != 200 {
			t.Fatalf("authenticated webhook: HTTP %d", got)
		}
	}
	if n := acceptedCount(t, st, acc); n != 1 {
		t.Errorf("%d acceptances, want 1", n)
	}
	c.mu.Lock()
	if c.n["users/accepted"] != 1 || c.n["users/duplicate"] != 2 {
		t.Errorf("counted %v, want 1 accepted and 2 duplicates", c.n)
	}
	c.mu.Unlock()
	// Account status: down pauses, RECONNECTED resumes.
	if got := post(t, srv.URL, http.MethodPost, inbound.DefaultHeader, secret, down); got != 200 {
		t.Fatalf("status webhook: HTTP %d", got)
	}
	if a, _ := st.Account(ctx, acc); a.Status != store.AccountPaused || !strings.HasPrefix(a.PauseReason, store.HealthPausePrefix) {
		t.Errorf("after CREDENTIALS: %s %q, want paused for its health", a.Status, a.PauseReason)
	}
	up := strings.Replace(down, "CREDENTIALS", "RECONNECTED", 1)
	if got := post(t, srv.URL, http.MethodPost, inbound.DefaultHeader, secret, up); got != 200 {
		t.Fatalf("status webhook: HTTP %d", got)
	}
	if a, _ := st.Account(ctx, acc); a.Status != store.AccountActive {
		t.Errorf("after RECONNECTED: %s %q, want active", a.Status, a.PauseReason)
	}
}

func acceptedCount(t *testing.T, st *store.Store, acc int64) int {
	t.Helper()
	rates, err := st.AcceptanceRates(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range rates {
		if r.AccountID == acc && r.Scope == store.RateAccount {
			n += r.Accepted
		}
	}
	return n
}

func TestNewUnipileRefusesEmptySecret(t *testing.T) {
	t.Parallel()
	st, _ := testenv.Store(t)
	if _, err := inbound.NewUnipile(inbound.UnipileConfig{Store: st, Secret: "  "}); err == nil {
		t.Error("an empty secret was accepted")
	}
}
