package unipile_test

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

	"github.com/google/go-cmp/cmp"

	"github.com/outreach-dev/outreach/provider"
	"github.com/outreach-dev/outreach/provider/internal/contract"
	"github.com/outreach-dev/outreach/provider/simulator"
	"github.com/outreach-dev/outreach/provider/unipile"
)

// clock is an injected clock for the simulator.
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

type bundle struct {
	client *unipile.Client
	sim    *simulator.Simulator
	clock  *clock
	tr     *contract.Transport
}

// setup starts a simulator behind an httptest server and a client whose
// traffic is validated against the Unipile documents.
func setup(t *testing.T, cfg simulator.Config) bundle {
	t.Helper()
	clk := newClock()
	if cfg.Now == nil {
		cfg.Now = clk.Now
	}
	sim := simulator.New(cfg)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	tr := contract.NewTransport(t, srv.Client().Transport, contract.Unipile)
	c, err := unipile.New(unipile.Config{BaseURL: srv.URL, APIKey: simulator.DefaultUnipileAPIKey, Transport: tr, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	return bundle{client: c, sim: sim, clock: clk, tr: tr}
}

// asError extracts the classified error, failing the test otherwise.
func asError(t *testing.T, err error) *provider.Error {
	t.Helper()
	var pe *provider.Error
	if !errors.As(err, &pe) {
		t.Fatalf("got error %v (%T); want a *provider.Error", err, err)
	}
	return pe
}

func wantKind(t *testing.T, err error, kind provider.Kind, scope provider.Scope) *provider.Error {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error; want %s", kind)
	}
	pe := asError(t, err)
	if pe.Kind != kind || pe.Scope != scope {
		t.Fatalf("got %s/%s (%v); want %s/%s", pe.Scope, pe.Kind, err, scope, kind)
	}
	return pe
}

func TestResolveInviteListCancel(t *testing.T) {
	t.Parallel()
	b := setup(t, simulator.Config{})
	ctx := context.Background()
	const acct = "acc-1"

	p, err := b.client.Resolve(ctx, acct, "jane-doe")
	if err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	want := provider.Profile{ProviderID: simulator.ProviderID("jane-doe"), PublicID: "jane-doe",
		FirstName: "Jane", LastName: "Doe", Headline: p.Headline, NetworkDistance: p.NetworkDistance}
	if diff := cmp.Diff(want, p); diff != "" {
		t.Errorf("Resolve mismatch (-want +got):\n%s", diff)
	}
	if p.Connected() || p.PendingInvitation() || p.Headline == "" {
		t.Errorf("Resolve(jane-doe) = %+v; want an invitable person with a headline", p)
	}
	if !unipile.IsProviderID(p.ProviderID) {
		t.Errorf("simulated provider id %q is not a provider id", p.ProviderID)
	}

	sent, err := b.client.Invite(ctx, provider.Invitation{AccountID: acct, RecipientID: p.ProviderID, Message: "Hello\nJane"})
	if err != nil || sent.InvitationID == "" {
		t.Fatalf("Invite = %+v, %v; want an invitation id", sent, err)
	}
	again, err := b.client.Resolve(ctx, acct, p.ProviderID)
	if err != nil || !again.PendingInvitation() || again.InvitationType != "SENT" {
		t.Fatalf("Resolve after invite = %+v, %v; want a pending SENT invitation", again, err)
	}
	_, err = b.client.Invite(ctx, provider.Invitation{AccountID: acct, RecipientID: p.ProviderID})
	if pe := wantKind(t, err, provider.KindAlreadyInvited, provider.ScopeTarget); pe.Type != "already_invited_recently" || pe.HTTPStatus != 422 {
		t.Errorf("second invite: got %v; want 422 already_invited_recently", pe)
	}

	list, err := b.client.ListSent(ctx, acct)
	if err != nil {
		t.Fatalf("ListSent: %v", err)
	}
	wantList := []unipile.SentInvitation{{ID: sent.InvitationID, ProviderID: p.ProviderID, PublicID: "jane-doe",
		Message: "Hello\nJane", Date: b.clock.Now()}}
	if diff := cmp.Diff(wantList, list); diff != "" {
		t.Errorf("ListSent mismatch (-want +got):\n%s", diff)
	}
	if err := b.client.Cancel(ctx, acct, sent.InvitationID); err != nil {
		t.Fatalf("Cancel: %v", err)
	}
	wantKind(t, b.client.Cancel(ctx, acct, sent.InvitationID), provider.KindNotFound, provider.ScopeTarget)
	if list, err := b.client.ListSent(ctx, acct); err != nil || len(list) != 0 {
		t.Errorf("ListSent after cancel = %v, %v; want none", list, err)
	}
	_, err = b.client.Invite(ctx, provider.Invitation{AccountID: acct, RecipientID: p.ProviderID})
	wantKind(t, err, provider.KindCannotResendYet, provider.ScopeTarget)
	if p, _ := b.client.Resolve(ctx, acct, "jane-doe"); p.InvitationStatus != "WITHDRAWN" {
		t.Errorf("profile after withdrawal has invitation status %q; want WITHDRAWN", p.InvitationStatus)
	}

	b.clock.Advance(simulator.DefaultResendCooldown)
	if _, err := b.client.Invite(ctx, provider.Invitation{AccountID: acct, RecipientID: p.ProviderID}); err != nil {
		t.Fatalf("invite after the cooldown: %v", err)
	}
	if d := b.sim.DuplicateInvites(); len(d) != 1 || d[0].Count != 2 {
		t.Errorf("DuplicateInvites = %+v; want jane-doe invited twice", d)
	}
	if n := b.tr.Validated(); n < 10 {
		t.Errorf("only %d exchanges validated against the contract", n)
	}
}

func TestResolveConventions(t *testing.T) {
	t.Parallel()
	b := setup(t, simulator.Config{})
	ctx := context.Background()
	_, err := b.client.Resolve(ctx, "a", "unknown-someone")
	wantKind(t, err, provider.KindNotFound, provider.ScopeTarget)

	tests := []struct {
		slug                string
		connected, pending  bool
		typ, status, degree string
	}{
		{slug: "connected-bob", connected: true, degree: "FIRST_DEGREE"},
		{slug: "pending-carla", pending: true, typ: "SENT", status: "PENDING", degree: "SECOND_DEGREE"},
		{slug: "received-dan", pending: true, typ: "RECEIVED", status: "PENDING", degree: "SECOND_DEGREE"},
		{slug: "outofnetwork-eve", degree: "OUT_OF_NETWORK"},
		{slug: "third-fay", degree: "THIRD_DEGREE"},
	}
	for _, tt := range tests {
		p, err := b.client.Resolve(ctx, "a", tt.slug)
		if err != nil {
			t.Fatalf("Resolve(%s): %v", tt.slug, err)
		}
		got := []any{p.Connected(), p.PendingInvitation(), p.InvitationType, p.InvitationStatus, p.NetworkDistance}
		want := []any{tt.connected, tt.pending, tt.typ, tt.status, tt.degree}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Resolve(%s) mismatch (-want +got):\n%s", tt.slug, diff)
		}
	}
	if p, err := b.client.Resolve(ctx, "a", "jöhn-doe"); err != nil || p.PublicID != "jöhn-doe" || p.FirstName != "Jöhn" {
		t.Errorf("Resolve(jöhn-doe) = %+v, %v; want the non-ASCII slug back", p, err)
	}
	b.sim.SetPerson(simulator.Person{Slug: "explicit", FirstName: "Ex", LastName: "Plicit", NetworkDistance: "FIRST_DEGREE", IsRelationship: true})
	if p, err := b.client.Resolve(ctx, "a", "explicit"); err != nil || p.FirstName != "Ex" || !p.Connected() {
		t.Errorf("Resolve(explicit) = %+v, %v; want the registered person", p, err)
	}
}

