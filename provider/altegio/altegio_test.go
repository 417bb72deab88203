package altegio_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/outreach-dev/outreach/provider"
	"github.com/outreach-dev/outreach/provider/altegio"
	"github.com/outreach-dev/outreach/provider/internal/contract"
	"github.com/outreach-dev/outreach/provider/simulator"
)

func setup(t *testing.T, cfg simulator.Config, partner, user string) (*altegio.Client, *simulator.Simulator) {
	t.Helper()
	sim := simulator.New(cfg)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	c, err := altegio.New(altegio.Config{BaseURL: srv.URL, PartnerToken: partner, UserToken: user,
		Transport: contract.NewTransport(t, srv.Client().Transport, contract.Altegio)})
	if err != nil {
		t.Fatal(err)
	}
	return c, sim
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
	c, sim := setup(t, simulator.Config{}, simulator.DefaultAltegioPartnerToken, simulator.DefaultAltegioUserToken)
	ctx := context.Background()
	inv := provider.Invitation{AccountID: "123", RecipientID: "olivia@example.com", Name: "Olivia",
		Options: map[string]any{"position": "Administrator", "user_role": "administrator", "staff_id": float64(12),
			"user_permissions": []any{map[string]any{"slug": "timetable_access", "value": true}}}}
	if _, err := c.Invite(ctx, inv); err != nil {
		t.Fatalf("Invite: %v", err)
	}
	_, err := c.Invite(ctx, inv)
	if pe := kindOf(t, err); pe.Kind != provider.KindAlreadyInvited || pe.Scope != provider.ScopeTarget {
		t.Errorf("second invite: got %+v; want already invited", pe)
	}
	if _, err := c.Invite(ctx, provider.Invitation{AccountID: "123", RecipientID: "+33 6 12 34 56 78"}); err != nil {
		t.Errorf("invite by phone: %v", err)
	}
	_, err = c.Invite(ctx, provider.Invitation{AccountID: "123", RecipientID: "not an email"})
	if pe := kindOf(t, err); pe.Kind != provider.KindBadInput || pe.HTTPStatus != 422 || !strings.Contains(pe.Error(), "invites.0.search") {
		t.Errorf("bad search: got %v; want 422 naming invites.0.search", pe)
	}
	if got := len(sim.Invites("123")); got != 2 {
		t.Errorf("simulator recorded %d invites; want 2", got)
	}

	sim.SetAccount(simulator.Account{Provider: provider.Altegio, ID: "9", Limits: []simulator.Window{{Max: 1, Per: 1 << 62}}})
	if _, err := c.Invite(ctx, provider.Invitation{AccountID: "9", RecipientID: "a@example.com"}); err != nil {
		t.Fatal(err)
	}
	_, err = c.Invite(ctx, provider.Invitation{AccountID: "9", RecipientID: "b@example.com"})
	if pe := kindOf(t, err); pe.Kind != provider.KindRateLimited || pe.Scope != provider.ScopeAccount {
		t.Errorf("over the limit: got %+v; want account rate limited", pe)
	}
}

func TestAccountErrorsAgainstSimulator(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c, _ := setup(t, simulator.Config{}, "wrong-partner", simulator.DefaultAltegioUserToken)
	_, err := c.Invite(ctx, provider.Invitation{AccountID: "1", RecipientID: "a@example.com"})
	if pe := kindOf(t, err); pe.Kind != provider.KindConfig || pe.HTTPStatus != 401 || pe.Title != "Authentication needed." {
		t.Errorf("bad partner token: got %+v", pe)
	}

	c, sim := setup(t, simulator.Config{Strict: true}, simulator.DefaultAltegioPartnerToken, simulator.DefaultAltegioUserToken)
	_, err = c.Invite(ctx, provider.Invitation{AccountID: "77", RecipientID: "a@example.com"})
	if pe := kindOf(t, err); pe.Kind != provider.KindAccount || pe.HTTPStatus != 404 {
		t.Errorf("unknown location in strict mode: got %+v; want 404 account", pe)
	}
	sim.SetAccount(simulator.Account{Provider: provider.Altegio, ID: "77"})
	want := map[string]provider.Kind{
		"unauthorized": provider.KindConfig, "forbidden": provider.KindAccount, "not_found": provider.KindAccount,
		"validation_error": provider.KindBadInput, "already_invited": provider.KindAlreadyInvited,
		"too_many_requests": provider.KindRateLimited, "server_error": provider.KindTransient, "service_unavailable": provider.KindTransient,
	}
	for typ, kind := range want {
		search := typ + "@example.com"
		sim.AddScenario(simulator.Scenario{Provider: provider.Altegio, Recipient: search, Error: typ, Times: 1})
		_, err := c.Invite(ctx, provider.Invitation{AccountID: "77", RecipientID: search})
		if pe := kindOf(t, err); pe.Kind != kind {
			t.Errorf("scenario %s: got %+v; want %s", typ, pe, kind)
		}
		if _, err := c.Invite(ctx, provider.Invitation{AccountID: "77", RecipientID: search}); err != nil {
			t.Errorf("scenario %s used once, then: %v", typ, err)
		}
	}
}

