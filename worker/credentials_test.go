package worker_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/outreach-dev/outreach/internal/testenv"
	"github.com/outreach-dev/outreach/provider"
	"github.com/outreach-dev/outreach/provider/simulator"
	"github.com/outreach-dev/outreach/provider/unipile"
	"github.com/outreach-dev/outreach/scheduler"
	"github.com/outreach-dev/outreach/store"
	"github.com/outreach-dev/outreach/store/storetest"
	"github.com/outreach-dev/outreach/worker"
)

// TestWorkerWithoutCredentialsLeavesAccountToOthers runs the pipeline
// (scheduler, Redis, workers, simulator) with a worker that has no
// credentials at all, first alone, then beside one that has them:
//
//   - alone, it sends nothing and changes nothing on the account: every
//     target waits, saying which credentials are missing, with no ledger
//     row and no call;
//   - beside a configured worker, every target is sent, once, by the
//     other, and the account stays active throughout.
func TestWorkerWithoutCredentialsLeavesAccountToOthers(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st, db := testenv.StoreDB(t)
	rs := testenv.Redis(t)
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr})
	t.Cleanup(func() { rdb.Close() })
	const key = "sk-unipile-SECRET-pool-91ab"
	sim := simulator.New(simulator.Config{UnipileAPIKeys: []string{key}})
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	logs := &logBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	t.Cleanup(func() {
		if t.Failed() {
			s := logs.String()
			t.Logf("logs:\n%s", s[max(0, len(s)-8000):])
		}
	})

	li, err := st.CreateAccount(ctx, store.NewAccount{Name: "li", Provider: "unipile", ProviderAccountID: "li", Pacing: store.PacingUnlimited})
	if err != nil {
		t.Fatal(err)
	}
	c, err := st.CreateCampaign(ctx, store.Campaign{Name: "c", AccountID: li})
	if err != nil {
		t.Fatal(err)
	}
	// Half need a lookup (slugs), half are resolved (provider ids).
	var nt []store.NewTarget
	for i := range 4 {
		nt = append(nt, store.NewTarget{Identifier: fmt.Sprintf("person-%d", i)},
			store.NewTarget{Identifier: simulator.ProviderID(fmt.Sprintf("known-%d", i))})
	}
	if _, err := st.AddTargets(ctx, c, nt); err != nil {
		t.Fatal(err)
	}

	s, err := scheduler.New(scheduler.Config{Store: st, Redis: rdb, Logger: log.With("component", "scheduler"),
		Horizon: 5 * time.Second, PollInterval: 100 * time.Millisecond,
		ReconcileInterval: time.Second, ReconcileGrace: 2 * time.Second, RequestTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	start := func(name string, clients worker.ClientFunc) {
		w, err := worker.New(worker.Config{Store: st, Clients: clients, Logger: log.With("component", name),
			RequestTimeout: 5 * time.Second, HoldFor: 5 * time.Second,
			UnservedWait: 50 * time.Millisecond, UnservedWaitMax: 400 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.CheckAccounts(ctx); err != nil {
			t.Fatal(err)
		}
		as := w.NewServer(rdb, worker.ServerConfig{Concurrency: 4, DelayedTaskCheckInterval: 50 * time.Millisecond, ShutdownTimeout: 8 * time.Second})
		if err := as.Start(w.Mux()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(as.Shutdown)
	}
	unconfigured := func(provider.Name, string) (provider.Client, error) {
		return nil, errors.New("UNIPILE_DSN is not set")
	}
	var mu sync.Mutex
	var client provider.Client
	configured := func(p provider.Name, ref string) (provider.Client, error) {
		mu.Lock()
		defer mu.Unlock()
		if client == nil {
			c, err := unipile.New(unipile.Config{BaseURL: srv.URL, APIKey: key, Timeout: 5 * time.Second})
			if err != nil {
				return nil, err
			}
			client = c
		}
		return client, nil
	}

	accountActive := func() {
		t.Helper()
		a, err := st.Account(ctx, li)
		if err != nil {
			t.Fatal(err)
		}
		if a.Status != store.AccountActive || a.PauseReason != "" {
			t.Fatalf("account %s (%s), want active: a worker's missing credentials are not the account's fault", a.Status, a.PauseReason)
		}
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	// Alone: every target comes to the worker, and waits, saying why.
	start("worker-unconfigured", unconfigured)
	waitFor("every target to be handed back with its reason", func() bool {
		accountActive()
		return storetest.WaitingWithError(t, db, "waiting: this worker has no credentials for unipile/default (UNIPILE_DSN is not set)") == len(nt)
	})
	accountActive()
	if n := storetest.Touched(t, db); n != 0 {
		t.Errorf("%d targets ended or counted an attempt, want none", n)
	}
	if n := storetest.LedgerRows(t, db); n != 0 {
		t.Errorf("%d ledger rows, want none", n)
	}
	if n := len(sim.Requests()); n != 0 {
		t.Errorf("%d provider requests, want none", n)
	}
	if !strings.Contains(logs.String(), "this worker has no credentials for an account") {
		t.Errorf("the unconfigured worker did not warn at start")
	}

	// Beside a configured worker: the other sends everything.
	start("worker-configured", configured)
	waitFor("every target to end", func() bool {
		accountActive()
		return storetest.Unfinished(t, db) == 0
	})
	accountActive()
	if n := storetest.NotSent(t, db); n != 0 {
		t.Errorf("%d targets not sent", n)
	}
	if d := sim.DuplicateInvites(); len(d) != 0 {
		t.Errorf("duplicate invitations: %+v", d)
	}
	invites := 0
	for _, r := range sim.Requests() {
		if r.Op == "invite" && r.Outcome == simulator.OutcomeSent {
			invites++
		}
	}
	if invites != len(nt) {
		t.Errorf("%d invitations sent, want %d", invites, len(nt))
	}
	if n := storetest.CountCalls(t, db, storetest.Calls{Actions: []store.Action{store.ActionInvite, store.ActionLookup},
		NotOutcomes: []store.Outcome{store.OutcomeSent, store.OutcomeResolved}}); n != 0 {
		t.Errorf("%d ledger rows other than sent or resolved", n)
	}
}

// logBuffer is a log sink safe for concurrent writers.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
