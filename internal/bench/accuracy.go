package bench

import (
	"context"
	"sync"
	"time"

	"github.com/outreach-dev/outreach/provider/simulator"
	"github.com/outreach-dev/outreach/scheduler"
	"github.com/outreach-dev/outreach/store/benchdb"
)

// AccuracyResult is the limit accuracy at scale, from the simulator's
// record of the invitations it accepted.
type AccuracyResult struct {
	Accounts, Workers, Concurrency int
	Windows                        []Window
	Duration                       time.Duration
	// Violations counts accounts and windows exceeded (must be 0).
	Violations int
	// Refused counts invitations the simulator refused (its own limits,
	// set at twice the accounts', should never be reached).
	Refused int
	// Used and Allowed: sends made and the most the windows allowed, over
	// Span, summed over accounts (every account had work waiting all along).
	Used, Allowed int
	Span          time.Duration
	// Ticks counts the scheduler's planning ticks, TickMean and TickMax
	// their length.
	Ticks             int
	TickMean, TickMax time.Duration
	// Cost is what each invitation sent cost Postgres (nil if unread).
	Cost *TargetCost
}

// tickStats collects the scheduler's ticks.
type tickStats struct {
	mu         sync.Mutex
	n          int
	total, max time.Duration
}

func (t *tickStats) Tick(st scheduler.TickStats) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.n++
	t.total += st.Duration
	t.max = max(t.max, st.Duration)
}

// Utilisation is Used / Allowed.
func (r AccuracyResult) Utilisation() float64 {
	if r.Allowed == 0 {
		return 0
	}
	return float64(r.Used) / float64(r.Allowed)
}

func (e *env) accuracy(ctx context.Context) (*AccuracyResult, error) {
	cfg := e.cfg
	ticks := &tickStats{}
	rec, err := e.runBudget(ctx, budgetRun{name: "accuracy", accounts: cfg.AccuracyAccounts, duration: cfg.AccuracyDuration,
		sched: scheduler.Config{Horizon: 10 * time.Second, PollInterval: 250 * time.Millisecond, Metrics: ticks, BatchMax: scheduler.DefaultBatchMax},
		seed: func(ctx context.Context, db *benchdb.DB, camps []int64) error {
			// More work than the windows let any account do in the run.
			per := GreedyMax(cfg.Windows, cfg.AccuracyDuration+30*time.Second) + 10
			return seedTargets(ctx, db, camps, per*cfg.AccuracyAccounts, true, "a")
		}})
	if err != nil {
		return nil, err
	}
	res := &AccuracyResult{Accounts: cfg.AccuracyAccounts, Workers: cfg.AccuracyWorkers, Concurrency: cfg.AccuracyConcurrency,
		Windows: cfg.Windows, Duration: cfg.AccuracyDuration,
		Violations: rec.Violations, Refused: rec.Refused, Used: rec.Used, Allowed: rec.Allowed, Span: rec.Span, Cost: rec.Cost}
	ticks.mu.Lock()
	res.Ticks, res.TickMax = ticks.n, ticks.max
	if ticks.n > 0 {
		res.TickMean = ticks.total / time.Duration(ticks.n)
	}
	ticks.mu.Unlock()
	return res, nil
}

// GreedyMax is how many sends the windows allow in d, starting empty,
// sending each as soon as every window has room (as in the end-to-end
// test of the processes).
func GreedyMax[W Window | simulator.Window](windows []W, d time.Duration) int {
	type win struct {
		max int
		per time.Duration
	}
	var ws []win
	for _, w := range windows {
		switch w := any(w).(type) {
		case Window:
			ws = append(ws, win{w.Max, w.Per})
		case simulator.Window:
			ws = append(ws, win{w.Max, w.Per})
		}
	}
	var sent []time.Duration
	t := time.Duration(0)
	for {
		next := t
		for _, w := range ws {
			if len(sent) >= w.max {
				if free := sent[len(sent)-w.max] + w.per; free > next {
					next = free
				}
			}
		}
		if next > d {
			return len(sent)
		}
		sent = append(sent, next)
		t = next
	}
}
