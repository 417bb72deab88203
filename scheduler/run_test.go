package scheduler

import (
	"context"
	"sync"
	"testing"
	"time"
)

// tickTimes records when each tick reported, and makes each take at least
// slow (its report is part of the tick).
type tickTimes struct {
	mu    sync.Mutex
	at    []time.Time
	slow  time.Duration
	ticks chan struct{}
}

func (m *tickTimes) Tick(TickStats) {
	m.mu.Lock()
	m.at = append(m.at, time.Now())
	m.mu.Unlock()
	time.Sleep(m.slow)
	select {
	case m.ticks <- struct{}{}:
	default:
	}
}

// TestRunPacesPollTicks checks how Run paces its ticks without
// notifications: the next tick starts PollInterval after the last one
// ended, also when a tick takes longer than PollInterval (a ticker ran
// them back to back), and neither the liveness check nor the reconcile
// makes it tick.
func TestRunPacesPollTicks(t *testing.T) {
	const poll, slow = 100 * time.Millisecond, 150 * time.Millisecond
	m := &tickTimes{slow: slow, ticks: make(chan struct{}, 1)}
	e := newEnv(t, func(c *Config) {
		c.PollInterval, c.LivenessInterval, c.ReconcileInterval = poll, 5*time.Millisecond, 20*time.Millisecond
		c.Metrics = m
	})
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan error, 1)
	go func() { done <- e.s.Run(ctx) }()
	for range 6 {
		select {
		case <-m.ticks:
		case <-time.After(30 * time.Second):
			t.Fatal("fewer than 6 ticks in 30 s")
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	// The start's notification (the scheduler listens) may wake one tick
	// early; every other tick comes at least slow + poll after the last.
	early := 0
	for i := 1; i < len(m.at); i++ {
		if gap := m.at[i].Sub(m.at[i-1]); gap < slow+poll {
			early++
			t.Logf("tick %d came %s after the one before", i, gap)
		}
	}
	if early > 1 {
		t.Errorf("%d of %d ticks came sooner than PollInterval after the one before ended, want at most 1 (the start's wake)", early, len(m.at)-1)
	}
}
