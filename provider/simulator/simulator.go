// Package simulator is a faithful fake of the three provider APIs outreach
// speaks to (Unipile, Partoo, Altegio) on one http.Handler, for tests, the
// demo and `outreach simulate`.
//
// It behaves like the providers rather than echoing success: it checks
// credentials, enforces per-account rolling limits (422
// errors/limit_exceeded) and burst rates (429 with Retry-After), refuses a
// second invitation to a person with a pending one
// (already_invited_recently) or recently withdrawn one (cannot_resend_yet),
// long notes (too_many_characters), unknown people (404), and Partoo's
// five-minute rule; it answers each provider's own error bodies. Scenarios,
// explicit people, slug conventions, latency and seeded random errors make
// tests deterministic, and every request is recorded so that tests can
// check what was sent (Requests, Invites, DuplicateInvites,
// LimitViolations).
//
// Routes (one server serves all three; point each client's BaseURL at it):
//
//	GET    /api/v1/users/{identifier}?account_id=         Unipile profile
//	POST   /api/v1/users/invite                           Unipile invite
//	GET    /api/v1/users/invite/sent?account_id=&cursor=  Unipile sent invitations
//	DELETE /api/v1/users/invite/sent/{id}?account_id=     Unipile cancel
//	GET    /api/v1/users/relations?account_id=&cursor=    Unipile relations (relations.go)
//	GET    /api/v1/accounts/{id}                          Unipile account status (accountstatus.go)
//	POST   /v2/user/{user_id}/invite                      Partoo invite
//	POST   /api/v1/user/invite/{location_id}              Altegio invite
//	GET    /_sim/healthz                                  liveness ("ok")
//
// See README.md beside this file for the conventions and curl examples.
package simulator

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Default credentials, used when the Config leaves the lists empty.
const (
	DefaultUnipileAPIKey       = "sim-unipile-key"
	DefaultPartooAPIKey        = "sim-partoo-key"
	DefaultAltegioPartnerToken = "sim-altegio-partner"
	DefaultAltegioUserToken    = "sim-altegio-user"
)

// DefaultResendCooldown is how long LinkedIn refuses a new invitation to a
// person after a withdrawal (up to three weeks).
const DefaultResendCooldown = 21 * 24 * time.Hour

// PartooResendInterval is Partoo's "once every 5 minutes" per user.
const PartooResendInterval = 5 * time.Minute

// Window is a rolling limit: at most Max successful invitations in any
// span of length Per.
type Window struct {
	Max int
	Per time.Duration
}

// LinkedInLimits are the recommended limits of a paid LinkedIn account:
// 100 invitations a day and 200 a week. They are not a default; pass them
// as Config.DefaultLimits for a realistic demo.
func LinkedInLimits() []Window {
	return []Window{{Max: 100, Per: 24 * time.Hour}, {Max: 200, Per: 7 * 24 * time.Hour}}
}

