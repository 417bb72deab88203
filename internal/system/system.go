// Package system builds and runs outreach's pipeline from one
// configuration: the scheduler and the worker servers (with their
// liveness heartbeats) on a store and a Redis. The commands, the demo, the
// benchmarks and the end-to-end tests all wire the pipeline through it, in
// the style of wtf's Main: New builds, Run starts, Close stops.
package system

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/redis/go-redis/v9"

	"github.com/outreach-dev/outreach/scheduler"
	"github.com/outreach-dev/outreach/store"
	"github.com/outreach-dev/outreach/webhook"
	"github.com/outreach-dev/outreach/worker"
)

// Config says what a System runs and on what. Redis, and Store or
// OpenStore, are required; Worker.Clients is required when workers run.
type Config struct {
	// Store is the database the scheduler and the workers share, unless
	// OpenStore is set. The caller closes it. A shared pool must be large
	// enough for every handler and the scheduler: the scheduler's
	// statements queue behind the handlers' for a connection (on pgx's
	// default of 4 with 20 handlers, ticks of 6-20 s on a busy machine).
	// Whatever runs the pipeline for real uses OpenStore.
	Store *store.Store
	// OpenStore, if set, opens a store of its own (its own connection
	// pool) for the scheduler and for each worker server, as separate
	// processes have; Close closes them.
	OpenStore func(ctx context.Context) (*store.Store, error)
	// Redis holds the queues. The caller closes it.
	Redis redis.UniversalClient
	// Logger receives every component's logs, tagged with "component"
	// (default: none).
	Logger *slog.Logger
	// Scheduler configures the scheduler; nil runs none. Its Store, Redis
	// and Logger are filled in.
	Scheduler *scheduler.Config
	// Workers is how many worker servers New builds and Run starts;
	// StartWorker adds more.
	Workers int
	// Worker configures each worker; its Store and Logger are filled in.
	Worker worker.Config
	// Server configures each worker's asynq server.
	Server worker.ServerConfig
	// NumberWorkers tags each worker's logs with "worker", its number
	// from 1 (for several workers in one process, as in the demo).
	NumberWorkers bool
	// Webhooks, if set, runs a webhook runner (deliveries of the event
	// stream, package webhook) in a goroutine of its own; its Store and
	// Logger are filled in.
	Webhooks *webhook.Config
}

// System is the pipeline built from a Config: a scheduler (optional) and
// worker servers.
type System struct {
	cfg Config
	// Scheduler is the scheduler, nil if Config.Scheduler is nil.
	Scheduler *scheduler.Scheduler
	// Workers are the workers built by New, in order; their servers are
	// started by Run.
	Workers []*worker.Worker

	mu      sync.Mutex
	servers []*worker.Server
	stores  []*store.Store // opened with OpenStore, closed by Close
	n       int            // workers built so far, for their numbers
	cancel  context.CancelFunc
	done    chan struct{} // closed when the scheduler returns
	closed  bool

	webhooks *webhook.Runner // nil unless Config.Webhooks
	whCancel context.CancelFunc
	whDone   chan struct{} // closed when the webhook runner returns
}

// New builds the scheduler and cfg.Workers workers without starting them.
// On error, whatever it opened is closed.
func New(ctx context.Context, cfg Config) (*System, error) {
	if cfg.Redis == nil || (cfg.Store == nil && cfg.OpenStore == nil) {
		return nil, errors.New("system: Redis, and Store or OpenStore, are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &System{cfg: cfg}
	if cfg.Scheduler != nil {
		st, err := s.store(ctx)
		if err != nil {
			return nil, err
		}
		sc := *cfg.Scheduler
		sc.Store, sc.Redis, sc.Logger = st, cfg.Redis, cfg.Logger.With("component", "scheduler")
		if s.Scheduler, err = scheduler.New(sc); err != nil {
			s.Close()
			return nil, err
		}
	}
	if cfg.Webhooks != nil {
		st, err := s.store(ctx)
		if err != nil {
			s.Close()
			return nil, err
		}
		wc := *cfg.Webhooks
		wc.Store, wc.Logger = st, cfg.Logger.With("component", "webhooks")
		if s.webhooks, err = webhook.New(wc); err != nil {
			s.Close()
			return nil, err
		}
	}
	for range cfg.Workers {
		w, err := s.newWorker(ctx)
		if err != nil {
			s.Close()
			return nil, err
		}
		s.Workers = append(s.Workers, w)
	}
	return s, nil
}

// store returns the shared store, or opens one with OpenStore.
func (s *System) store(ctx context.Context) (*store.Store, error) {
	if s.cfg.OpenStore == nil {
		return s.cfg.Store, nil
	}
	st, err := s.cfg.OpenStore(ctx)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.stores = append(s.stores, st)
	s.mu.Unlock()
	return st, nil
}

func (s *System) newWorker(ctx context.Context) (*worker.Worker, error) {
	st, err := s.store(ctx)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.n++
	n := s.n
	s.mu.Unlock()
	wc := s.cfg.Worker
	wc.Store = st
	wc.Logger = s.cfg.Logger.With("component", "worker")
	if s.cfg.NumberWorkers {
		wc.Logger = wc.Logger.With("worker", n)
	}
	return worker.New(wc)
}

// Run starts the worker servers of the workers New built, then the
// scheduler, which runs until ctx ends or Close. It returns once they are
// started; on error, Close stops what was started.
func (s *System) Run(ctx context.Context) error {
	for _, w := range s.Workers {
		if _, err := s.start(w); err != nil {
			s.Close()
			return err
		}
	}
	if s.Scheduler != nil {
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		s.mu.Lock()
		s.cancel, s.done = cancel, done
		s.mu.Unlock()
		go func() {
			defer close(done)
			if err := s.Scheduler.Run(rctx); err != nil {
				s.cfg.Logger.ErrorContext(rctx, "scheduler stopped", "component", "scheduler", "error", err)
			}
		}()
	}
	if s.webhooks != nil {
		wctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		s.mu.Lock()
		s.whCancel, s.whDone = cancel, done
		s.mu.Unlock()
		go func() {
			defer close(done)
			_ = s.webhooks.Run(wctx)
		}()
	}
	return nil
}

// StartWorker builds one more worker and starts its server; Close stops
// it with the others. The caller may stop it sooner with its Shutdown (what
// SIGTERM does to `outreach worker`).
func (s *System) StartWorker(ctx context.Context) (*worker.Server, error) {
	w, err := s.newWorker(ctx)
	if err != nil {
		return nil, err
	}
	return s.start(w)
}

func (s *System) start(w *worker.Worker) (*worker.Server, error) {
	srv := w.NewServer(s.cfg.Redis, s.cfg.Server)
	if err := srv.Start(w.Mux()); err != nil {
		return nil, fmt.Errorf("start worker: %w", err)
	}
	s.mu.Lock()
	s.servers = append(s.servers, srv)
	s.mu.Unlock()
	return srv, nil
}

// Close stops the worker servers (each finishes the calls in flight and
// records them, see worker.Server.Shutdown), then the scheduler, and
// closes the stores it opened. Closing again does nothing.
func (s *System) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	servers, cancel, done, stores := s.servers, s.cancel, s.done, s.stores
	whCancel, whDone := s.whCancel, s.whDone
	s.mu.Unlock()
	if whCancel != nil {
		whCancel()
		<-whDone
	}
	for _, srv := range servers {
		srv.Shutdown()
	}
	if cancel != nil {
		cancel()
		<-done
	}
	for _, st := range stores {
		st.Close()
	}
}
