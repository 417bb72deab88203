package simulator_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/outreach-dev/outreach/provider"
	"github.com/outreach-dev/outreach/provider/internal/contract"
	"github.com/outreach-dev/outreach/provider/simulator"
	"github.com/outreach-dev/outreach/provider/unipile"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2025, 3, 3, 9, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// call sends one raw request to the simulator and decodes the JSON answer.
func call(t *testing.T, h http.Handler, method, path string, header map[string]string, body string) (int, http.Header, map[string]any) {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	for k, v := range header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var out map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatalf("%s %s: answer is not a JSON object: %q", method, path, rec.Body.String())
	}
	return rec.Code, rec.Header(), out
}

var unipileKey = map[string]string{"X-API-KEY": simulator.DefaultUnipileAPIKey}

func TestUnipileCredentials(t *testing.T) {
	t.Parallel()
	sim := simulator.New(simulator.Config{UnipileAPIKeys: []string{"k1", "k2"}})
	tests := []struct {
		key      string
		status   int
		errorTyp string
	}{
		{"", 401, "errors/missing_credentials"},
		{simulator.DefaultUnipileAPIKey, 401, "errors/invalid_credentials"},
		{"k2", 200, ""},
	}
	for _, tt := range tests {
		h := map[string]string{}
		if tt.key != "" {
			h["X-API-KEY"] = tt.key
		}
		code, _, body := call(t, sim, "GET", "/api/v1/users/jane-doe?account_id=a", h, "")
		if code != tt.status || (tt.errorTyp != "" && body["type"] != tt.errorTyp) {
			t.Errorf("key %q: got %d %v; want %d %s", tt.key, code, body, tt.status, tt.errorTyp)
		}
	}
}

func TestUnipileInviteBodyChecks(t *testing.T) {
	t.Parallel()
	sim := simulator.New(simulator.Config{})
	pid := simulator.ProviderID("x")
	tests := []struct {
		body   string
		status int
		typ    string
	}{
		{`not json`, 400, "errors/malformed_request"},
		{`{"account_id":"a"}`, 400, "errors/missing_parameters"},
		{fmt.Sprintf(`{"account_id":"a","provider_id":%q,"message":%q}`, pid, strings.Repeat("ü", 301)), 400, "errors/too_many_characters"},
		{fmt.Sprintf(`{"account_id":"a","provider_id":%q,"user_email":"nope"}`, pid), 400, "errors/invalid_parameters"},
		{`{"account_id":"a","provider_id":"jane-doe"}`, 422, "errors/invalid_recipient"},
		{fmt.Sprintf(`{"account_id":"a","provider_id":%q,"message":%q}`, pid, strings.Repeat("ü", 300)), 200, ""},
	}
	for _, tt := range tests {
		code, _, body := call(t, sim, "POST", "/api/v1/users/invite", unipileKey, tt.body)
		if code != tt.status || (tt.typ != "" && body["type"] != tt.typ) {
			t.Errorf("body %.60s: got %d %v; want %d %s", tt.body, code, body, tt.status, tt.typ)
		}
	}
}

func TestSlugConventionsForInvites(t *testing.T) {
	t.Parallel()
	sim := simulator.New(simulator.Config{})
	tests := []struct {
		slug   string
		status int
		typ    string
	}{
		{"fail-blocked_recipient-x", 422, "errors/blocked_recipient"},
		{"fail-no_connection_with_recipient-y", 422, "errors/no_connection_with_recipient"},
		{"fail-not_a_type-z", 200, ""},
		{"connected-bob", 422, "errors/action_already_performed"},
		{"pending-carl", 422, "errors/already_invited_recently"},
		{"withdrawn-dora", 422, "errors/cannot_resend_yet"},
		{"unknown-eve", 404, "errors/resource_not_found"},
		{"plain-fred", 200, ""},
	}
	for _, tt := range tests {
		// Resolve first so that the provider id maps back to the slug.
		code, _, prof := call(t, sim, "GET", "/api/v1/users/"+tt.slug+"?account_id=a", unipileKey, "")
		pid, _ := prof["provider_id"].(string)
		if pid == "" {
			if code != 404 {
				t.Errorf("resolve %s: %d %v", tt.slug, code, prof)
			}
			pid = simulator.ProviderID(tt.slug)
		}
		code, _, body := call(t, sim, "POST", "/api/v1/users/invite", unipileKey,
			fmt.Sprintf(`{"account_id":"a","provider_id":%q}`, pid))
		if code != tt.status || (tt.typ != "" && body["type"] != tt.typ) {
			t.Errorf("invite %s: got %d %v; want %d %s", tt.slug, code, body, tt.status, tt.typ)
		}
	}
}

