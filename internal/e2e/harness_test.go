package e2e

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/outreach-dev/outreach/internal/system"
	"github.com/outreach-dev/outreach/internal/testenv"
	"github.com/outreach-dev/outreach/provider"
	"github.com/outreach-dev/outreach/provider/altegio"
	"github.com/outreach-dev/outreach/provider/partoo"
	"github.com/outreach-dev/outreach/provider/simulator"
	"github.com/outreach-dev/outreach/provider/unipile"
	"github.com/outreach-dev/outreach/scheduler"
	"github.com/outreach-dev/outreach/store"
	"github.com/outreach-dev/outreach/store/storetest"
	"github.com/outreach-dev/outreach/worker"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// Secret credentials: they must never show up in logs, payloads or rows.
const (
	unipileKey     = "sk-unipile-SECRET-7c1f"
	partooKey      = "sk-partoo-SECRET-9a2b"
	altegioPartner = "sk-altegio-partner-SECRET-31d0"
	altegioUser    = "sk-altegio-user-SECRET-55e4"
)

// testPolicy is the outcome policy compressed to test time.
func testPolicy() *worker.Policy {
	return &worker.Policy{
		RateLimitBackoff: 300 * time.Millisecond, RateLimitMax: 2 * time.Second,
		LimitExceededPause: 500 * time.Millisecond, LimitExceededMax: 2 * time.Second,
		ResendDefer: 300 * time.Millisecond, ResendDeferMax: 2 * time.Second, ResendMaxDeferrals: 3,
		ResendEscalateCount: 3, ResendEscalateWindow: 10 * time.Second, ResendEscalatePause: 1500 * time.Millisecond,
		AlreadyInvitedDefer: 200 * time.Millisecond, AlreadyInvitedMax: 2,
		TransientAttempts: 3, TransientBackoff: 100 * time.Millisecond, TransientBackoffMax: 400 * time.Millisecond,
		UsageSlowdown: 2 * time.Second, UsagePause: 1500 * time.Millisecond,
	}
}

// syncBuffer is a log sink safe for concurrent writers.
type syncBuffer struct {
	mu      sync.Mutex
	b       bytes.Buffer
	changed chan struct{} // receives after writes (coalesced); see Changed
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := s.b.Write(p)
	if s.changed != nil {
		select {
		case s.changed <- struct{}{}:
		default:
		}
	}
	return n, err
}

// Changed returns a channel that receives after something was written
// (several writes may give one receive): a test waiting for a log line
// rereads String when it fires.
func (s *syncBuffer) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.changed == nil {
		s.changed = make(chan struct{}, 1)
	}
	return s.changed
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type harness struct {
	t      *testing.T
	ctx    context.Context
	cancel context.CancelFunc
	st     *store.Store
	db     storetest.DB // the test's own, for setup and checks (storetest)
	dsn    string
	rdb    redis.UniversalClient
	sim    *simulator.Simulator
	simURL string
	logs   *syncBuffer
	log    *slog.Logger
	sched  *scheduler.Scheduler
	sys    *system.System
	policy *worker.Policy
	wrap   func(provider.Client) provider.Client
	// timeout is the provider timeout of clients, workers and scheduler.
	timeout time.Duration

	mu      sync.Mutex
	clients map[string]provider.Client
}

type options struct {
	sim    simulator.Config
	policy *worker.Policy
	// wrap decorates every provider client (fault injection).
	wrap func(provider.Client) provider.Client
	// requestTimeout is the workers' provider timeout (default 5 s).
	requestTimeout time.Duration
}

