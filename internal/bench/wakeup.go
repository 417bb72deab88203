package bench

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/outreach-dev/outreach/provider/simulator"
	"github.com/outreach-dev/outreach/scheduler"
)

// WakeupResult is the time from inserting a target for an idle account
// with budget to its invitation recorded.
type WakeupResult struct {
	Samples           int
	P50, P99, Max     time.Duration
	PollInterval      time.Duration
	TaskCheckInterval time.Duration
}

func (e *env) wakeup(ctx context.Context) (*WakeupResult, error) {
	cfg := e.cfg
	// The scheduler's and worker's production defaults: a poll every 2 s
	// (so a fast wake-up needs LISTEN/NOTIFY), new tasks looked for every
	// 100 ms.
	res := &WakeupResult{Samples: cfg.WakeSamples, PollInterval: 2 * time.Second, TaskCheckInterval: 100 * time.Millisecond}
	_, dsn, cleanup, err := e.fresh(ctx, "wakeup")
	if err != nil {
		return nil, err
	}
	defer cleanup()
	db, err := seedPool(ctx, dsn)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	camps, err := seedAccounts(ctx, db, 1, nil)
	if err != nil {
		return nil, err
	}
	oc := &outcomes{each: make(chan struct{}, 1)}
	p, err := e.startPipeline(ctx, pipelineConfig{dsn: dsn, sim: simulator.New(simulator.Config{}), workers: 1, concurrency: 20,
		metrics: oc, sched: scheduler.Config{PollInterval: res.PollInterval}})
	if err != nil {
		return nil, err
	}
	defer p.stop()
	time.Sleep(500 * time.Millisecond) // let the scheduler listen
	var lat []time.Duration
	for i := 0; i < cfg.WakeSamples; i++ {
		id, created, err := db.AddTarget(ctx, camps[0], fmt.Sprint(i))
		if err != nil {
			return nil, err
		}
		deadline := time.After(30 * time.Second)
		var finished *time.Time
		for finished == nil {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-deadline:
				return nil, fmt.Errorf("target %d not sent after 30 s", id)
			case <-oc.each:
			case <-time.After(time.Second):
			}
			if finished, err = db.SentAt(ctx, id); err != nil {
				return nil, err
			}
		}
		lat = append(lat, finished.Sub(created))
		// The account is idle again before the next target.
		time.Sleep(time.Duration(20+i%7*10) * time.Millisecond)
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	res.P50, res.P99, res.Max = percentile(lat, 0.50), percentile(lat, 0.99), lat[len(lat)-1]
	return res, e.flushRedis(ctx)
}

// percentile of sorted durations, nearest rank.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}