// Config configures a Simulator. Every field is optional.
type Config struct {
	// UnipileAPIKeys are the valid X-API-KEY values; empty means
	// {DefaultUnipileAPIKey}.
	UnipileAPIKeys []string
	// PartooAPIKeys are the valid x-APIKey values; empty means
	// {DefaultPartooAPIKey}. Each key is one Partoo "account".
	PartooAPIKeys []string
	// AltegioPartnerTokens and AltegioUserTokens are the valid tokens of
	// "Authorization: Bearer <partner>, User <user>"; empty means the
	// defaults. Any valid partner token goes with any valid user token.
	AltegioPartnerTokens []string
	AltegioUserTokens    []string

	// Strict refuses accounts not registered with SetAccount (Unipile 404
	// "Account not found", Altegio 404). By default any account is
	// accepted with DefaultLimits and DefaultBurst.
	Strict bool
	// DefaultLimits apply to accounts without their own; nil means no
	// limit (the throughput benchmark's setting). See LinkedInLimits.
	DefaultLimits []Window
	// DefaultLookupLimits limit Unipile profile lookups per account the
	// same way; nil means no limit.
	DefaultLookupLimits []Window
	// DefaultBurst is the burst rate beyond which an account's requests
	// get 429 with Retry-After; the zero value never answers 429.
	DefaultBurst Burst
	// ResendCooldown is how long after a withdrawal an invitation to the
	// same person is refused with cannot_resend_yet; 0 means
	// DefaultResendCooldown.
	ResendCooldown time.Duration

	// Accounts registers accounts up front (as SetAccount does).
	Accounts []Account
	// People registers explicit Unipile profiles (as SetPerson does).
	People []Person
	// Scenarios make chosen requests fail (as AddScenario does).
	Scenarios []Scenario

	// Latency delays every answer by Latency plus a uniform random part
	// below Jitter, before the request takes effect: a client that goes
	// away meanwhile (a worker killed) leaves no trace.
	Latency, Jitter time.Duration
	// AnswerDelay delays every answer once the request took effect: an
	// invitation is sent (and recorded) at once, its answer comes later,
	// so a client killed meanwhile never learns that it went out (the
	// case a recovery must settle).
	AnswerDelay time.Duration
	// ErrorRate is the probability (0 to 1) that an invitation or lookup
	// fails with a random transient error (Unipile: one of ErrorTypes,
	// default service_unavailable, request_timeout, unexpected_error;
	// Partoo and Altegio: 503).
	ErrorRate  float64
	ErrorTypes []string
	// Seed seeds the random source of jitter and errors; runs with the
	// same seed and the same order of requests answer the same.
	Seed uint64

	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Sleep waits for the latency; nil waits on a timer or the request's
	// context.
	Sleep func(ctx context.Context, d time.Duration) error
}

// Burst is a token bucket: Rate requests a second on average, at most
// Size at once. A zero Rate means unlimited.
type Burst struct {
	Rate float64
	Size int
}

// Simulator serves the three provider APIs. It is safe for concurrent use.
// Create it with New.
type Simulator struct {
	cfg   Config
	now   func() time.Time
	sleep func(ctx context.Context, d time.Duration) error

	unipileKeys  map[string]bool
	partooKeys   map[string]bool
	altegioPartn map[string]bool
	altegioUser  map[string]bool

	mu          sync.Mutex
	rng         *rand.Rand
	accounts    map[accountKey]*account
	people      map[string]*Person // by lower-cased slug
	byProvider  map[string]string  // provider id -> slug
	scenarios   []*scenarioState
	invitations map[string]*invitation // by id
	partooLast  map[string]time.Time   // Partoo user id -> last invitation
	record      []Request
	dups        map[dupKey]int
	nextID      uint64
	accept      acceptState // acceptances, account statuses, webhooks
}

// New builds a Simulator from cfg.
func New(cfg Config) *Simulator {
	s := &Simulator{cfg: cfg, now: cfg.Now, sleep: cfg.Sleep}
	if s.now == nil {
		s.now = time.Now
	}
	if s.sleep == nil {
		s.sleep = sleepCtx
	}
	if s.cfg.ResendCooldown <= 0 {
		s.cfg.ResendCooldown = DefaultResendCooldown
	}
	if len(s.cfg.ErrorTypes) == 0 {
		s.cfg.ErrorTypes = []string{"service_unavailable", "request_timeout", "unexpected_error"}
	}
	s.unipileKeys = set(cfg.UnipileAPIKeys, DefaultUnipileAPIKey)
	s.partooKeys = set(cfg.PartooAPIKeys, DefaultPartooAPIKey)
	s.altegioPartn = set(cfg.AltegioPartnerTokens, DefaultAltegioPartnerToken)
	s.altegioUser = set(cfg.AltegioUserTokens, DefaultAltegioUserToken)
	s.resetLocked()
	return s
}

func set(vals []string, def string) map[string]bool {
	if len(vals) == 0 {
		vals = []string{def}
	}
	m := make(map[string]bool, len(vals))
	for _, v := range vals {
		m[v] = true
	}
	return m
}

// Reset forgets every account, person, scenario, invitation and record,
// and goes back to what the Config set up.
func (s *Simulator) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.resetLocked()
}

