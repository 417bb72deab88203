package worker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outreach-dev/outreach/internal/testenv"
	"github.com/outreach-dev/outreach/provider"
	"github.com/outreach-dev/outreach/provider/simulator"
	"github.com/outreach-dev/outreach/provider/unipile"
	"github.com/outreach-dev/outreach/store"
	"github.com/outreach-dev/outreach/store/storetest"
)

// The tests in this file drive Worker.handle one task at a time, against a
// fresh database and the simulator, with an injected clock: no Redis, no
// scheduler (the test plays it: it queues targets with SQL).

func TestMain(m *testing.M) { testenv.Main(m) }

const testUnipileKey = "sk-unipile-SECRET-handle-5e1d"

// fixture is one test's database, simulator and clock.
type fixture struct {
	t      *testing.T
	ctx    context.Context
	st     *store.Store
	db     storetest.DB // the test's own, for setup and checks (storetest)
	sim    *simulator.Simulator
	simURL string
	logs   *syncBuffer
	log    *slog.Logger

	mu  sync.Mutex
	now time.Time
}

func newFixture(t *testing.T, sim simulator.Config) *fixture {
	t.Helper()
	st, db := testenv.StoreDB(t)
	sim.UnipileAPIKeys = []string{testUnipileKey}
	s := simulator.New(sim)
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	logs := &syncBuffer{}
	f := &fixture{t: t, ctx: context.Background(), st: st, db: db, sim: s, simURL: srv.URL, logs: logs,
		log: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		now: time.Now().Truncate(time.Millisecond)}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs:\n%s", logs.String())
		}
	})
	return f
}

func (f *fixture) clock() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fixture) setClock(t time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = t
}

// clients has a Unipile client for credentials_ref "default" only, and
// answers for any other as cmd/outreach does when the key is not set.
func (f *fixture) clients(p provider.Name, ref string) (provider.Client, error) {
	if p != provider.Unipile {
		return nil, fmt.Errorf("unknown provider %q", p)
	}
	if ref != "default" {
		return nil, fmt.Errorf("UNIPILE_API_KEY_%s is not set", strings.ToUpper(ref))
	}
	return unipile.New(unipile.Config{BaseURL: f.simURL, APIKey: testUnipileKey, Timeout: 5 * time.Second})
}

func (f *fixture) worker(cfg Config) *Worker {
	f.t.Helper()
	cfg.Store, cfg.Logger, cfg.Now = f.st, f.log, f.clock
	if cfg.Clients == nil {
		cfg.Clients = f.clients
	}
	if cfg.Policy == nil {
		p := DefaultPolicy()
		p.Rand = lowest
		cfg.Policy = &p
	}
	w, err := New(cfg)
	if err != nil {
		f.t.Fatal(err)
	}
	return w
}

func (f *fixture) account(name, ref string) int64 {
	f.t.Helper()
	id, err := f.st.CreateAccount(f.ctx, store.NewAccount{Name: name, Provider: "unipile", ProviderAccountID: name, CredentialsRef: ref,
		Pacing: store.PacingUnlimited})
	if err != nil {
		f.t.Fatal(err)
	}
	return id
}

// target adds a target to the account's campaign and queues it, as the
// scheduler would: resolved (its provider id known) or for a lookup.
func (f *fixture) target(account int64, slug string, resolved bool) int64 {
	f.t.Helper()
	campaign, ok := storetest.CampaignOf(f.t, f.db, account)
	if !ok {
		var err error
		campaign, err = f.st.CreateCampaign(f.ctx, store.Campaign{Name: fmt.Sprintf("c-%d", account), AccountID: account})
		if err != nil {
			f.t.Fatal(err)
		}
	}
	pid := ""
	if resolved {
		pid = simulator.ProviderID(slug)
	}
	return storetest.AddQueuedTarget(f.t, f.db, campaign, slug, pid, f.clock())
}

// queue plays the scheduler: a pending target is queued again.
func (f *fixture) queue(id int64) {
	f.t.Helper()
	storetest.Requeue(f.t, f.db, id)
}

type targetState struct {
	Status                store.TargetStatus
	LastError, ProviderID string
	Attempts              int
	Next                  time.Time
}

func (f *fixture) state(id int64) targetState {
	f.t.Helper()
	t, err := f.st.Target(f.ctx, id)
	if err != nil {
		f.t.Fatal(err)
	}
	return targetState{Status: t.Status, LastError: t.LastError, ProviderID: t.ProviderID, Attempts: t.Attempts, Next: t.NextAttemptAt}
}

func (f *fixture) ledger() int {
	f.t.Helper()
	return storetest.LedgerRows(f.t, f.db)
}