func TestProfilesAreDeterministic(t *testing.T) {
	t.Parallel()
	a := simulator.New(simulator.Config{})
	b := simulator.New(simulator.Config{Seed: 99})
	for _, slug := range []string{"jane-doe", "x", "jöhn-doe", "marie-claire-dupont-42"} {
		_, _, pa := call(t, a, "GET", "/api/v1/users/"+slug+"?account_id=a", unipileKey, "")
		_, _, pb := call(t, b, "GET", "/api/v1/users/"+slug+"?account_id=zz", unipileKey, "")
		if diff := cmp.Diff(pa, pb); diff != "" {
			t.Errorf("profile of %s differs between simulators (-a +b):\n%s", slug, diff)
		}
		if pa["provider_id"] != simulator.ProviderID(slug) || !unipile.IsProviderID(pa["provider_id"].(string)) {
			t.Errorf("profile of %s has provider id %v; want %s", slug, pa["provider_id"], simulator.ProviderID(slug))
		}
	}
	_, _, p := call(t, a, "GET", "/api/v1/users/marie-claire-dupont-42?account_id=a", unipileKey, "")
	if p["first_name"] != "Marie" || p["last_name"] != "Dupont" {
		t.Errorf("names from the slug: got %v %v; want Marie Dupont", p["first_name"], p["last_name"])
	}
}

func TestStrictAccountsAndAccountErrors(t *testing.T) {
	t.Parallel()
	sim := simulator.New(simulator.Config{Strict: true, Accounts: []simulator.Account{
		{Provider: provider.Unipile, ID: "ok"},
		{Provider: provider.Unipile, ID: "gone", Error: "disconnected_account"},
	}})
	code, _, body := call(t, sim, "GET", "/api/v1/users/jane?account_id=nope", unipileKey, "")
	if code != 404 || body["detail"] != "Account not found." {
		t.Errorf("unknown account in strict mode: %d %v", code, body)
	}
	code, _, body = call(t, sim, "GET", "/api/v1/users/jane?account_id=gone", unipileKey, "")
	if code != 401 || body["type"] != "errors/disconnected_account" {
		t.Errorf("disconnected account: %d %v", code, body)
	}
	if code, _, _ := call(t, sim, "GET", "/api/v1/users/jane?account_id=ok", unipileKey, ""); code != 200 {
		t.Errorf("registered account: %d", code)
	}
}

func TestScenarioFailsNTimes(t *testing.T) {
	t.Parallel()
	sim := simulator.New(simulator.Config{Scenarios: []simulator.Scenario{
		{Provider: provider.Unipile, RecipientPrefix: "ACoAAflaky", Error: "service_unavailable", Times: 2},
		{Provider: provider.Unipile, Op: "resolve", Recipient: "slow-sam", Error: "request_timeout"},
	}})
	body := `{"account_id":"a","provider_id":"ACoAAflaky0123456789012345"}`
	var got []int
	for range 3 {
		code, _, _ := call(t, sim, "POST", "/api/v1/users/invite", unipileKey, body)
		got = append(got, code)
	}
	if diff := cmp.Diff([]int{503, 503, 200}, got); diff != "" {
		t.Errorf("fail twice then succeed (-want +got):\n%s", diff)
	}
	if code, _, _ := call(t, sim, "GET", "/api/v1/users/slow-sam?account_id=a", unipileKey, ""); code != 504 {
		t.Errorf("resolve scenario: got %d; want 504", code)
	}
	sim.ClearScenarios()
	if code, _, _ := call(t, sim, "GET", "/api/v1/users/slow-sam?account_id=a", unipileKey, ""); code != 200 {
		t.Errorf("after ClearScenarios: got %d; want 200", code)
	}
}

func TestRandomErrorsAreSeeded(t *testing.T) {
	t.Parallel()
	run := func(seed uint64) []int {
		sim := simulator.New(simulator.Config{ErrorRate: 0.3, Seed: seed})
		var out []int
		for i := range 60 {
			code, _, _ := call(t, sim, "POST", "/api/v1/users/invite", unipileKey,
				fmt.Sprintf(`{"account_id":"a","provider_id":%q}`, simulator.ProviderID(fmt.Sprint(i))))
			out = append(out, code)
		}
		return out
	}
	a, b := run(7), run(7)
	if diff := cmp.Diff(a, b); diff != "" {
		t.Errorf("same seed, different answers:\n%s", diff)
	}
	fails := 0
	for _, c := range a {
		if c >= 500 {
			fails++
		}
	}
	if fails < 5 || fails > 35 {
		t.Errorf("%d of 60 failed at rate 0.3", fails)
	}
}

