package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/outreach-dev/outreach/store"
)

// ServerConfig configures the asynq server that runs a Worker.
type ServerConfig struct {
	// Concurrency is how many tasks run at once (default 20).
	Concurrency int
	// ShutdownTimeout is how long a stopping server lets tasks finish
	// before handing them back (default the worker's RequestTimeout + 10 s,
	// so that a call in flight completes and is recorded).
	ShutdownTimeout time.Duration
	// DelayedTaskCheckInterval is how often scheduled and snoozed tasks are
	// moved to their queue (default 250 ms: slots are kept to the moment).
	DelayedTaskCheckInterval time.Duration
	// TaskCheckInterval is how long an idle server waits before looking
	// for new tasks again (default 100 ms, so new work starts at once).
	TaskCheckInterval time.Duration
	Logger            *slog.Logger
}

// Server runs a Worker's handlers on asynq together with the worker's
// liveness: Start registers the worker process in Postgres and renews its
// heartbeat every HeartbeatInterval from a goroutine of its own, so that a
// worker killed mid-call is known dead within seconds and its in-flight
// sends recovered (store.RecoverDeadWorkers), while a live worker in a slow
// provider call is never taken for dead.
type Server struct {
	w   *Worker
	srv *asynq.Server
	hb  *store.HeartbeatConn
	log *slog.Logger

	stop chan struct{}
	done chan struct{}
}

// NewServer returns the server for w on rdb, with outreach's retry
// semantics: snoozes are no failures and use their own delay.
func (w *Worker) NewServer(rdb redis.UniversalClient, sc ServerConfig) *Server {
	srv := w.newAsynqServer(rdb, &sc)
	return &Server{w: w, srv: srv, log: sc.Logger}
}

// Start registers the worker's liveness row, starts its heartbeat, then
// starts processing tasks with h (normally w.Mux()).
func (s *Server) Start(h asynq.Handler) error {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	s.hb = s.w.cfg.Store.HeartbeatConn()
	id, err := s.register(ctx)
	if err != nil {
		s.hb.Close(ctx)
		return fmt.Errorf("start worker: %w", err)
	}
	s.stop, s.done = make(chan struct{}), make(chan struct{})
	go s.heartbeat(id)
	if err := s.srv.Start(h); err != nil {
		s.stopHeartbeat()
		return err
	}
	return nil
}

func (s *Server) register(ctx context.Context) (int64, error) {
	host, _ := os.Hostname()
	id, err := s.hb.Register(ctx, host, os.Getpid())
	if err != nil {
		return 0, err
	}
	s.w.id.Store(id)
	s.log.InfoContext(ctx, "worker registered", "worker_id", id, "host", host, "pid", os.Getpid(),
		"heartbeat_interval", s.w.cfg.HeartbeatInterval)
	return id, nil
}

// heartbeat renews the liveness row until stopped. A worker that finds
// itself taken for dead (its heartbeats failed for too long; its in-flight
// sends were recovered) registers again under a new id.
func (s *Server) heartbeat(id int64) {
	defer close(s.done)
	t := time.NewTicker(s.w.cfg.HeartbeatInterval)
	defer t.Stop()
	failing := 0
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*s.w.cfg.HeartbeatInterval)
		err := s.hb.Heartbeat(ctx, id)
		if errors.Is(err, store.ErrRecovered) {
			s.log.ErrorContext(ctx, "this worker was taken for dead (no heartbeat for too long); its in-flight sends were handed over; registering again",
				"worker_id", id)
			if nid, rerr := s.register(ctx); rerr == nil {
				id, err = nid, nil
			} else {
				err = rerr
			}
		}
		cancel()
		switch {
		case err != nil:
			failing++
			if failing == 1 || failing%10 == 0 {
				s.log.Warn("worker heartbeat failed", "worker_id", id, "failures", failing, "error", err)
			}
		case failing > 0:
			s.log.Info("worker heartbeat renewed", "worker_id", id, "after_failures", failing)
			failing = 0
		}
	}
}

func (s *Server) stopHeartbeat() {
	if s.stop == nil {
		return
	}
	close(s.stop)
	<-s.done
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if id := s.w.id.Load(); id != 0 {
		if err := s.hb.Stopped(ctx, id); err != nil {
			s.log.Warn("marking the worker stopped", "worker_id", id, "error", err)
		}
	}
	s.hb.Close(ctx)
	s.stop = nil
}

// Shutdown stops taking tasks and waits for those in flight, their calls
// and the recording of their answers included, up to ShutdownTimeout;
// then it stops the heartbeat and marks the worker stopped, so that
// anything it could not finish is recovered at once.
func (s *Server) Shutdown() {
	s.srv.Shutdown()
	if n := s.w.AnswersHeld(); n > 0 {
		s.log.Error("stopping with answers not recorded: they will be settled from the provider or sent again", "answers", n)
	}
	s.stopHeartbeat()
}

// newAsynqServer builds the asynq server, filling sc's defaults.
func (w *Worker) newAsynqServer(rdb redis.UniversalClient, sc *ServerConfig) *asynq.Server {
	if sc.Concurrency <= 0 {
		sc.Concurrency = 20
	}
	if sc.ShutdownTimeout <= 0 {
		sc.ShutdownTimeout = w.cfg.RequestTimeout + 10*time.Second
	}
	if sc.DelayedTaskCheckInterval <= 0 {
		sc.DelayedTaskCheckInterval = 250 * time.Millisecond
	}
	if sc.TaskCheckInterval <= 0 {
		sc.TaskCheckInterval = 100 * time.Millisecond
	}
	if sc.Logger == nil {
		sc.Logger = w.log
	}
	log := sc.Logger
	return asynq.NewServerFromRedisClient(rdb, asynq.Config{
		Concurrency:              sc.Concurrency,
		Queues:                   map[string]int{QueueInvites: 3, QueueLookups: 1, QueueWithdrawals: 1, QueuePolls: 1},
		IsFailure:                IsFailure,
		RetryDelayFunc:           RetryDelay,
		ShutdownTimeout:          sc.ShutdownTimeout,
		DelayedTaskCheckInterval: sc.DelayedTaskCheckInterval,
		TaskCheckInterval:        sc.TaskCheckInterval,
		HealthCheckFunc: func(err error) {
			if err != nil {
				log.Error("redis health check failed", "error", err)
			}
		},
		ErrorHandler: asynq.ErrorHandlerFunc(func(ctx context.Context, t *asynq.Task, err error) {
			if IsFailure(err) {
				log.ErrorContext(ctx, "task failed; asynq will retry it", "task", t.Type(), "payload", string(t.Payload()), "error", err)
			}
		}),
		Logger:   asynqLogger{log.With("component", "asynq")},
		LogLevel: asynq.WarnLevel,
	})
}

// asynqLogger adapts slog to asynq's logger.
type asynqLogger struct{ l *slog.Logger }

func (a asynqLogger) Debug(args ...any) { a.l.Debug(fmt.Sprint(args...)) }
func (a asynqLogger) Info(args ...any)  { a.l.Info(fmt.Sprint(args...)) }
func (a asynqLogger) Warn(args ...any)  { a.l.Warn(fmt.Sprint(args...)) }
func (a asynqLogger) Error(args ...any) { a.l.Error(fmt.Sprint(args...)) }
func (a asynqLogger) Fatal(args ...any) { a.l.Error(fmt.Sprint(args...)) }
