package bench

import (
	"context"
	"time"

	"github.com/outreach-dev/outreach/scheduler"
	"github.com/outreach-dev/outreach/store/benchdb"
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
	rec, err := e.runBudget(ctx, budgetRun{name: "pool", accounts: cfg.PoolAccounts, duration: cfg.PoolDuration,
		sched: scheduler.Config{Horizon: 10 * time.Second, PollInterval: 250 * time.Millisecond},
		seed: func(ctx context.Context, db *benchdb.DB, camps []int64) error {
			// Every account sends for the first campaign, whose targets
			// have no sender yet: more than the pool can do in the run.
			if err := db.PoolSenders(ctx, camps[0]); err != nil {
				return err
			}
			per := GreedyMax(cfg.Windows, cfg.PoolDuration+30*time.Second) + 10
			return seedTargets(ctx, db, camps[:1], per*cfg.PoolAccounts, true, "p")
		}})
	if err != nil {
		return nil, err
	}
	return &PoolResult{Accounts: cfg.PoolAccounts, Workers: cfg.AccuracyWorkers, Concurrency: cfg.AccuracyConcurrency,
		Windows: cfg.Windows, Duration: cfg.PoolDuration, Violations: rec.Violations, Used: rec.Used, Allowed: rec.Allowed,
		Idle: cfg.PoolAccounts - len(rec.ByAccount), Span: rec.Span}, nil
}