func TestLatencyUsesInjectedSleep(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var slept []time.Duration
	sim := simulator.New(simulator.Config{Latency: 200 * time.Millisecond, Jitter: 100 * time.Millisecond, Seed: 1,
		Sleep: func(ctx context.Context, d time.Duration) error {
			mu.Lock()
			slept = append(slept, d)
			mu.Unlock()
			return nil
		}})
	for range 5 {
		call(t, sim, "GET", "/api/v1/users/jane?account_id=a", unipileKey, "")
	}
	if len(slept) != 5 {
		t.Fatalf("slept %d times; want 5", len(slept))
	}
	for _, d := range slept {
		if d < 200*time.Millisecond || d >= 300*time.Millisecond {
			t.Errorf("latency %v outside [200ms, 300ms)", d)
		}
	}
}

func TestRecordAndChecks(t *testing.T) {
	t.Parallel()
	clk := newClock()
	sim := simulator.New(simulator.Config{Now: clk.Now})
	invite := func(acct, slug string) int {
		code, _, _ := call(t, sim, "POST", "/api/v1/users/invite", unipileKey,
			fmt.Sprintf(`{"account_id":%q,"provider_id":%q}`, acct, simulator.ProviderID(slug)))
		return code
	}
	for i := range 5 {
		invite("a", fmt.Sprint("p", i))
		clk.Advance(10 * time.Second)
	}
	invite("b", "p0")
	if got := len(sim.Invites("a")); got != 5 {
		t.Errorf("Invites(a) = %d; want 5", got)
	}
	if got := sim.SentCount(); got != 6 {
		t.Errorf("SentCount = %d; want 6", got)
	}
	if d := sim.DuplicateInvites(); len(d) != 0 {
		t.Errorf("DuplicateInvites = %v; want none (different accounts may invite the same person)", d)
	}
	// a sent at 0, 10, 20, 30 and 40 s: a span (t-30s, t] holds 3 at most.
	if got := sim.LimitViolations([]simulator.Window{{Max: 3, Per: 30 * time.Second}}); len(got) != 0 {
		t.Errorf("LimitViolations(3/30s) = %v; want none", got)
	}
	want := []simulator.Violation{{Provider: provider.Unipile, Account: "a",
		Window: simulator.Window{Max: 2, Per: 30 * time.Second}, At: clk.Now().Add(-30 * time.Second), Count: 3}}
	if diff := cmp.Diff(want, sim.LimitViolations([]simulator.Window{{Max: 2, Per: 30 * time.Second}})); diff != "" {
		t.Errorf("LimitViolations(2/30s) mismatch (-want +got):\n%s", diff)
	}
	reqs := sim.Requests()
	if len(reqs) != 6 || reqs[0].Seq != 1 || reqs[0].Outcome != simulator.OutcomeSent || reqs[0].Status != 200 || reqs[0].InvitationID == "" {
		t.Errorf("Requests() = %+v", reqs)
	}
	sim.Reset()
	if n := len(sim.Requests()); n != 0 {
		t.Errorf("after Reset, %d requests recorded", n)
	}
}

func TestLookupLimits(t *testing.T) {
	t.Parallel()
	sim := simulator.New(simulator.Config{DefaultLookupLimits: []simulator.Window{{Max: 2, Per: time.Hour}}})
	var got []int
	for i := range 3 {
		code, _, _ := call(t, sim, "GET", fmt.Sprintf("/api/v1/users/p%d?account_id=a", i), unipileKey, "")
		got = append(got, code)
	}
	if diff := cmp.Diff([]int{200, 200, 422}, got); diff != "" {
		t.Errorf("lookups over the limit (-want +got):\n%s", diff)
	}
}

