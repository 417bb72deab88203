package bench

import (
	"context"
	"time"

	"github.com/outreach-dev/outreach/provider"
	"github.com/outreach-dev/outreach/provider/simulator"
	"github.com/outreach-dev/outreach/scheduler"
	"github.com/outreach-dev/outreach/store/benchdb"
)

// budgetRun is what the accuracy and pool scenarios share: accounts with
// limits on a fresh database, more work than their windows allow, the
// pipeline against a simulator for a while, and the simulator's record of
// what was sent.
type budgetRun struct {
	name     string
	accounts int
	duration time.Duration
	sched    scheduler.Config
	// seed gives the accounts' campaigns (one each) their work.
	seed func(ctx context.Context, db *benchdb.DB, campaigns []int64) error
}

// budgetRecord is the simulator's record of a budgetRun.
type budgetRecord struct {
	// Violations counts accounts and windows exceeded (must be 0).
	Violations int
	// Used counts the invitations sent until the run ended, by account in
	// ByAccount; Refused those the simulator refused.
	Used, Refused int
	ByAccount     map[string]int
	// Span is from the first invitation sent to the end; Allowed is what
	// the windows allow each account over Span, times the accounts.
	Span    time.Duration
	Allowed int
	// Cost is what each invitation sent cost Postgres over the run
	// (scheduler and workers alike; nil if it could not be read).
	Cost *TargetCost
}

// runBudget runs r. The simulator's limits are twice the accounts', as
// users set them, so that its usage warnings stay quiet; violations are
// counted against the accounts' own windows.
func (e *env) runBudget(ctx context.Context, r budgetRun) (*budgetRecord, error) {
	cfg := e.cfg
	_, dsn, cleanup, err := e.fresh(ctx, r.name)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	db, err := seedPool(ctx, dsn)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	camps, err := seedAccounts(ctx, db, r.accounts, cfg.Windows)
	if err != nil {
		return nil, err
	}
	if err := r.seed(ctx, db, camps); err != nil {
		return nil, err
	}
	var simWindows, checkWindows []simulator.Window
	for _, w := range cfg.Windows {
		simWindows = append(simWindows, simulator.Window{Max: 2 * w.Max, Per: w.Per})
		checkWindows = append(checkWindows, simulator.Window{Max: w.Max, Per: w.Per})
	}
	sim := simulator.New(simulator.Config{DefaultLimits: simWindows})
	meter, err := startCost(ctx, db)
	if err != nil {
		return nil, err
	}
	p, err := e.startPipeline(ctx, pipelineConfig{dsn: dsn, sim: sim, workers: cfg.AccuracyWorkers, concurrency: cfg.AccuracyConcurrency,
		sched: r.sched})
	if err != nil {
		return nil, err
	}
	stopProfile, err := e.profile()
	if err != nil {
		p.stop()
		return nil, err
	}
	abort := func() error {
		stopProfile()
		p.stop()
		return ctx.Err()
	}
	// The run's clock starts at the first invitation sent: on a busy
	// machine the pipeline's start-up can outlast a short run (a 3 s run
	// then measured nothing, its first send after its end).
	for sim.SentCount() == 0 {
		select {
		case <-ctx.Done():
			return nil, abort()
		case <-time.After(10 * time.Millisecond):
		}
	}
	start := time.Now()
	for time.Since(start) < r.duration {
		select {
		case <-ctx.Done():
			return nil, abort()
		case <-time.After(min(10*time.Second, r.duration)):
			e.progress("%s: %s of %s, %d invitations", r.name, time.Since(start).Round(time.Second), r.duration, sim.SentCount())
		}
	}
	end := time.Now()
	stopProfile()
	p.stop()

	rec := &budgetRecord{Violations: len(sim.LimitViolations(checkWindows)), ByAccount: map[string]int{}}
	var first time.Time
	for _, q := range sim.Requests() {
		if q.Op != "invite" || q.Provider != provider.Unipile {
			continue
		}
		if q.Outcome != simulator.OutcomeSent {
			rec.Refused++
			continue
		}
		if first.IsZero() || q.Time.Before(first) {
			first = q.Time
		}
		if !q.Time.After(end) {
			rec.ByAccount[q.Account]++
			rec.Used++
		}
	}
	rec.Span = end.Sub(first)
	rec.Allowed = r.accounts * GreedyMax(checkWindows, rec.Span)
	if rec.Used > 0 {
		if rec.Cost, err = meter.per(ctx, rec.Used); err != nil {
			return nil, err
		}
		e.progress("%s: per invitation sent: %s\n%s", r.name, rec.Cost, rec.Cost.topTable(rec.Used))
	}
	return rec, e.flushRedis(ctx)
}