func newHarness(t *testing.T, o options) *harness {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	st, dsn := testenv.Store(t)
	rs := testenv.Redis(t)
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr})
	t.Cleanup(func() { rdb.Close() })
	o.sim.UnipileAPIKeys = []string{unipileKey}
	o.sim.PartooAPIKeys = []string{partooKey}
	o.sim.AltegioPartnerTokens = []string{altegioPartner}
	o.sim.AltegioUserTokens = []string{altegioUser}
	sim := simulator.New(o.sim)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	logs := &syncBuffer{}
	h := &harness{t: t, ctx: ctx, cancel: cancel, st: st, db: testenv.DB(t, dsn), dsn: dsn, rdb: rdb, sim: sim, simURL: srv.URL, logs: logs,
		log:    slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		policy: o.policy, wrap: o.wrap, clients: map[string]provider.Client{}, timeout: o.requestTimeout}
	if h.timeout <= 0 {
		h.timeout = 5 * time.Second
	}
	if h.policy == nil {
		h.policy = testPolicy()
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs:\n%s", tail(logs.String(), tailBytes()))
		}
	})
	return h
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// Clients builds real provider clients against the simulator.
func (h *harness) Clients(p provider.Name, ref string) (provider.Client, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if c, ok := h.clients[string(p)]; ok {
		return c, nil
	}
	var c provider.Client
	var err error
	switch p {
	case provider.Unipile:
		c, err = unipile.New(unipile.Config{BaseURL: h.simURL, APIKey: unipileKey, Timeout: h.timeout})
	case provider.Partoo:
		c, err = partoo.New(partoo.Config{BaseURL: h.simURL, APIKey: partooKey, Timeout: 5 * time.Second})
	case provider.Altegio:
		c, err = altegio.New(altegio.Config{BaseURL: h.simURL, PartnerToken: altegioPartner, UserToken: altegioUser, Timeout: 5 * time.Second})
	default:
		return nil, fmt.Errorf("no client for %s", p)
	}
	if err != nil {
		return nil, err
	}
	if h.wrap != nil {
		c = h.wrap(c)
	}
	h.clients[string(p)] = c
	return c, nil
}

// start runs the system (a scheduler and n workers, wired as the
// commands wire them) until the test ends.
func (h *harness) start(n int) {
	h.t.Helper()
	sys, err := system.New(h.ctx, system.Config{
		// The scheduler and each worker on a pool of their own, as
		// separate processes have: on one shared pool (4 connections on 2
		// cores) the scheduler's statements queued behind 20 handlers',
		// and its ticks took 6-20 s on a busy machine.
		OpenStore: func(ctx context.Context) (*store.Store, error) { return store.Open(ctx, h.dsn, store.PoolSize(8)) },
		Redis:     h.rdb, Logger: h.log,
		Scheduler: &scheduler.Config{
			Horizon: 5 * time.Second, PollInterval: 200 * time.Millisecond,
			ReconcileInterval: time.Second, ReconcileGrace: 2 * time.Second,
			RequestTimeout: h.timeout,
		},
		Workers: n,
		Worker:  worker.Config{Clients: h.Clients, Policy: h.policy, RequestTimeout: h.timeout, HoldFor: 5 * time.Second},
		Server: worker.ServerConfig{Concurrency: 10, DelayedTaskCheckInterval: 50 * time.Millisecond,
			ShutdownTimeout: 8 * time.Second},
	})
	if err != nil {
		h.t.Fatal(err)
	}
	h.sys, h.sched = sys, sys.Scheduler
	h.t.Cleanup(sys.Close)
	if err := sys.Run(h.ctx); err != nil {
		h.t.Fatal(err)
	}
}

// startWorker starts one more worker server in the system start runs.
func (h *harness) startWorker() *worker.Server {
	h.t.Helper()
	srv, err := h.sys.StartWorker(h.ctx)
	if err != nil {
		h.t.Fatal(err)
	}
	return srv
}

type accountSpec struct {
	name, provider, providerAccountID string
	limits                            []store.Limit
	minGap, jitter                    time.Duration
	gaps                              []store.Gap
	// pacing is the account's pacing mode. Empty means
	// store.PacingUnlimited: most tests are about one mechanism and set
	// the limits and gaps they need, compressed, opting out of the
	// provider's defaults (minutes apart) explicitly.
	pacing string
}

func (h *harness) account(a accountSpec) int64 {
	h.t.Helper()
	if a.provider == "" {
		a.provider = "unipile"
	}
	if a.providerAccountID == "" {
		a.providerAccountID = a.name
	}
	if a.pacing == "" {
		a.pacing = store.PacingUnlimited
	}
	id, err := h.st.CreateAccount(h.ctx, store.NewAccount{Name: a.name, Provider: provider.Name(a.provider), ProviderAccountID: a.providerAccountID,
		Limits: a.limits, MinGap: a.minGap, GapJitter: a.jitter, Gaps: a.gaps, Pacing: a.pacing})
	if err != nil {
		h.t.Fatal(err)
	}
	return id
}