func TestInviteLimitsAndUsage(t *testing.T) {
	t.Parallel()
	b := setup(t, simulator.Config{})
	ctx := context.Background()
	b.sim.SetAccount(simulator.Account{Provider: provider.Unipile, ID: "lim", Limits: []simulator.Window{{Max: 4, Per: time.Hour}}})
	var usages []float64
	for i := range 4 {
		s, err := b.client.Invite(ctx, provider.Invitation{AccountID: "lim", RecipientID: simulator.ProviderID(fmt.Sprint("p", i))})
		if err != nil {
			t.Fatalf("invite %d: %v", i, err)
		}
		usages = append(usages, s.Usage)
		b.clock.Advance(time.Minute)
	}
	if diff := cmp.Diff([]float64{0, 50, 75, 100}, usages); diff != "" {
		t.Errorf("usage mismatch (-want +got):\n%s", diff)
	}
	_, err := b.client.Invite(ctx, provider.Invitation{AccountID: "lim", RecipientID: simulator.ProviderID("p5")})
	if pe := wantKind(t, err, provider.KindLimitExceeded, provider.ScopeAccount); pe.Type != "limit_exceeded" {
		t.Errorf("got type %q; want limit_exceeded", pe.Type)
	}
	b.clock.Advance(57 * time.Minute) // the first send leaves the window
	if _, err := b.client.Invite(ctx, provider.Invitation{AccountID: "lim", RecipientID: simulator.ProviderID("p5")}); err != nil {
		t.Fatalf("invite once the window freed: %v", err)
	}
	if v := b.sim.LimitViolations([]simulator.Window{{Max: 4, Per: time.Hour}}); len(v) != 0 {
		t.Errorf("LimitViolations = %+v; want none", v)
	}
	if v := b.sim.LimitViolations([]simulator.Window{{Max: 3, Per: time.Hour}}); len(v) != 1 || v[0].Count != 4 {
		t.Errorf("LimitViolations(3/h) = %+v; want one of count 4", v)
	}
}