func TestPartooAndAltegioBodies(t *testing.T) {
	t.Parallel()
	clk := newClock()
	sim := simulator.New(simulator.Config{Now: clk.Now})
	pk := map[string]string{"x-APIKey": simulator.DefaultPartooAPIKey}
	if code, _, body := call(t, sim, "POST", "/v2/user/u1/invite", pk, ""); code != 200 || body["status"] != "success" {
		t.Errorf("partoo invite: %d %v", code, body)
	}
	code, h, body := call(t, sim, "POST", "/v2/user/u1/invite", pk, "")
	if code != 429 || h.Get("Retry-After") != "300" || !strings.Contains(fmt.Sprint(body), "5 minutes") {
		t.Errorf("partoo five-minute rule: %d %v %v", code, h, body)
	}
	if code, _, body := call(t, sim, "POST", "/v2/user/u1/invite", nil, ""); code != 401 ||
		fmt.Sprint(body) != "map[errors:map[authentication:User not authenticated]]" {
		t.Errorf("partoo without key: %d %v", code, body)
	}

	ah := map[string]string{"Authorization": "Bearer " + simulator.DefaultAltegioPartnerToken + ", User " + simulator.DefaultAltegioUserToken,
		"Accept": "application/vnd.api.v2+json", "Content-Type": "application/json"}
	code, _, body = call(t, sim, "POST", "/api/v1/user/invite/123", ah, `{"invites":[{"name":"A","search":"a@b.co"}]}`)
	if code != 202 || body["success"] != true {
		t.Errorf("altegio invite: %d %v", code, body)
	}
	code, _, body = call(t, sim, "POST", "/api/v1/user/invite/abc", ah, `{"invites":[{"search":"a@b.co"}]}`)
	if code != 404 || fmt.Sprint(body["meta"]) != "[]" {
		t.Errorf("altegio bad location: %d %v", code, body)
	}
	code, _, body = call(t, sim, "POST", "/api/v1/user/invite/123", ah, `{"invites":[{"search":"x","user_role":"king"}]}`)
	if code != 422 || len(body["meta"].(map[string]any)["errors"].([]any)) != 2 {
		t.Errorf("altegio validation: %d %v", code, body)
	}
	ah["Authorization"] = "Bearer nope, User nope"
	if code, _, body = call(t, sim, "POST", "/api/v1/user/invite/123", ah, `{}`); code != 401 {
		t.Errorf("altegio bad tokens: %d %v", code, body)
	}
}

func TestRoutes(t *testing.T) {
	t.Parallel()
	sim := simulator.New(simulator.Config{})
	for _, tt := range []struct {
		method, path string
		status       int
	}{
		{"GET", "/nowhere", 404},
		{"GET", "/api/v1/users/invite", 405},
		{"POST", "/api/v1/users/jane", 405},
		{"GET", "/v2/user/u/invite", 405},
		{"POST", "/v2/user/u/other", 404},
		{"GET", "/api/v1/user/invite/1", 405},
	} {
		req := httptest.NewRequest(tt.method, tt.path, nil)
		rec := httptest.NewRecorder()
		sim.ServeHTTP(rec, req)
		if rec.Code != tt.status {
			t.Errorf("%s %s = %d; want %d", tt.method, tt.path, rec.Code, tt.status)
		}
	}
}

// TestConcurrentInvitesHoldLimits hammers one account from many
// goroutines through the client and checks the record.
func TestConcurrentInvitesHoldLimits(t *testing.T) {
	t.Parallel()
	sim := simulator.New(simulator.Config{DefaultLimits: []simulator.Window{{Max: 50, Per: time.Hour}}})
	srv := httptest.NewServer(sim)
	defer srv.Close()
	c, err := unipile.New(unipile.Config{BaseURL: srv.URL, APIKey: simulator.DefaultUnipileAPIKey,
		Transport: contract.NewTransport(t, srv.Client().Transport, contract.Unipile)})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 10 {
				c.Invite(context.Background(), provider.Invitation{AccountID: "busy", RecipientID: simulator.ProviderID(fmt.Sprint(g, "-", i))})
			}
		})
	}
	wg.Wait()
	if n := len(sim.Invites("busy")); n != 50 {
		t.Errorf("%d invites went through; want exactly the limit, 50", n)
	}
	if v := sim.LimitViolations([]simulator.Window{{Max: 50, Per: time.Hour}}); len(v) != 0 {
		t.Errorf("violations: %v", v)
	}
}

func TestListenAndServe(t *testing.T) {
	t.Parallel()
	sim := simulator.New(simulator.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() { done <- sim.ListenAndServe(ctx, "127.0.0.1:0", func(a net.Addr) { addrc <- a }) }()
	addr := <-addrc
	res, err := http.Get("http://" + addr.String() + "/_sim/healthz")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if string(b) != "ok\n" {
		t.Errorf("healthz = %q", b)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("ListenAndServe = %v; want nil after cancel", err)
	}
}

// BenchmarkInvite measures the simulator alone (no HTTP stack).
func BenchmarkInvite(b *testing.B) {
	sim := simulator.New(simulator.Config{})
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		req := httptest.NewRequest("POST", "/api/v1/users/invite", strings.NewReader(
			fmt.Sprintf(`{"account_id":"acc-%d","provider_id":"ACoAAbench%020d"}`, i%100, i)))
		req.Header.Set("X-API-KEY", simulator.DefaultUnipileAPIKey)
		rec := httptest.NewRecorder()
		sim.ServeHTTP(rec, req)
		if rec.Code != 200 {
			b.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	}
}
