package bench

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"sort"
	"time"

	"github.com/outreach-dev/outreach/provider/simulator"
)

// RecoveryResult is the time from killing a worker process (SIGKILL) with
// invitations in flight to the first settling lookup of its orphans, with a
// provider timeout of minutes (so the lease plays no part).
type RecoveryResult struct {
	Samples       int
	P50, Max      time.Duration
	Lease         time.Duration
	Orphans       int // invitations in flight at the kills, in all
	Repeats       int // people who received two invitation requests (want 0)
	ProviderDelay time.Duration
}

func (e *env) recovery(ctx context.Context) (*RecoveryResult, error) {
	cfg := e.cfg
	const timeout = 5 * time.Minute
	res := &RecoveryResult{Samples: cfg.RecoverySamples, Lease: 2*timeout + 5*time.Second, ProviderDelay: 2 * time.Second}
	_, dsn, cleanup, err := e.fresh(ctx, "recovery")
	if err != nil {
		return nil, err
	}
	defer cleanup()
	db, err := seedPool(ctx, dsn)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	camps, err := seedAccounts(ctx, db, 4, nil)
	if err != nil {
		return nil, err
	}
	// Invitations take effect after 1 s and are answered 1 s later.
	sim := simulator.New(simulator.Config{Latency: time.Second, AnswerDelay: time.Second})
	srv := httptest.NewServer(sim)
	defer srv.Close()
	env := append(os.Environ(), "DATABASE_URL="+dsn, "REDIS_URL="+e.cfg.RedisURL, "UNIPILE_DSN="+srv.URL,
		"UNIPILE_API_KEY="+simulator.DefaultUnipileAPIKey, "LOG_LEVEL=warn", "PROVIDER_TIMEOUT="+timeout.String())
	start := func(args ...string) (*exec.Cmd, error) {
		cmd := exec.Command(cfg.Binary, args...)
		cmd.Env = env
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		return cmd, cmd.Start()
	}
	sched, err := start("scheduler", "--horizon", "5s", "--poll", "250ms")
	if err != nil {
		return nil, fmt.Errorf("start scheduler: %w", err)
	}
	defer stopProcess(sched)
	var lat []time.Duration
	for i := 0; i < cfg.RecoverySamples; i++ {
		// Four new invitations, all taken by the victim: the worker that
		// takes over has nothing else to do, so the figure is the recovery
		// alone, not a backlog.
		if err := seedTargets(ctx, db, camps, 4, false, fmt.Sprintf("r%d-", i)); err != nil {
			return nil, err
		}
		victim, err := start("worker", "--concurrency", "4")
		if err != nil {
			return nil, fmt.Errorf("start worker: %w", err)
		}
		pid := victim.Process.Pid
		var n int
		deadline := time.Now().Add(60 * time.Second)
		for n < 3 {
			if time.Now().After(deadline) {
				stopProcess(victim)
				return nil, fmt.Errorf("no invitations in flight at the worker after 60 s")
			}
			time.Sleep(50 * time.Millisecond)
			if n, err = db.InFlightInvites(ctx, pid); err != nil {
				return nil, err
			}
		}
		_ = victim.Process.Kill()
		_ = victim.Wait()
		killed, wid, err := db.LastWorker(ctx, pid)
		if err != nil {
			return nil, err
		}
		res.Orphans += n
		taker, err := start("worker", "--concurrency", "4")
		if err != nil {
			return nil, fmt.Errorf("start worker: %w", err)
		}
		var first *time.Time
		deadline = time.Now().Add(60 * time.Second)
		for first == nil {
			if time.Now().After(deadline) {
				stopProcess(taker)
				return nil, fmt.Errorf("orphans of worker %d not settled after 60 s", wid)
			}
			time.Sleep(50 * time.Millisecond)
			if first, err = db.FirstSettle(ctx, wid); err != nil {
				return nil, err
			}
		}
		lat = append(lat, first.Sub(killed))
		stopProcess(taker)
	}
	for _, c := range inviteCounts(sim) {
		if c > 1 {
			res.Repeats++
		}
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	res.P50, res.Max = percentile(lat, 0.50), lat[len(lat)-1]
	return res, e.flushRedis(ctx)
}

// inviteCounts counts the simulator's invitation requests per account and
// recipient.
func inviteCounts(sim *simulator.Simulator) map[[2]string]int {
	out := map[[2]string]int{}
	for _, r := range sim.Requests() {
		if r.Op == "invite" {
			out[[2]string{r.Account, r.Recipient}]++
		}
	}
	return out
}
