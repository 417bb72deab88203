package partoo_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outreach-dev/outreach/provider"
	"github.com/outreach-dev/outreach/provider/internal/contract"
	"github.com/outreach-dev/outreach/provider/partoo"
	"github.com/outreach-dev/outreach/provider/simulator"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

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

func setup(t *testing.T, cfg simulator.Config, key string) (*partoo.Client, *simulator.Simulator, *clock) {
	t.Helper()
	clk := &clock{t: time.Date(2025, 3, 3, 9, 0, 0, 0, time.UTC)}
	cfg.Now = clk.Now
	sim := simulator.New(cfg)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	c, err := partoo.New(partoo.Config{BaseURL: srv.URL + "/v2", APIKey: key, Now: clk.Now,
		Transport: contract.NewTransport(t, srv.Client().Transport, contract.Partoo)})
	if err != nil {
		t.Fatal(err)
	}
	return c, sim, clk
}

func kindOf(t *testing.T, err error) *provider.Error {
	t.Helper()
	var pe *provider.Error
	if !errors.As(err, &pe) {
		t.Fatalf("got %v (%T); want a *provider.Error", err, err)
	}
	return pe
}

func TestInviteAgainstSimulator(t *testing.T) {
	t.Parallel()
	c, sim, clk := setup(t, simulator.Config{}, simulator.DefaultPartooAPIKey)
	ctx := context.Background()
	if _, err := c.Invite(ctx, provider.Invitation{RecipientID: "user-1"}); err != nil {
		t.Fatalf("Invite: %v", err)
	}
	clk.Advance(4 * time.Minute)
	_, err := c.Invite(ctx, provider.Invitation{RecipientID: "user-1"})
	pe := kindOf(t, err)
	if pe.Kind != provider.KindTooSoon || pe.Scope != provider.ScopeTarget || pe.RetryAfter != time.Minute {
		t.Fatalf("re-invite within 5 minutes: got %+v; want too soon for 1m", pe)
	}
	if _, err := c.Invite(ctx, provider.Invitation{RecipientID: "user-2"}); err != nil {
		t.Fatalf("another user is not held back: %v", err)
	}
	clk.Advance(time.Minute)
	if _, err := c.Invite(ctx, provider.Invitation{RecipientID: "user-1"}); err != nil {
		t.Fatalf("after 5 minutes: %v", err)
	}
	if n := len(sim.Invites(simulator.DefaultPartooAPIKey)); n != 3 {
		t.Errorf("simulator recorded %d invites; want 3", n)
	}

	for _, tt := range []struct {
		user  string
		kind  provider.Kind
		scope provider.Scope
	}{
		{"unknown-7", provider.KindNotFound, provider.ScopeTarget},
		{"forbidden-7", provider.KindRecipient, provider.ScopeTarget},
	} {
		_, err := c.Invite(ctx, provider.Invitation{RecipientID: tt.user})
		if pe := kindOf(t, err); pe.Kind != tt.kind || pe.Scope != tt.scope {
			t.Errorf("%s: got %+v; want %s/%s", tt.user, pe, tt.scope, tt.kind)
		}
	}
	_, err = c.Invite(ctx, provider.Invitation{})
	if pe := kindOf(t, err); pe.Kind != provider.KindBadInput {
		t.Errorf("empty user: got %+v; want bad input", pe)
	}
}

func TestSimulatorErrorsAgainstContract(t *testing.T) {
	t.Parallel()
	c, sim, _ := setup(t, simulator.Config{}, simulator.DefaultPartooAPIKey)
	ctx := context.Background()
	want := map[string]provider.Kind{
		"bad_request": provider.KindBadInput, "unauthorized": provider.KindConfig, "forbidden": provider.KindRecipient,
		"not_found": provider.KindNotFound, "too_soon": provider.KindTooSoon, "too_many_requests": provider.KindRateLimited,
		"server_error": provider.KindTransient, "service_unavailable": provider.KindTransient,
	}
	for typ, kind := range want {
		user := "u-" + typ
		sim.AddScenario(simulator.Scenario{Provider: provider.Partoo, Recipient: user, Error: typ, Times: 1})
		_, err := c.Invite(ctx, provider.Invitation{RecipientID: user})
		if pe := kindOf(t, err); pe.Kind != kind {
			t.Errorf("scenario %s: got %+v; want %s", typ, pe, kind)
		}
		if _, err := c.Invite(ctx, provider.Invitation{RecipientID: user}); err != nil {
			t.Errorf("scenario %s used once, then: %v", typ, err)
		}
	}
}

