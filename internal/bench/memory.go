package bench

import (
	"bufio"
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/outreach-dev/outreach/provider/simulator"
)

// MemoryResult is the resident memory (VmRSS from /proc) of a scheduler
// and a worker process of the built binary, at Accounts accounts with work.
type MemoryResult struct {
	Accounts, Targets, Sent int
	Duration                time.Duration
	// Peak and final VmRSS, in bytes.
	SchedulerPeak, SchedulerEnd, WorkerPeak, WorkerEnd int64
}

func (e *env) memory(ctx context.Context) (*MemoryResult, error) {
	cfg := e.cfg
	res := &MemoryResult{Accounts: cfg.MemoryAccounts, Duration: cfg.MemoryDuration}
	_, dsn, cleanup, err := e.fresh(ctx, "memory")
	if err != nil {
		return nil, err
	}
	defer cleanup()
	db, err := seedPool(ctx, dsn)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	camps, err := seedAccounts(ctx, db, cfg.MemoryAccounts, cfg.Windows)
	if err != nil {
		return nil, err
	}
	res.Targets = 50 * cfg.MemoryAccounts
	if err := seedTargets(ctx, db, camps, res.Targets, false, "m"); err != nil {
		return nil, err
	}
	sim := simulator.New(simulator.Config{})
	srv := httptest.NewServer(sim)
	defer srv.Close()
	env := append(os.Environ(), "DATABASE_URL="+dsn, "REDIS_URL="+e.cfg.RedisURL, "UNIPILE_DSN="+srv.URL,
		"UNIPILE_API_KEY="+simulator.DefaultUnipileAPIKey, "LOG_LEVEL=warn")
	start := func(args ...string) (*exec.Cmd, error) {
		cmd := exec.Command(cfg.Binary, args...)
		cmd.Env = env
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		return cmd, cmd.Start()
	}
	sched, err := start("scheduler", "--horizon", "10s", "--poll", "250ms")
	if err != nil {
		return nil, fmt.Errorf("start scheduler: %w", err)
	}
	defer stopProcess(sched)
	work, err := start("worker", "--concurrency", "20")
	if err != nil {
		return nil, fmt.Errorf("start worker: %w", err)
	}
	defer stopProcess(work)
	t0 := time.Now()
	for time.Since(t0) < cfg.MemoryDuration {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
		s, w := vmRSS(sched.Process.Pid), vmRSS(work.Process.Pid)
		res.SchedulerPeak, res.WorkerPeak = max(res.SchedulerPeak, s), max(res.WorkerPeak, w)
		res.SchedulerEnd, res.WorkerEnd = s, w
	}
	res.Sent = sim.SentCount()
	return res, nil
}

func stopProcess(cmd *exec.Cmd) {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// vmRSS reads a process's resident set size from /proc/PID/status.
func vmRSS(pid int) int64 {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb * 1024
		}
	}
	return 0
}