// run hands one task of the target to the worker's mux, middleware
// included, as asynq would.
func (f *fixture) run(w *Worker, typ string, id int64) error {
	task, _ := NewTask(typ, id)
	return w.Mux().ProcessTask(f.ctx, task)
}

func (f *fixture) simRequests(op string) int {
	n := 0
	for _, r := range f.sim.Requests() {
		if r.Op == op {
			n++
		}
	}
	return n
}

// TestHandleInviteAttemptsAfterLookup checks that an invitation's tries
// are counted apart from the lookup that resolved its target: its first
// 503 backs off from the first step (half of TransientBackoff at the
// lowest jitter), each next one doubles, and it gets exactly
// TransientAttempts calls before it fails.
func TestHandleInviteAttemptsAfterLookup(t *testing.T) {
	t.Parallel()
	f := newFixture(t, simulator.Config{Scenarios: []simulator.Scenario{
		{Provider: provider.Unipile, Recipient: simulator.ProviderID("jane-doe"), Error: "service_unavailable"}}})
	w := f.worker(Config{})
	p := w.policy
	li := f.account("li", "default")
	id := f.target(li, "jane-doe", false)

	if err := f.run(w, TypeResolve, id); err != nil {
		t.Fatalf("lookup: %v", err)
	}
	if s := f.state(id); s.Status != store.TargetPending || s.ProviderID == "" || s.Attempts != 0 {
		t.Errorf("after the lookup: %+v, want pending, resolved, no invitation attempt counted", s)
	}
	var waits []time.Duration
	for i := 0; i < 2*p.TransientAttempts; i++ {
		f.queue(id)
		before := f.state(id)
		if before.Status != store.TargetQueued {
			break
		}
		if before.Next.After(f.clock()) {
			f.setClock(before.Next)
		}
		now := f.clock()
		err := f.run(w, TypeInvite, id)
		after := f.state(id)
		if after.Status == store.TargetFailed {
			break
		}
		wait := after.Next.Sub(now)
		waits = append(waits, wait)
		var s *snooze
		if errors.As(err, &s) && s.after != wait {
			t.Errorf("try %d: task snoozed %s, target due in %s", i+1, s.after, wait)
		}
	}
	want := []time.Duration{
		p.TransientBackoff / 2, p.TransientBackoff, 2 * p.TransientBackoff, 4 * p.TransientBackoff,
	}[:p.TransientAttempts-1]
	if fmt.Sprint(waits) != fmt.Sprint(want) {
		t.Errorf("backoffs %v, want %v", waits, want)
	}
	if n := f.simRequests("invite"); n != p.TransientAttempts {
		t.Errorf("%d invitation calls, want TransientAttempts = %d", n, p.TransientAttempts)
	}
	s := f.state(id)
	if wantErr := fmt.Sprintf("gave up after %d attempts", p.TransientAttempts); s.Status != store.TargetFailed || !strings.Contains(s.LastError, wantErr) {
		t.Errorf("target %+v, want failed: %s", s, wantErr)
	}
}

// TestHandleWithoutCredentialsChangesNothing checks that a task for an
// account this worker has no credentials for changes nothing but the
// target's wait: the account stays active, no ledger row, no attempt, no
// call; the target waits, saying why, a little longer each time.
func TestHandleWithoutCredentialsChangesNothing(t *testing.T) {
	t.Parallel()
	f := newFixture(t, simulator.Config{})
	m := &countingMetrics{}
	w := f.worker(Config{Metrics: m})
	acme := f.account("li-acme", "acme")
	invite := f.target(acme, "jane-doe", true)
	lookup := f.target(acme, "john-roe", false)

	for _, tc := range []struct {
		typ string
		id  int64
	}{{TypeInvite, invite}, {TypeResolve, lookup}} {
		var waits []time.Duration
		for i := 0; i < 5; i++ {
			f.queue(tc.id)
			now := f.clock()
			if err := f.run(w, tc.typ, tc.id); err != nil {
				t.Fatalf("%s: %v, want the task done (handed back)", tc.typ, err)
			}
			s := f.state(tc.id)
			if s.Status != store.TargetPending || s.Attempts != 0 {
				t.Errorf("%s: target %+v, want pending with no attempt", tc.typ, s)
			}
			for _, part := range []string{"waiting: ", "unipile/acme", "UNIPILE_API_KEY_ACME is not set"} {
				if !strings.Contains(s.LastError, part) {
					t.Errorf("%s: last error %q, want it to say %q", tc.typ, s.LastError, part)
				}
			}
			waits = append(waits, s.Next.Sub(now))
			f.setClock(s.Next)
		}
		if want := "[30s 1m0s 2m0s 4m0s 5m0s]"; fmt.Sprint(waits) != want {
			t.Errorf("%s: waits %v, want %s", tc.typ, waits, want)
		}
	}
	a, err := f.st.Account(f.ctx, acme)
	if err != nil {
		t.Fatal(err)
	}
	if a.Status != store.AccountActive || a.PauseReason != "" {
		t.Errorf("account %s (%s), want active: a worker's configuration is not the account's", a.Status, a.PauseReason)
	}
	if n := f.ledger(); n != 0 {
		t.Errorf("%d ledger rows, want none: no call was made", n)
	}
	if n := len(f.sim.Requests()); n != 0 {
		t.Errorf("%d provider requests, want none", n)
	}
	if got := m.count("unserved", "no_credentials"); got != 10 {
		t.Errorf("%d unserved outcomes counted, want 10", got)
	}
	if strings.Contains(f.logs.String(), testUnipileKey) {
		t.Errorf("a key in the logs")
	}
}