func TestBuildInvite(t *testing.T) {
	t.Parallel()
	role, pos := "manager", "Boss"
	id := int64(12)
	got, err := altegio.BuildInvite(provider.Invitation{RecipientID: " a@b.co ", Name: "A",
		Options: map[string]any{"user_role": "manager", "position": "Boss", "staff_id": "12",
			"user_permissions": []map[string]any{{"slug": "x", "value": []any{1.0}}}}})
	want := altegio.Invite{Name: "A", Search: "a@b.co", UserRole: &role, Position: &pos, StaffID: &id,
		UserPermissions: []altegio.Permission{{Slug: "x", Value: []any{1.0}}}}
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("BuildInvite mismatch (-want +got):\n%s", diff)
	}
	for _, opts := range []map[string]any{
		{"user_role": "king"}, {"position": 3}, {"staff_id": 1.5}, {"staff_id": "x"},
		{"user_permissions": "all"}, {"user_permissions": []any{"x"}}, {"user_permissions": []any{map[string]any{"value": 1}}},
		{"unknown": 1},
	} {
		if _, err := altegio.BuildInvite(provider.Invitation{RecipientID: "a@b.co", Options: opts}); err == nil {
			t.Errorf("BuildInvite with options %v: no error", opts)
		}
	}
	if _, err := altegio.BuildInvite(provider.Invitation{}); err == nil {
		t.Errorf("BuildInvite without recipient: no error")
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestRequestShape(t *testing.T) {
	t.Parallel()
	var got []string
	var body map[string]any
	tr := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		got = []string{r.Method + " " + r.URL.String(), r.Header.Get("Authorization"), r.Header.Get("Accept"), r.Header.Get("Content-Type")}
		b, _ := io.ReadAll(r.Body)
		json.Unmarshal(b, &body)
		return &http.Response{StatusCode: 202, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(`{"success":true,"data":null,"meta":{"message":"Saved"}}`)), Request: r}, nil
	})
	c, err := altegio.New(altegio.Config{BaseURL: "https://api.alteg.io/api/v1/", PartnerToken: "ptok", UserToken: "utok", Transport: tr})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Invite(context.Background(), provider.Invitation{AccountID: "123", RecipientID: "mail@gmail.com", Name: "Olivia"}); err != nil {
		t.Fatal(err)
	}
	want := []string{"POST https://api.alteg.io/api/v1/user/invite/123", "Bearer ptok, User utok", "application/vnd.api.v2+json", "application/json"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("request mismatch (-want +got):\n%s", diff)
	}
	wantBody := map[string]any{"invites": []any{map[string]any{"name": "Olivia", "search": "mail@gmail.com"}}}
	if diff := cmp.Diff(wantBody, body); diff != "" {
		t.Errorf("body mismatch (-want +got):\n%s", diff)
	}
	for _, loc := range []string{"", "abc", "0", "-3", "1.5"} {
		_, err := c.Invite(context.Background(), provider.Invitation{AccountID: loc, RecipientID: "a@b.co"})
		if pe := kindOf(t, err); pe.Kind != provider.KindAccount || pe.Type != "invalid_location" {
			t.Errorf("location %q: got %+v; want invalid_location", loc, pe)
		}
	}
}

func TestNewValidatesConfig(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		cfg  altegio.Config
		want string
	}{
		{altegio.Config{UserToken: "u"}, "partner token is required"},
		{altegio.Config{PartnerToken: "p"}, "user token is required"},
		{altegio.Config{PartnerToken: "p,x", UserToken: "u"}, "must not contain"},
		{altegio.Config{PartnerToken: "p", UserToken: "u", BaseURL: "gopher://x"}, "scheme"},
	} {
		if _, err := altegio.New(tt.cfg); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("New(%+v) = %v; want %q", tt.cfg, err, tt.want)
		}
	}
}

const partnerSecret, userSecret = "partner-SECRET-0123456789", "user-SECRET-9876543210"

func TestSecretsNeverInErrors(t *testing.T) {
	t.Parallel()
	var errs []error
	for _, status := range []int{200, 202, 400, 401, 403, 404, 422, 429, 500} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			a := r.Header.Get("Authorization")
			w.Header().Set("Retry-After", a)
			w.WriteHeader(status)
			fmt.Fprintf(w, `{"success":false,"data":%q,"meta":{"message":%q,"errors":[%q]}}`, a, a, a)
		}))
		c, _ := altegio.New(altegio.Config{BaseURL: srv.URL, PartnerToken: partnerSecret, UserToken: userSecret})
		_, err := c.Invite(context.Background(), provider.Invitation{AccountID: "1", RecipientID: "a@b.co"})
		errs = append(errs, err)
		srv.Close()
		_, err = c.Invite(context.Background(), provider.Invitation{AccountID: "1", RecipientID: "a@b.co"})
		errs = append(errs, err)
	}
	leaky := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		return nil, fmt.Errorf("refused %s", r.Header.Get("Authorization"))
	})
	c, _ := altegio.New(altegio.Config{PartnerToken: partnerSecret, UserToken: userSecret, Transport: leaky})
	_, err := c.Invite(context.Background(), provider.Invitation{AccountID: "1", RecipientID: "a@b.co"})
	errs = append(errs, err)
	_, err = altegio.New(altegio.Config{PartnerToken: partnerSecret + ",", UserToken: userSecret})
	errs = append(errs, err)
	for _, err := range errs {
		if err == nil {
			t.Errorf("an error path gave no error")
			continue
		}
		if strings.Contains(err.Error(), partnerSecret) || strings.Contains(err.Error(), userSecret) {
			t.Errorf("error leaks a token: %v", err)
		}
	}
}
