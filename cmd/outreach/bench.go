package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/outreach-dev/outreach/internal/bench"
	"github.com/outreach-dev/outreach/internal/throwaway"
)

func runBench(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "bench", `bench [flags]

Runs the benchmarks of BENCHMARKS.md against throwaway Postgres and Redis
servers (or, with --use-env, new databases created on DATABASE_URL's server
and the Redis database of REDIS_URL, which is FLUSHED) and an in-process
simulator of the providers with no latency, and prints one Markdown table.
Progress goes to stderr. It takes about seven minutes; --big adds the
10-million-target scheduler run (about seven more, several GB in /tmp).`)
	var c bench.Config
	fs.IntVar(&c.Targets, "targets", 100_000, "targets in the throughput run (and no-op tasks of bare asynq)")
	fs.IntVar(&c.Accounts, "accounts", 100, "accounts of the throughput run")
	fs.IntVar(&c.Concurrency, "concurrency", 20, "handlers of the throughput run's worker and of bare asynq")
	fs.DurationVar(&c.AccuracyDuration, "accuracy-duration", 2*time.Minute, "length of the limit-accuracy run")
	fs.IntVar(&c.AccuracyAccounts, "accuracy-accounts", 1000, "accounts of the limit-accuracy run")
	fs.IntVar(&c.AccuracyWorkers, "accuracy-workers", 3, "worker servers of the limit-accuracy run")
	fs.IntVar(&c.AccuracyConcurrency, "accuracy-concurrency", 300, "handlers per worker server of the limit-accuracy run")
	fs.IntVar(&c.WakeSamples, "wake-samples", 200, "targets inserted one by one in the wake-up run")
	fs.DurationVar(&c.MemoryDuration, "memory-duration", 30*time.Second, "length of the memory run")
	fs.IntVar(&c.PoolAccounts, "pool-accounts", 50, "accounts in the pool of the sender-pool run (--only pool)")
	fs.DurationVar(&c.PoolDuration, "pool-duration", time.Minute, "length of the sender-pool run")
	windows := fs.String("windows", "2/1s+10/10s", "the accuracy run's limits, MAX/DURATION joined by + (the default, the design brief's example, is about 1,000 sends a second at 1,000 accounts)")
	big := fs.Bool("big", false, "also measure the scheduler over 10 million targets")
	only := fs.String("only", "", "comma-separated scenarios to run: throughput, accuracy, scale, wakeup, memory, recovery (default all), pool (only when named)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the pipeline of the first throughput, accuracy or pool run to this file")
	useEnv := fs.Bool("use-env", false, "use DATABASE_URL's server and REDIS_URL instead of throwaway servers")
	verbose := fs.Bool("verbose", false, "show the pipeline's warnings")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected argument %q", pos[0])
	}
	if *only != "" {
		for _, s := range strings.Split(*only, ",") {
			switch s = strings.TrimSpace(s); s {
			case "throughput", "accuracy", "scale", "wakeup", "memory", "recovery", "pool":
				c.Only = append(c.Only, s)
			default:
				return usagef("unknown scenario %q in --only", s)
			}
		}
	}
	for _, w := range strings.Split(*windows, "+") {
		max, per, ok := strings.Cut(strings.TrimSpace(w), "/")
		n, err := strconv.Atoi(max)
		d, derr := time.ParseDuration(per)
		if !ok || err != nil || derr != nil || n <= 0 || d <= 0 {
			return usagef("--windows: want MAX/DURATION joined by +, such as 2/1s+10/10s, not %q", w)
		}
		c.Windows = append(c.Windows, bench.Window{Max: n, Per: d})
	}
	c.ScaleSizes = []int{100_000}
	if *big {
		c.ScaleSizes = append(c.ScaleSizes, 10_000_000)
	}
	c.Progress = env.Stderr
	if *verbose {
		c.Logger = slog.New(slog.NewTextHandler(env.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	if exe, err := os.Executable(); err == nil {
		c.Binary = exe
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		c.CPUProfile = f
	}
	if *useEnv {
		c.DatabaseURL, c.RedisURL = env.DatabaseURL, env.RedisURL
	} else {
		fmt.Fprintln(env.Stderr, "bench: starting throwaway Postgres and Redis…")
		pgURL, redisURL, stop, err := startThrowaway(ctx)
		if err != nil {
			return err
		}
		defer stop()
		c.DatabaseURL, c.RedisURL = pgURL, redisURL
	}
	res, err := bench.Run(ctx, c)
	if res != nil {
		if werr := res.WriteTable(env.Stdout); werr != nil && err == nil {
			err = werr
		}
	}
	return err
}

// startThrowaway starts a throwaway Postgres and Redis (internal/throwaway)
// and returns their URLs and a function that stops both.
func startThrowaway(ctx context.Context) (pgURL, redisURL string, stop func(), err error) {
	pg, err := throwaway.StartPostgres(ctx)
	if err != nil {
		return "", "", nil, fmt.Errorf("start throwaway postgres (or run with --use-env): %w", err)
	}
	rs, err := throwaway.StartRedis(ctx)
	if err != nil {
		_ = pg.Stop()
		return "", "", nil, fmt.Errorf("start throwaway redis (or run with --use-env): %w", err)
	}
	return pg.URL, rs.URL, func() { _ = rs.Stop(); _ = pg.Stop() }, nil
}
