package bench

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"

	"github.com/outreach-dev/outreach/provider/simulator"
	"github.com/outreach-dev/outreach/scheduler"
	"github.com/outreach-dev/outreach/store"
)

// ThroughputResult compares the pipeline with bare asynq on the same Redis.
type ThroughputResult struct {
	Targets, Accounts, Concurrency int
	// Pipeline: from targets pending in Postgres to every outcome
	// recorded, limits off.
	Pipeline time.Duration
	// Asynq: a server of the same concurrency processing as many no-op
	// tasks, enqueued beforehand.
	Asynq time.Duration
	// CPU is the machine's busy share (all cores) during the pipeline run.
	CPU float64
	// Sent is how many targets ended sent (the rest is a failure).
	Sent int
	// Cost is what a target cost Postgres (nil if it could not be read).
	Cost *TargetCost
}

// PipelineRate and AsynqRate are in tasks per second; Ratio is their ratio.
func (r ThroughputResult) PipelineRate() float64 { return float64(r.Targets) / r.Pipeline.Seconds() }
func (r ThroughputResult) AsynqRate() float64    { return float64(r.Targets) / r.Asynq.Seconds() }
func (r ThroughputResult) Ratio() float64        { return r.PipelineRate() / r.AsynqRate() }

func (e *env) throughput(ctx context.Context) (*ThroughputResult, error) {
	cfg := e.cfg
	res := &ThroughputResult{Targets: cfg.Targets, Accounts: cfg.Accounts, Concurrency: cfg.Concurrency}

	// Bare asynq first, on an empty Redis.
	if err := e.flushRedis(ctx); err != nil {
		return nil, err
	}
	d, err := e.bareAsynq(ctx, cfg.Targets, cfg.Concurrency)
	if err != nil {
		return nil, err
	}
	res.Asynq = d
	e.progress("throughput: bare asynq %d no-op tasks in %s (%.0f/s)", cfg.Targets, d.Round(time.Millisecond), res.AsynqRate())
	st, dsn, cleanup, err := e.fresh(ctx, "throughput")
	if err != nil {
		return nil, err
	}
	defer cleanup()
	db, err := seedPool(ctx, dsn)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	camps, err := seedAccounts(ctx, db, cfg.Accounts, nil)
	if err != nil {
		return nil, err
	}
	if err := seedTargets(ctx, db, camps, cfg.Targets, false, "t"); err != nil {
		return nil, err
	}
	// As ImportTargets does after a bulk load: the run is not planned on
	// a targets table analysed while empty.
	if err := db.AnalyzeTargets(ctx); err != nil {
		return nil, err
	}
	sim := simulator.New(simulator.Config{})
	oc := &outcomes{each: make(chan struct{}, 1)}
	meter, err := startCost(ctx, db)
	if err != nil {
		return nil, err
	}
	stopProfile, err := e.profile()
	if err != nil {
		return nil, err
	}
	cpu0 := readCPU()
	start := time.Now()
	p, err := e.startPipeline(ctx, pipelineConfig{dsn: dsn, sim: sim, workers: 1, concurrency: cfg.Concurrency, metrics: oc,
		sched: scheduler.Config{Horizon: time.Minute, BatchMax: scheduler.DefaultBatchMax}})
	if err != nil {
		return nil, err
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	lastN, lastAt := int64(-1), time.Now()
	for n := int64(0); n < int64(cfg.Targets); n = oc.sent.Load() + oc.other.Load() {
		select {
		case <-ctx.Done():
			p.stop()
			return nil, ctx.Err()
		case <-oc.each:
		case <-tick.C:
			if n != lastN {
				lastN, lastAt = n, time.Now()
				e.progress("throughput: %d of %d targets recorded", n, cfg.Targets)
			} else if time.Since(lastAt) > time.Minute {
				p.stop()
				return nil, fmt.Errorf("no progress for a minute at %d of %d targets", n, cfg.Targets)
			}
		}
	}
	res.Pipeline = time.Since(start)
	res.CPU = readCPU().busySince(cpu0)
	stopProfile()
	p.stop()
	if res.Cost, err = meter.per(ctx, cfg.Targets); err != nil {
		return nil, err
	}
	e.progress("throughput: per target: %s\n%s", res.Cost, res.Cost.topTable(cfg.Targets))
	if res.Sent, err = st.CountTargets(ctx, store.TargetSent); err != nil {
		return nil, err
	}
	if res.Sent != cfg.Targets || sim.SentCount() != cfg.Targets || len(sim.DuplicateInvites()) > 0 {
		return nil, fmt.Errorf("pipeline: %d targets sent, %d invitations at the simulator, %d duplicates; want %d, %d, 0",
			res.Sent, sim.SentCount(), len(sim.DuplicateInvites()), cfg.Targets, cfg.Targets)
	}
	e.progress("throughput: pipeline %d targets in %s (%.0f/s)", cfg.Targets, res.Pipeline.Round(time.Millisecond), res.PipelineRate())
	return res, e.flushRedis(ctx)
}

// bareAsynq enqueues n no-op tasks, then times a server of the given
// concurrency processing them all.
func (e *env) bareAsynq(ctx context.Context, n, concurrency int) (time.Duration, error) {
	client := asynq.NewClientFromRedisClient(e.rdb)
	var wg sync.WaitGroup
	var next atomic.Int64
	errs := make(chan error, 8)
	payload := []byte(`{"target_id":1}`)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1); i <= int64(n); i = next.Add(1) {
				if _, err := client.EnqueueContext(ctx, asynq.NewTask("bench:noop", payload), asynq.Queue("bench"),
					asynq.TaskID("noop-"+strconv.FormatInt(i, 10))); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return 0, fmt.Errorf("enqueue no-op tasks: %w", err)
	}
	var done atomic.Int64
	all := make(chan struct{})
	srv := asynq.NewServerFromRedisClient(e.rdb, asynq.Config{Concurrency: concurrency, Queues: map[string]int{"bench": 1},
		TaskCheckInterval: 100 * time.Millisecond, LogLevel: asynq.ErrorLevel, Logger: asynqLogger{e.cfg.Logger.With("component", "asynq")}})
	mux := asynq.NewServeMux()
	mux.HandleFunc("bench:noop", func(context.Context, *asynq.Task) error {
		if done.Add(1) == int64(n) {
			close(all)
		}
		return nil
	})
	start := time.Now()
	if err := srv.Start(mux); err != nil {
		return 0, err
	}
	defer srv.Shutdown()
	select {
	case <-all:
		return time.Since(start), nil
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// cpuTimes is the machine's CPU time from /proc/stat, in ticks.
type cpuTimes struct{ busy, total int64 }

func readCPU() cpuTimes {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuTimes{}
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	var c cpuTimes
	for i, s := range f[1:] {
		v, _ := strconv.ParseInt(s, 10, 64)
		c.total += v
		if i != 3 && i != 4 { // idle, iowait
			c.busy += v
		}
	}
	return c
}

func (c cpuTimes) busySince(before cpuTimes) float64 {
	if c.total == before.total {
		return 0
	}
	return float64(c.busy-before.busy) / float64(c.total-before.total)
}

// asynqLogger routes the bare asynq server's log lines through slog (as
// the worker's server does), so that none is plain text in a JSON log.
type asynqLogger struct{ l *slog.Logger }

func (a asynqLogger) Debug(args ...any) { a.l.Debug(fmt.Sprint(args...)) }
func (a asynqLogger) Info(args ...any)  { a.l.Info(fmt.Sprint(args...)) }
func (a asynqLogger) Warn(args ...any)  { a.l.Warn(fmt.Sprint(args...)) }
func (a asynqLogger) Error(args ...any) { a.l.Error(fmt.Sprint(args...)) }
func (a asynqLogger) Fatal(args ...any) { a.l.Error(fmt.Sprint(args...)) }
