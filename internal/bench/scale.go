package bench

import (
	"context"
	"sort"
	"time"

	"github.com/outreach-dev/outreach/scheduler"
	"github.com/outreach-dev/outreach/store/benchdb"
)

// ScaleResult is the scheduler's cost at one table size.
type ScaleResult struct {
	Targets, Pending, Accounts int
	// Load is how long the bulk load took.
	Load time.Duration
	// FirstTick plans and enqueues the waiting targets' slots (Enqueued
	// tasks); Tick is the median of the ticks after it, with nothing new
	// to enqueue.
	FirstTick, Tick time.Duration
	Enqueued        int
	// DueQuery is the median time of the claim query (one account's due
	// targets, oldest first) and AccountsQuery of AccountsWithWork.
	DueQuery, AccountsQuery time.Duration
	// RedisBytes is Redis's used_memory after the first tick, RedisEmpty
	// before it.
	RedisBytes, RedisEmpty int64
}

// scaleLimit is each account's budget in the scale run: a day's worth, so
// that the first tick enqueues the same number of tasks at every size.
const scaleLimit = 20

func (e *env) scale(ctx context.Context, n int) (*ScaleResult, error) {
	cfg := e.cfg
	res := &ScaleResult{Targets: n, Pending: min(cfg.ScalePending, n), Accounts: cfg.ScaleAccounts}
	st, dsn, cleanup, err := e.fresh(ctx, "scale")
	if err != nil {
		return nil, err
	}
	defer cleanup()
	db, err := seedPool(ctx, dsn)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	camps, err := seedAccounts(ctx, db, cfg.ScaleAccounts, []Window{{Max: scaleLimit, Per: 24 * time.Hour}})
	if err != nil {
		return nil, err
	}
	start := time.Now()
	if err := bulkLoad(ctx, db, camps, n, res.Pending, func(done int) {
		e.progress("scale: loaded %d of %d targets", done, n)
	}); err != nil {
		return nil, err
	}
	res.Load = time.Since(start)
	e.progress("scale: %d targets loaded in %s", n, res.Load.Round(time.Second))

	if res.RedisEmpty, err = e.usedMemory(ctx); err != nil {
		return nil, err
	}
	s, err := scheduler.New(scheduler.Config{Store: st, Redis: e.rdb, Horizon: time.Minute, Logger: e.cfg.Logger})
	if err != nil {
		return nil, err
	}
	ts, err := s.Tick(ctx)
	if err != nil {
		return nil, err
	}
	res.FirstTick, res.Enqueued = ts.Duration, ts.Enqueued
	if res.RedisBytes, err = e.usedMemory(ctx); err != nil {
		return nil, err
	}
	var ticks, dues, accs []time.Duration
	for range 7 {
		ts, err := s.Tick(ctx)
		if err != nil {
			return nil, err
		}
		ticks = append(ticks, ts.Duration)
		t0 := time.Now()
		if _, err := st.AccountsWithWork(ctx, time.Now(), time.Now().Add(time.Minute), nil); err != nil {
			return nil, err
		}
		accs = append(accs, time.Since(t0))
		d, err := dueQuery(ctx, db, camps[len(camps)/2])
		if err != nil {
			return nil, err
		}
		dues = append(dues, d)
	}
	res.Tick, res.DueQuery, res.AccountsQuery = median(ticks), median(dues), median(accs)
	return res, e.flushRedis(ctx)
}

// dueQuery times the claim query of store.ClaimTargets for one
// campaign's account, in a transaction rolled back (benchdb.DueQuery).
func dueQuery(ctx context.Context, db *benchdb.DB, campaign int64) (time.Duration, error) {
	return db.DueQuery(ctx, campaign, scaleLimit)
}

// bulkLoad inserts n targets over the campaigns, all terminal but pending
// of them (benchdb.BulkLoad).
func bulkLoad(ctx context.Context, db *benchdb.DB, camps []int64, n, pending int, progress func(int)) error {
	return db.BulkLoad(ctx, camps, n, pending, progress)
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}
