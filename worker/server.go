package worker

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
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

// NewServer returns the asynq server for w on rdb, with outreach's retry
// semantics: snoozes are no failures and use their own delay.
func (w *Worker) NewServer(rdb redis.UniversalClient, sc ServerConfig) *asynq.Server {
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
		Queues:                   map[string]int{QueueInvites: 3, QueueLookups: 1},
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