// TestHandleClientGoneAfterReserving checks the fallback when the client
// found before reserving is gone when the call is due: the reservation
// leaves the ledger, the account is untouched and the task waits.
func TestHandleClientGoneAfterReserving(t *testing.T) {
	t.Parallel()
	f := newFixture(t, simulator.Config{})
	var mu sync.Mutex
	calls := 0
	w := f.worker(Config{Clients: func(p provider.Name, ref string) (provider.Client, error) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if calls > 1 {
			return nil, errors.New("UNIPILE_API_KEY is not set")
		}
		return f.clients(p, ref)
	}})
	li := f.account("li", "default")
	id := f.target(li, "jane-doe", true)
	err := f.run(w, TypeInvite, id)
	var s *snooze
	if !errors.As(err, &s) || s.after != 30*time.Second {
		t.Errorf("task: %v, want snoozed 30s", err)
	}
	st := f.state(id)
	if st.Status != store.TargetQueued || !strings.Contains(st.LastError, "waiting: ") || !strings.Contains(st.LastError, "unipile/default") {
		t.Errorf("target %+v, want queued, waiting for credentials", st)
	}
	if n := f.ledger(); n != 0 {
		t.Errorf("%d ledger rows, want none: no call was made", n)
	}
	if a, err := f.st.Account(f.ctx, li); err != nil || a.Status != store.AccountActive {
		t.Errorf("account %+v (%v), want active", a, err)
	}
	if n := len(f.sim.Requests()); n != 0 {
		t.Errorf("%d provider requests, want none", n)
	}
}

// TestCheckAccountsNamesUnservedAccounts checks the start-up report: a
// warning per account the worker has no credentials for, naming it, its
// provider and credentials_ref, never a secret; and no account changed.
func TestCheckAccountsNamesUnservedAccounts(t *testing.T) {
	t.Parallel()
	f := newFixture(t, simulator.Config{})
	w := f.worker(Config{})
	f.account("li-main", "default")
	f.account("li-acme", "acme")
	f.account("li-beta", "beta")
	unserved, err := w.CheckAccounts(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, a := range unserved {
		names = append(names, a.Name)
	}
	if fmt.Sprint(names) != "[li-acme li-beta]" {
		t.Errorf("unserved %v, want [li-acme li-beta]", names)
	}
	logs := f.logs.String()
	for _, want := range []string{`"account":"li-acme"`, `"credentials_ref":"acme"`, "UNIPILE_API_KEY_ACME is not set",
		`"account":"li-beta"`, `"credentials_ref":"beta"`, `"served":1`} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %s:\n%s", want, logs)
		}
	}
	if strings.Contains(logs, `"account":"li-main"`) || strings.Contains(logs, testUnipileKey) {
		t.Errorf("logs name a served account or a key:\n%s", logs)
	}
	accounts, err := f.st.Accounts(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range accounts {
		if a.Status != store.AccountActive {
			t.Errorf("account %s is %s, want active", a.Name, a.Status)
		}
	}
}

// countingMetrics records the worker's outcomes.
type countingMetrics struct {
	mu sync.Mutex
	n  map[string]int
}

func (m *countingMetrics) Outcome(_, _, outcome, errorType string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.n == nil {
		m.n = map[string]int{}
	}
	m.n[outcome+"/"+errorType]++
}

func (m *countingMetrics) AccountPaused(_, _, kind string) {
	m.Outcome("", "", "paused", kind)
}

func (m *countingMetrics) count(outcome, errorType string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.n[outcome+"/"+errorType]
}

// syncBuffer is a log sink safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
