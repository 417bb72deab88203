// Package bench measures the performance targets of the design brief
// against real Postgres and Redis and an in-process simulator of the
// providers with zero latency: pipeline throughput against bare asynq,
// limit accuracy at scale, scheduler cost against table size, wake-up
// latency and resident memory. It reports; it asserts nothing about wall
// time. `outreach bench` runs it and prints the table.
package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"time"
)

// Config sizes the benchmark. Zero values take the defaults noted.
type Config struct {
	// DatabaseURL is a Postgres server on which the benchmark creates (and
	// drops) its own databases; RedisURL a Redis whose database it flushes.
	// Both are required (the command starts throwaway servers for them).
	DatabaseURL, RedisURL string

	// Targets and Accounts size the throughput run (default 100,000 over
	// 100 accounts); Concurrency is the handlers of its worker and of the
	// bare asynq server alike (default 20).
	Targets, Accounts, Concurrency int
	// CPUProfile, when set, receives a CPU profile of the pipeline part of
	// the first run of throughput, accuracy or pool.
	CPUProfile io.Writer

	// Accuracy: AccuracyAccounts accounts (default 1,000) with Windows
	// (default 2 per 2 s and 10 per 20 s: 500 sends a second at 1,000
	// accounts, what a 2-core machine sustains), AccuracyWorkers worker
	// servers (default 3) of AccuracyConcurrency handlers (default 300: a
	// task comes up to a second early, since asynq schedules to the second,
	// and waits for its slot in its handler), for AccuracyDuration (default
	// 2 min).
	AccuracyAccounts, AccuracyWorkers, AccuracyConcurrency int
	AccuracyDuration                                       time.Duration
	Windows                                                []Window

	// ScaleSizes are the table sizes of the scheduler-cost run (default
	// 100,000; the command adds 10,000,000 with --big).
	ScaleSizes []int
	// ScalePending is how many targets are waiting at every size (default
	// 10,000), ScaleAccounts over how many accounts (default 100).
	ScalePending, ScaleAccounts int

	// WakeSamples is how many targets the wake-up run inserts one by one
	// (default 200).
	WakeSamples int

	// Binary is the outreach executable run as scheduler and worker
	// processes for the memory run; empty skips it. MemoryAccounts
	// (default 1,000) and MemoryDuration (default 30 s) size it.
	Binary         string
	MemoryAccounts int
	MemoryDuration time.Duration
	// RecoverySamples is how many worker processes the recovery run kills
	// with invitations in flight (default 3; needs Binary).
	RecoverySamples int

	// PoolAccounts (default 50) and PoolDuration (default 1 min) size the
	// sender-pool run: one campaign over a pool of every account, with
	// Windows (run only when Only names "pool").
	PoolAccounts int
	PoolDuration time.Duration

	// Only, when not empty, runs only the named scenarios: "throughput",
	// "accuracy", "scale", "wakeup", "memory", "recovery", "pool".
	Only []string
	// Progress receives a line per step; nil means none.
	Progress io.Writer
	// Logger receives the pipeline's logs; nil means none.
	Logger *slog.Logger
}

// Window is a compressed rolling limit: Max sends per Per.
type Window struct {
	Max int
	Per time.Duration
}

func (w Window) String() string { return fmt.Sprintf("%d per %s", w.Max, w.Per) }

func (c *Config) defaults() {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.Targets, 100_000)
	def(&c.Accounts, 100)
	def(&c.Concurrency, 20)
	def(&c.AccuracyAccounts, 1000)
	def(&c.AccuracyWorkers, 3)
	def(&c.AccuracyConcurrency, 300)
	def(&c.ScalePending, 10_000)
	def(&c.ScaleAccounts, 100)
	def(&c.WakeSamples, 200)
	def(&c.MemoryAccounts, 1000)
	def(&c.RecoverySamples, 3)
	def(&c.PoolAccounts, 50)
	if c.PoolDuration <= 0 {
		c.PoolDuration = time.Minute
	}
	if c.AccuracyDuration <= 0 {
		c.AccuracyDuration = 2 * time.Minute
	}
	if c.MemoryDuration <= 0 {
		c.MemoryDuration = 30 * time.Second
	}
	if len(c.Windows) == 0 {
		c.Windows = []Window{{Max: 2, Per: 2 * time.Second}, {Max: 10, Per: 20 * time.Second}}
	}
	if len(c.ScaleSizes) == 0 {
		c.ScaleSizes = []int{100_000}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
}

func (c *Config) runs(name string) bool {
	if len(c.Only) == 0 {
		return true
	}
	for _, n := range c.Only {
		if n == name {
			return true
		}
	}
	return false
}

// Result holds what each scenario measured; a nil part was not run.
type Result struct {
	Throughput *ThroughputResult
	Accuracy   *AccuracyResult
	Scale      []ScaleResult
	Wakeup     *WakeupResult
	Memory     *MemoryResult
	Recovery   *RecoveryResult
	Pool       *PoolResult
}

// Run runs the scenarios of cfg in order and returns their results. A
// scenario that fails ends the run with its error and what was measured
// before it.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	cfg.defaults()
	if cfg.DatabaseURL == "" || cfg.RedisURL == "" {
		return nil, fmt.Errorf("bench: DatabaseURL and RedisURL are required")
	}
	e, err := newEnv(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer e.close()
	res := &Result{}
	step := func(name string, f func() error) error {
		if !cfg.runs(name) {
			return nil
		}
		e.progress("%s: starting", name)
		start := time.Now()
		if err := f(); err != nil {
			return fmt.Errorf("bench %s: %w", name, err)
		}
		e.progress("%s: done in %s", name, time.Since(start).Round(time.Millisecond))
		return nil
	}
	if err := step("throughput", func() (err error) { res.Throughput, err = e.throughput(ctx); return }); err != nil {
		return res, err
	}
	if err := step("accuracy", func() (err error) { res.Accuracy, err = e.accuracy(ctx); return }); err != nil {
		return res, err
	}
	if err := step("scale", func() error {
		for _, n := range cfg.ScaleSizes {
			r, err := e.scale(ctx, n)
			if err != nil {
				return err
			}
			res.Scale = append(res.Scale, *r)
		}
		return nil
	}); err != nil {
		return res, err
	}
	if err := step("wakeup", func() (err error) { res.Wakeup, err = e.wakeup(ctx); return }); err != nil {
		return res, err
	}
	if slices.Contains(cfg.Only, "pool") {
		if err := step("pool", func() (err error) { res.Pool, err = e.pool(ctx); return }); err != nil {
			return res, err
		}
	}
	if cfg.Binary != "" {
		if err := step("memory", func() (err error) { res.Memory, err = e.memory(ctx); return }); err != nil {
			return res, err
		}
		if err := step("recovery", func() (err error) { res.Recovery, err = e.recovery(ctx); return }); err != nil {
			return res, err
		}
	}
	return res, nil
}