func (h *harness) campaign(account int64, template string) int64 {
	h.t.Helper()
	id, err := h.st.CreateCampaign(h.ctx, store.Campaign{Name: fmt.Sprintf("campaign-%d", account), AccountID: account, MessageTemplate: template})
	if err != nil {
		h.t.Fatal(err)
	}
	return id
}

func (h *harness) targets(campaign int64, identifiers ...string) {
	h.t.Helper()
	var nt []store.NewTarget
	for _, id := range identifiers {
		nt = append(nt, store.NewTarget{Identifier: id})
	}
	if _, err := h.st.AddTargets(h.ctx, campaign, nt); err != nil {
		h.t.Fatal(err)
	}
}

// targetRow is a target's state as a user reads it.
type targetRow struct {
	ID                       int64
	Identifier, Err, ErrType string
	Status                   store.TargetStatus
	InvitationID             string
	Attempts, Deferrals      int
}

func (h *harness) rows() map[string]targetRow {
	h.t.Helper()
	out := map[string]targetRow{}
	for _, r := range storetest.AllTargets(h.t, h.db) {
		out[r.Identifier] = targetRow{ID: r.ID, Identifier: r.Identifier, Err: r.LastError, ErrType: r.ErrorType, Status: r.Status,
			InvitationID: r.InvitationID, Attempts: r.Attempts, Deferrals: r.Deferrals}
	}
	return out
}

// waitFor polls cond (a database read) until it holds or
// patient(timeout) passes. Polling the durable state is the signal here:
// the pipeline runs in other goroutines and processes.
func (h *harness) waitFor(what string, timeout time.Duration, cond func() bool) {
	h.t.Helper()
	if waited, ok := eventually(timeout, cond); !ok {
		h.t.Fatalf("timed out after %s waiting for %s; targets: %+v", waited, what, h.rows())
	}
}

// waitUntil polls cond until it holds, and fails the test after
// patient(timeout).
func waitUntil(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	if waited, ok := eventually(timeout, cond); !ok {
		t.Fatalf("timed out after %s waiting for %s", waited, what)
	}
}

// eventually polls cond until it holds (true), or until patient(timeout)
// has passed (false, and how long it waited).
func eventually(timeout time.Duration, cond func() bool) (time.Duration, bool) {
	timeout = patient(timeout)
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return timeout, false
		}
		time.Sleep(50 * time.Millisecond)
	}
	return timeout, true
}

// patient stretches a wait's timeout. A test's timeouts are what an idle
// machine needs, with room to spare; a CI machine running other
// packages' tests on the same two cores has needed several times as long
// (scheduler ticks of 12-47 s). A wait ends as soon as its condition
// holds, so patience costs a passing test nothing; it is capped so that a
// failing wait still reports before the package's timeout.
func patient(timeout time.Duration) time.Duration {
	return max(timeout, min(3*timeout, 5*time.Minute))
}

// waitTerminal waits until every target is sent, skipped or failed.
func (h *harness) waitTerminal(timeout time.Duration) map[string]targetRow {
	h.t.Helper()
	var lastErr error
	h.waitFor("every target to end", timeout, func() bool {
		n, err := storetest.UnfinishedOrError(h.db)
		if err != nil {
			// The test's own pool may hold a connection that a Postgres
			// restart closed: the next query gets a fresh one.
			if lastErr == nil {
				h.t.Logf("waiting for every target to end: %v (asking again)", err)
			}
			lastErr = err
			return false
		}
		return n == 0
	})
	return h.rows()
}

func (h *harness) accountRow(id int64) *store.Account {
	h.t.Helper()
	a, err := h.st.Account(h.ctx, id)
	if err != nil {
		h.t.Fatal(err)
	}
	return a
}

// invites returns the simulator's record of invitation requests to a
// recipient (provider id or search).
func (h *harness) invitesTo(recipient string) []simulator.Request {
	var out []simulator.Request
	for _, r := range h.sim.Requests() {
		if r.Op == "invite" && r.Recipient == recipient {
			out = append(out, r)
		}
	}
	return out
}

// tailBytes is how much of a failed test's logs it prints:
// OUTREACH_E2E_LOG_BYTES, else 6000.
func tailBytes() int {
	if n, err := strconv.Atoi(os.Getenv("OUTREACH_E2E_LOG_BYTES")); err == nil && n > 0 {
		return n
	}
	return 6000
}