func TestBurstGives429WithRetryAfter(t *testing.T) {
	t.Parallel()
	b := setup(t, simulator.Config{DefaultBurst: simulator.Burst{Rate: 0.5, Size: 2}})
	ctx := context.Background()
	for i := range 2 {
		if _, err := b.client.Resolve(ctx, "burst", fmt.Sprint("person-", i)); err != nil {
			t.Fatalf("request %d within the burst: %v", i, err)
		}
	}
	_, err := b.client.Resolve(ctx, "burst", "person-3")
	if pe := wantKind(t, err, provider.KindRateLimited, provider.ScopeAccount); pe.RetryAfter != 2*time.Second {
		t.Errorf("RetryAfter = %v; want 2s", pe.RetryAfter)
	}
	b.clock.Advance(2 * time.Second)
	if _, err := b.client.Resolve(ctx, "burst", "person-3"); err != nil {
		t.Fatalf("after Retry-After: %v", err)
	}
}

func TestMessageLimitCountsCharacters(t *testing.T) {
	t.Parallel()
	b := setup(t, simulator.Config{})
	ctx := context.Background()
	_, err := b.client.Invite(ctx, provider.Invitation{AccountID: "a", RecipientID: simulator.ProviderID("x"), Message: strings.Repeat("é", 301)})
	if pe := wantKind(t, err, provider.KindBadInput, provider.ScopeTarget); pe.Type != "too_many_characters" {
		t.Errorf("got type %q; want too_many_characters", pe.Type)
	}
	if n := len(b.sim.Requests()); n != 0 {
		t.Errorf("the simulator got %d requests; want none for a note refused locally", n)
	}
	if _, err := b.client.Invite(ctx, provider.Invitation{AccountID: "a", RecipientID: simulator.ProviderID("x"), Message: strings.Repeat("é", 300)}); err != nil {
		t.Errorf("300 characters (600 bytes): %v", err)
	}
}

func TestListSentFollowsCursor(t *testing.T) {
	t.Parallel()
	b := setup(t, simulator.Config{})
	ctx := context.Background()
	want := map[string]bool{}
	for i := range 230 {
		s, err := b.client.Invite(ctx, provider.Invitation{AccountID: "many", RecipientID: simulator.ProviderID(fmt.Sprint("m", i))})
		if err != nil {
			t.Fatal(err)
		}
		want[s.InvitationID] = true
	}
	list, err := b.client.ListSent(ctx, "many")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, s := range list {
		got[s.ID] = true
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ListSent mismatch (-want +got):\n%s", diff)
	}
	pages := 0
	for _, r := range b.sim.Requests() {
		if r.Op == "list_sent" {
			pages++
		}
	}
	if pages != 3 {
		t.Errorf("ListSent made %d requests; want 3 pages", pages)
	}
}

