package bench

import (
	"context"
	"time"

	"github.com/outreach-dev/outreach/provider"
	"github.com/outreach-dev/outreach/provider/simulator"
	"github.com/outreach-dev/outreach/scheduler"
)

// PoolResult is the utilisation of a sender pool: one campaign over
// PoolAccounts accounts with the Windows, more work than the pool can do,
// from the simulator's record of the invitations it accepted.
type PoolResult struct {
	Accounts, Workers, Concurrency int
	Windows                        []Window
	Duration                       time.Duration
	// Violations counts accounts and windows exceeded (must be 0).
	Violations int
	// Used and Allowed: invitations made and the most the pool's windows
	// allowed over Span, summed over its senders; Idle counts senders that
	// sent nothing.
	Used, Allowed, Idle int
	Span                time.Duration
}

// Utilisation is Used / Allowed.
func (r PoolResult) Utilisation() float64 {
	if r.Allowed == 0 {
		return 0
	}
	return float64(r.Used) / float64(r.Allowed)
}

// pool runs one campaign whose targets have no sender yet over a pool of
// every account, and measures how much of the pool's budget it used.
func (e *env) pool(ctx context.Context) (*PoolResult, error) {
	cfg := e.cfg
	res := &PoolResult{Accounts: cfg.PoolAccounts, Workers: cfg.AccuracyWorkers, Concurrency: cfg.AccuracyConcurrency,
		Windows: cfg.Windows, Duration: cfg.PoolDuration}
	_, dsn, cleanup, err := e.fresh(ctx, "pool")
	if err != nil {
		return nil, err
	}
	defer cleanup()
	db, err := seedPool(ctx, dsn)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	camps, err := seedAccounts(ctx, db, cfg.PoolAccounts, cfg.Windows)
	if err != nil {
		return nil, err
	}
	if err := db.PoolSenders(ctx, camps[0]); err != nil {
		return nil, err
	}
	per := GreedyMax(cfg.Windows, cfg.PoolDuration+30*time.Second) + 10
	if err := seedTargets(ctx, db, camps[:1], per*cfg.PoolAccounts, true, "p"); err != nil {
		return nil, err
	}
	var simWindows, checkWindows []simulator.Window
	for _, w := range cfg.Windows {
		simWindows = append(simWindows, simulator.Window{Max: 2 * w.Max, Per: w.Per})
		checkWindows = append(checkWindows, simulator.Window{Max: w.Max, Per: w.Per})
	}
	sim := simulator.New(simulator.Config{DefaultLimits: simWindows})
	p, err := e.startPipeline(ctx, pipelineConfig{dsn: dsn, sim: sim, workers: cfg.AccuracyWorkers, concurrency: cfg.AccuracyConcurrency,
		sched: scheduler.Config{Horizon: 10 * time.Second, PollInterval: 250 * time.Millisecond}})
	if err != nil {
		return nil, err
	}
	start := time.Now()
	for time.Since(start) < cfg.PoolDuration {
		select {
		case <-ctx.Done():
			p.stop()
			return nil, ctx.Err()
		case <-time.After(min(10*time.Second, cfg.PoolDuration)):
			e.progress("pool: %s of %s, %d invitations", time.Since(start).Round(time.Second), cfg.PoolDuration, sim.SentCount())
		}
	}
	end := time.Now()
	p.stop()

	res.Violations = len(sim.LimitViolations(checkWindows))
	byAccount := map[string]int{}
	var first time.Time
	for _, r := range sim.Requests() {
		if r.Op != "invite" || r.Provider != provider.Unipile || r.Outcome != simulator.OutcomeSent {
			continue
		}
		if first.IsZero() || r.Time.Before(first) {
			first = r.Time
		}
		if !r.Time.After(end) {
			byAccount[r.Account]++
			res.Used++
		}
	}
	res.Idle = cfg.PoolAccounts - len(byAccount)
	res.Span = end.Sub(first)
	res.Allowed = cfg.PoolAccounts * GreedyMax(checkWindows, res.Span)
	return res, e.flushRedis(ctx)
}