func TestBadKeyAndBurst(t *testing.T) {
	t.Parallel()
	c, _, _ := setup(t, simulator.Config{}, "not-a-valid-key")
	_, err := c.Invite(context.Background(), provider.Invitation{RecipientID: "u"})
	if pe := kindOf(t, err); pe.Kind != provider.KindConfig || pe.HTTPStatus != 401 {
		t.Errorf("bad key: got %+v; want 401 config (this process's key)", pe)
	}

	c, _, clk := setup(t, simulator.Config{DefaultBurst: simulator.Burst{Rate: 1, Size: 1}}, simulator.DefaultPartooAPIKey)
	if _, err := c.Invite(context.Background(), provider.Invitation{RecipientID: "u1"}); err != nil {
		t.Fatal(err)
	}
	_, err = c.Invite(context.Background(), provider.Invitation{RecipientID: "u2"})
	if pe := kindOf(t, err); pe.Kind != provider.KindRateLimited || pe.Scope != provider.ScopeAccount || pe.RetryAfter != time.Second {
		t.Errorf("burst: got %+v; want account rate limited for 1s", pe)
	}
	clk.Advance(time.Second)
	if _, err := c.Invite(context.Background(), provider.Invitation{RecipientID: "u2"}); err != nil {
		t.Errorf("after the burst: %v", err)
	}
}

// TestSpecErrorBodies replays the documented error bodies through the
// contract transport.
func TestSpecErrorBodies(t *testing.T) {
	t.Parallel()
	tests := []struct {
		status int
		body   string
		kind   provider.Kind
	}{
		{200, `{"status":"success"}`, ""},
		{401, `{"errors":{"authentication":"User not authenticated"}}`, provider.KindConfig},
		{403, `{"errors":{"authorization":"Operation not allowed"}}`, provider.KindRecipient},
		{404, `{"errors":{"json":"Resource not found"}}`, provider.KindNotFound},
		{200, `{"status":"failure"}`, provider.KindTransient},
	}
	for _, tt := range tests {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(tt.status)
			fmt.Fprint(w, tt.body)
		}))
		tr := contract.NewTransport(t, srv.Client().Transport, contract.Partoo)
		if tt.body == `{"status":"failure"}` {
			tr = nil // not the spec's shape on purpose
		}
		cfg := partoo.Config{BaseURL: srv.URL, APIKey: "test-key-123"}
		if tr != nil {
			cfg.Transport = tr
		}
		c, err := partoo.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Invite(context.Background(), provider.Invitation{RecipientID: "5f1a2b"})
		switch {
		case tt.kind == "" && err != nil:
			t.Errorf("%d %s: %v", tt.status, tt.body, err)
		case tt.kind != "":
			if pe := kindOf(t, err); pe.Kind != tt.kind {
				t.Errorf("%d %s: got %+v; want %s", tt.status, tt.body, pe, tt.kind)
			}
		}
		srv.Close()
	}
}

func TestBaseURL(t *testing.T) {
	t.Parallel()
	for _, base := range []string{"", "https://api.partoo.co", "https://api.partoo.co/", "https://api.partoo.co/v2", "api.partoo.co/v2/"} {
		var got string
		tr := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			got = r.Method + " " + r.URL.String() + " " + r.Header.Get("x-APIKey")
			return &http.Response{StatusCode: 200, Header: http.Header{}, Body: http.NoBody, Request: r}, nil
		})
		c, err := partoo.New(partoo.Config{BaseURL: base, APIKey: "key-1234", Transport: tr})
		if err != nil {
			t.Fatal(err)
		}
		c.Invite(context.Background(), provider.Invitation{RecipientID: "a/b"})
		if want := "POST https://api.partoo.co/v2/user/a%2Fb/invite key-1234"; got != want {
			t.Errorf("BaseURL %q: request %q; want %q", base, got, want)
		}
	}
	if _, err := partoo.New(partoo.Config{}); err == nil || !strings.Contains(err.Error(), "API key is required") {
		t.Errorf("New without key: %v", err)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

const secret = "partoo-SECRET-key-0123456789"

func TestSecretsNeverInErrors(t *testing.T) {
	t.Parallel()
	var errs []error
	for _, status := range []int{200, 400, 401, 403, 404, 409, 418, 429, 500, 503} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			k := r.Header.Get("x-APIKey")
			w.Header().Set("Retry-After", k)
			w.Header().Set("X-RateLimit-Remaining", k)
			w.WriteHeader(status)
			if status == 418 {
				fmt.Fprintf(w, "raw %s", k)
				return
			}
			fmt.Fprintf(w, `{"errors":{"json":"bad key %s","authentication":"%s"}}`, k, k)
		}))
		c, _ := partoo.New(partoo.Config{BaseURL: srv.URL, APIKey: secret})
		_, err := c.Invite(context.Background(), provider.Invitation{RecipientID: "u"})
		errs = append(errs, err)
		srv.Close()
		_, err = c.Invite(context.Background(), provider.Invitation{RecipientID: "u"})
		errs = append(errs, err)
	}
	leaky := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		return nil, fmt.Errorf("refused %s", r.Header.Get("x-APIKey"))
	})
	c, _ := partoo.New(partoo.Config{APIKey: secret, Transport: leaky})
	_, err := c.Invite(context.Background(), provider.Invitation{RecipientID: "u"})
	errs = append(errs, err)
	_, err = partoo.New(partoo.Config{APIKey: secret, BaseURL: "https://x:" + secret + "@h"})
	errs = append(errs, err)
	for _, err := range errs {
		if err == nil {
			t.Errorf("an error path gave no error")
			continue
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error leaks the key: %v", err)
		}
	}
}
