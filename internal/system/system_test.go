package system

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/outreach-dev/outreach/internal/testenv"
	"github.com/outreach-dev/outreach/provider"
	"github.com/outreach-dev/outreach/scheduler"
	"github.com/outreach-dev/outreach/store"
	"github.com/outreach-dev/outreach/worker"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func noClients(provider.Name, string) (provider.Client, error) { return nil, nil }

func TestNewRequiresRedisAndStore(t *testing.T) {
	if _, err := New(context.Background(), Config{}); err == nil {
		t.Fatal("New without Redis or a store: got no error")
	}
}

// TestRunAndClose runs a scheduler and workers, each on a store of its own,
// and checks that the worker servers are up while it runs and gone, and
// every store it opened closed, after Close.
func TestRunAndClose(t *testing.T) {
	ctx := context.Background()
	dsn := testenv.DatabaseURL(t)
	rs := testenv.Redis(t)
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr})
	t.Cleanup(func() { rdb.Close() })

	var mu sync.Mutex
	var opened []*store.Store
	sys, err := New(ctx, Config{
		OpenStore: func(ctx context.Context) (*store.Store, error) {
			st, err := store.Open(ctx, dsn, store.PoolSize(2))
			if err == nil {
				mu.Lock()
				opened = append(opened, st)
				mu.Unlock()
			}
			return st, err
		},
		Redis:     rdb,
		Scheduler: &scheduler.Config{PollInterval: 100 * time.Millisecond},
		Workers:   2,
		Worker:    worker.Config{Clients: noClients},
		Server:    worker.ServerConfig{Concurrency: 1},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sys.Close)
	if sys.Scheduler == nil || len(sys.Workers) != 2 {
		t.Fatalf("built scheduler %v and %d workers, want a scheduler and 2", sys.Scheduler != nil, len(sys.Workers))
	}
	if err := sys.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := sys.StartWorker(ctx); err != nil {
		t.Fatal(err)
	}
	if len(opened) != 4 {
		t.Errorf("opened %d stores, want 4 (the scheduler's and one per worker)", len(opened))
	}
	insp := asynq.NewInspectorFromRedisClient(rdb)
	servers := func() int {
		s, err := insp.Servers()
		if err != nil {
			t.Fatal(err)
		}
		return len(s)
	}
	deadline := time.Now().Add(30 * time.Second)
	for servers() != 3 {
		if time.Now().After(deadline) {
			t.Fatalf("%d asynq servers registered, want 3", servers())
		}
		time.Sleep(20 * time.Millisecond)
	}

	sys.Close()
	sys.Close() // again: nothing
	if n := servers(); n != 0 {
		t.Errorf("%d asynq servers left after Close, want 0", n)
	}
	for i, st := range opened {
		if _, err := st.Account(ctx, 1); err == nil || errors.Is(err, store.ErrNotFound) {
			t.Errorf("store %d still usable after Close (err %v)", i, err)
		}
	}
}