func (s *Simulator) resetLocked() {
	s.rng = rand.New(rand.NewPCG(s.cfg.Seed, s.cfg.Seed^0x9e3779b97f4a7c15))
	s.accounts = make(map[accountKey]*account)
	s.people = make(map[string]*Person)
	s.byProvider = make(map[string]string)
	s.scenarios = nil
	s.invitations = make(map[string]*invitation)
	s.partooLast = make(map[string]time.Time)
	s.record = nil
	s.dups = make(map[dupKey]int)
	s.nextID = 0
	s.accept = acceptState{}
	for _, a := range s.cfg.Accounts {
		s.setAccountLocked(a)
	}
	for _, p := range s.cfg.People {
		s.setPersonLocked(p)
	}
	for _, sc := range s.cfg.Scenarios {
		s.scenarios = append(s.scenarios, &scenarioState{Scenario: sc})
	}
}

// ServeHTTP routes a request to the simulated provider it is meant for.
func (s *Simulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.cfg.AnswerDelay > 0 {
		// The request takes effect now; its answer is written once the
		// delay is over, outside the handler (and any lock it holds),
		// so concurrent requests are not held behind each other's delay.
		d := &delayedWriter{header: http.Header{}, status: http.StatusOK}
		s.route(d, r)
		if s.sleep(r.Context(), s.cfg.AnswerDelay) != nil {
			return // the client went away: the answer is lost
		}
		for k, v := range d.header {
			w.Header()[k] = v
		}
		w.WriteHeader(d.status)
		w.Write(d.body.Bytes())
		return
	}
	s.route(w, r)
}

// route serves a request from the simulated provider it is meant for.
func (s *Simulator) route(w http.ResponseWriter, r *http.Request) {
	path := r.URL.EscapedPath()
	switch {
	case path == "/api/v1/users/relations":
		s.serveRelations(w, r)
	case strings.HasPrefix(path, "/api/v1/accounts/"):
		s.serveAccount(w, r, strings.TrimPrefix(path, "/api/v1/accounts/"))
	case strings.HasPrefix(path, "/api/v1/users/"):
		s.serveUnipile(w, r, strings.TrimPrefix(path, "/api/v1/users/"))
	case strings.HasPrefix(path, "/api/v1/user/invite/"):
		s.serveAltegio(w, r, strings.TrimPrefix(path, "/api/v1/user/invite/"))
	case strings.HasPrefix(path, "/v2/user/"):
		s.servePartoo(w, r, strings.TrimPrefix(path, "/v2/user/"))
	case path == "/_sim/healthz":
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	default:
		writeJSON(w, http.StatusNotFound, map[string]any{"error": "no such route in the simulator", "path": path})
	}
}

// ListenAndServe serves the simulator on addr (such as "127.0.0.1:8089")
// until ctx is done, then shuts down gracefully. It reports the bound
// address through ready, if not nil, once listening.
func (s *Simulator) ListenAndServe(ctx context.Context, addr string, ready func(net.Addr)) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	if ready != nil {
		ready(ln.Addr())
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shut); err != nil {
		return err
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// delay applies the configured latency; false means the client went away.
func (s *Simulator) delay(r *http.Request) bool {
	if s.cfg.Latency <= 0 && s.cfg.Jitter <= 0 {
		return true
	}
	d := s.cfg.Latency
	if s.cfg.Jitter > 0 {
		s.mu.Lock()
		d += time.Duration(s.rng.Int64N(int64(s.cfg.Jitter)))
		s.mu.Unlock()
	}
	return s.sleep(r.Context(), d) == nil
}

// randomFailure draws whether this request fails at random, and with which
// Unipile type. Callers hold s.mu.
func (s *Simulator) randomFailure() (string, bool) {
	if s.cfg.ErrorRate <= 0 || s.rng.Float64() >= s.cfg.ErrorRate {
		return "", false
	}
	return s.cfg.ErrorTypes[s.rng.IntN(len(s.cfg.ErrorTypes))], true
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// delayedWriter keeps an answer to write it after Config.AnswerDelay.
type delayedWriter struct {
	header http.Header
	status int
	wrote  bool
	body   bytes.Buffer
}

func (d *delayedWriter) Header() http.Header { return d.header }

func (d *delayedWriter) WriteHeader(status int) {
	if !d.wrote {
		d.wrote, d.status = true, status
	}
}

func (d *delayedWriter) Write(b []byte) (int, error) {
	d.wrote = true
	return d.body.Write(b)
}
