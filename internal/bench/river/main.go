// Command river is the reference figure of BENCHMARKS.md: how many no-op
// jobs a second River (a job queue that keeps every job in Postgres) runs
// on this machine, on a throwaway Postgres server as `outreach bench`
// starts one. It is a module of its own, so that River is no dependency of
// outreach:
//
//	cd internal/bench/river && go run . --jobs 20000
//
// It inserts the jobs first (InsertMany), then times a client of --workers
// workers (default 100) with a fetch cooldown of --cooldown (default 5 ms)
// until every job is completed.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"

	"github.com/outreach-dev/outreach/internal/throwaway"
)

type noopArgs struct{}

func (noopArgs) Kind() string { return "noop" }

type noopWorker struct {
	river.WorkerDefaults[noopArgs]
	done  *atomic.Int64
	n     int64
	doneC chan struct{}
}

func (w *noopWorker) Work(context.Context, *river.Job[noopArgs]) error {
	if w.done.Add(1) == w.n {
		close(w.doneC)
	}
	return nil
}

func main() {
	jobs := flag.Int("jobs", 20000, "no-op jobs to run")
	workers := flag.Int("workers", 100, "River workers (MaxWorkers of the default queue)")
	cooldown := flag.Duration("cooldown", 5*time.Millisecond, "River's FetchCooldown")
	dsn := flag.String("database-url", "", "a Postgres database to use instead of a throwaway server (River's tables are migrated into it)")
	flag.Parse()
	if err := run(*jobs, *workers, *cooldown, *dsn); err != nil {
		fmt.Fprintln(os.Stderr, "river:", err)
		os.Exit(1)
	}
}

func run(n, workers int, cooldown time.Duration, dsn string) error {
	ctx := context.Background()
	if dsn == "" {
		pg, err := throwaway.StartPostgres(ctx)
		if err != nil {
			return err
		}
		defer pg.Stop()
		dsn = pg.URL
	}
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return err
	}
	defer pool.Close()
	driver := riverpgxv5.New(pool)
	m, err := rivermigrate.New(driver, nil)
	if err != nil {
		return err
	}
	if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	var done atomic.Int64
	all := make(chan struct{})
	ws := river.NewWorkers()
	river.AddWorker(ws, &noopWorker{done: &done, n: int64(n), doneC: all})
	client, err := river.NewClient(driver, &river.Config{
		Queues:        map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: workers}},
		Workers:       ws,
		FetchCooldown: cooldown,
	})
	if err != nil {
		return err
	}
	params := make([]river.InsertManyParams, 0, 1000)
	for i := 0; i < n; i += 1000 {
		params = params[:0]
		for j := i; j < min(i+1000, n); j++ {
			params = append(params, river.InsertManyParams{Args: noopArgs{}})
		}
		if _, err := client.InsertMany(ctx, params); err != nil {
			return fmt.Errorf("insert: %w", err)
		}
	}
	start := time.Now()
	if err := client.Start(ctx); err != nil {
		return err
	}
	select {
	case <-all:
	case <-time.After(10 * time.Minute):
		return fmt.Errorf("timed out at %d of %d jobs", done.Load(), n)
	}
	d := time.Since(start)
	stopCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_ = client.Stop(stopCtx)
	fmt.Printf("River %s: %d no-op jobs, %d workers, fetch cooldown %s: %s (%.0f jobs/s)\n", "v0.51.2", n, workers, cooldown,
		d.Round(time.Millisecond), float64(n)/d.Seconds())
	return nil
}