// TestSimulatorAnswersEveryErrorOfTheSpec makes the simulator answer each
// Unipile error type (validated against the spec by the transport) and
// checks the client's classification of it.
func TestSimulatorAnswersEveryErrorOfTheSpec(t *testing.T) {
	t.Parallel()
	b := setup(t, simulator.Config{})
	ctx := context.Background()
	for typ, status := range simulator.UnipileErrorTypes() {
		pid := simulator.ProviderID("err-" + typ)
		b.sim.AddScenario(simulator.Scenario{Recipient: pid, Error: typ, Times: 1})
		_, err := b.client.Invite(ctx, provider.Invitation{AccountID: "errs", RecipientID: pid})
		pe := asError(t, err)
		if pe.HTTPStatus != status || pe.Type != typ || pe.Scope == "" || pe.Kind == "" {
			t.Errorf("scenario %s: got %+v; want HTTP %d %s, classified", typ, pe, status, typ)
		}
		if status == 429 && pe.RetryAfter <= 0 {
			t.Errorf("429 without RetryAfter: %+v", pe)
		}
		if _, err := b.client.Invite(ctx, provider.Invitation{AccountID: "errs", RecipientID: pid}); err != nil {
			t.Errorf("scenario %s with Times 1: second try failed: %v", typ, err)
		}
	}
}

// TestResolveErrorsFromServer replays every error type through an
// httptest server for the lookup (its contract is our own document).
func TestResolveErrorsFromServer(t *testing.T) {
	t.Parallel()
	for typ, status := range simulator.UnipileErrorTypes() {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			if status == 429 {
				w.Header().Set("Retry-After", "30")
			}
			w.WriteHeader(status)
			fmt.Fprintf(w, `{"title":"T","detail":"D","type":"errors/%s","status":%d}`, typ, status)
		}))
		c, err := unipile.New(unipile.Config{BaseURL: srv.URL, APIKey: "test-key-123",
			Transport: contract.NewTransport(t, srv.Client().Transport, contract.Unipile)})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Resolve(context.Background(), "a", "jane-doe")
		pe := asError(t, err)
		if pe.HTTPStatus != status || pe.Type != typ || pe.Op != "resolve" || !strings.HasSuffix(pe.Detail, "D") {
			t.Errorf("%s: got %+v", typ, pe)
		}
		if status == 429 && (pe.RetryAfter != 30*time.Second || pe.Kind != provider.KindRateLimited) {
			t.Errorf("%s: got %+v; want rate limited for 30s", typ, pe)
		}
		srv.Close()
	}
}

func TestTransportFailures(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	c, _ := unipile.New(unipile.Config{BaseURL: closed.URL, APIKey: "test-key-123"})
	_, err := c.Invite(ctx, provider.Invitation{AccountID: "a", RecipientID: "x"})
	wantKind(t, err, provider.KindTransient, provider.ScopeTransient)

	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer hang.Close()
	defer close(release)
	c, _ = unipile.New(unipile.Config{BaseURL: hang.URL, APIKey: "test-key-123", Timeout: 20 * time.Millisecond})
	_, err = c.Resolve(ctx, "a", "jane-doe")
	if pe := wantKind(t, err, provider.KindTransient, provider.ScopeTransient); pe.Type != "timeout" {
		t.Errorf("got type %q; want timeout", pe.Type)
	}

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	_, err = c.Resolve(cancelled, "a", "jane-doe")
	wantKind(t, err, provider.KindTransient, provider.ScopeTransient)

	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"object":"UserInvitationSent"}`)
	}))
	defer ok.Close()
	c, _ = unipile.New(unipile.Config{BaseURL: ok.URL, APIKey: "test-key-123"})
	_, err = c.Invite(ctx, provider.Invitation{AccountID: "a", RecipientID: "x"})
	if pe := wantKind(t, err, provider.KindTransient, provider.ScopeTransient); pe.Type != "unexpected_response" {
		t.Errorf("got %v; want unexpected_response", pe)
	}
}

func TestPacingRefusesWhatWouldMissTheDeadline(t *testing.T) {
	t.Parallel()
	b := setup(t, simulator.Config{})
	srv := httptest.NewServer(b.sim)
	defer srv.Close()
	c, err := unipile.New(unipile.Config{BaseURL: srv.URL, APIKey: simulator.DefaultUnipileAPIKey, RequestsPerSecond: 0.001, Burst: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Resolve(context.Background(), "a", "jane"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err = c.Resolve(ctx, "a", "jane")
	wantKind(t, err, provider.KindTransient, provider.ScopeTransient)
	if n := len(b.sim.Requests()); n != 1 {
		t.Errorf("server got %d calls; want 1 (the second waits for the pace)", n)
	}
}

func TestNewValidatesConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  unipile.Config
		want string
	}{
		{"no key", unipile.Config{BaseURL: "https://api1.unipile.com:13111"}, "API key is required"},
		{"no URL", unipile.Config{APIKey: "test-key-123"}, "base URL is required"},
		{"bad scheme", unipile.Config{APIKey: "test-key-123", BaseURL: "ftp://x"}, "scheme must be http or https"},
		{"query", unipile.Config{APIKey: "test-key-123", BaseURL: "https://x/?a=1"}, "no query"},
		{"negative timeout", unipile.Config{APIKey: "test-key-123", BaseURL: "x:1", Timeout: -1}, "timeout"},
		{"negative rate", unipile.Config{APIKey: "test-key-123", BaseURL: "x:1", RequestsPerSecond: -1}, "requests per second"},
		{"both clients", unipile.Config{APIKey: "test-key-123", BaseURL: "x:1", HTTPClient: &http.Client{}, Transport: http.DefaultTransport}, "either HTTPClient or Transport"},
	}
	for _, tt := range tests {
		_, err := unipile.New(tt.cfg)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: New error = %v; want it to say %q", tt.name, err, tt.want)
		}
	}
}

// roundTripFunc captures requests without a network.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestBareDSNGetsHTTPS(t *testing.T) {
	t.Parallel()
	var got string
	tr := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		got = r.URL.String() + " key=" + r.Header.Get("X-API-KEY")
		return &http.Response{StatusCode: 200, Header: http.Header{}, Request: r,
			Body: http.NoBody}, nil
	})
	c, err := unipile.New(unipile.Config{BaseURL: "api1.unipile.com:13111", APIKey: "test-key-123", Transport: tr})
	if err != nil {
		t.Fatal(err)
	}
	c.Cancel(context.Background(), "acc 1", "inv/1")
	if want := "https://api1.unipile.com:13111/api/v1/users/invite/sent/inv%2F1?account_id=acc+1 key=test-key-123"; got != want {
		t.Errorf("request = %q; want %q", got, want)
	}
}

// Settle reads the provider's state without inviting: a pending invitation
// on the profile means sent, with its id from the sent list; none means
// not sent. No invitation request is made.
func TestSettle(t *testing.T) {
	t.Parallel()
	b := setup(t, simulator.Config{})
	ctx := context.Background()
	went, other := simulator.ProviderID("settle-went"), simulator.ProviderID("settle-not")
	sent, err := b.client.Invite(ctx, provider.Invitation{AccountID: "acc", RecipientID: went})
	if err != nil {
		t.Fatal(err)
	}
	got, err := b.client.Settle(ctx, "acc", went)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Sent || got.InvitationID != sent.InvitationID {
		t.Errorf("Settle(went) = %+v, want sent with %s", got, sent.InvitationID)
	}
	got, err = b.client.Settle(ctx, "acc", other)
	if err != nil {
		t.Fatal(err)
	}
	if got.Sent || got.InvitationID != "" {
		t.Errorf("Settle(not) = %+v, want not sent", got)
	}
	invites := 0
	for _, r := range b.sim.Requests() {
		if r.Op == "invite" {
			invites++
		}
	}
	if invites != 1 {
		t.Errorf("%d invitation requests, want 1 (Settle sends none)", invites)
	}
}
