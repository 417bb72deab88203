package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/outreach-dev/outreach/internal/system"
	"github.com/outreach-dev/outreach/metrics"
	"github.com/outreach-dev/outreach/provider/simulator"
	"github.com/outreach-dev/outreach/report"
	"github.com/outreach-dev/outreach/scheduler"
	"github.com/outreach-dev/outreach/store"
	"github.com/outreach-dev/outreach/worker"
)

// demoConfig is the demo's size and pace.
type demoConfig struct {
	duration      time.Duration
	targets       int // per campaign
	workers       int
	useEnv        bool
	dashboardAddr string
	metricsAddr   string
	verbose       bool
	// keepServing keeps the dashboard and console up after the run until
	// interrupted.
	keepServing bool
}

func runDemo(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "demo", `demo [flags]

Runs the simulator of the providers, the scheduler, two workers and the
dashboard in one process, on a seeded demo: two LinkedIn accounts (through
Unipile) and one Altegio location, a campaign each, with realistic refusals
(people already connected, pending invitations, unknown profiles, a
malformed identifier, a message too long, a provider's limit hit). About
half of the LinkedIn invitations are accepted a few seconds after they are
sent, seen by polls of the relations every 2 seconds; the others are
withdrawn when still unanswered after 20 seconds. Limits are compressed
(5 invitations per 10 seconds) so that it ends in about a minute and a
quarter. It shows progress every second (with invitations accepted and
withdrawn) and ends with a summary.

Postgres and Redis are throwaway servers started for the demo, unless
--use-env: then DATABASE_URL and REDIS_URL are used, and must be used by
nothing else (the demo refuses a database with accounts other than its
own; its accounts and campaigns are named demo-…).`)
	var c demoConfig
	fs.DurationVar(&c.duration, "duration", 3*time.Minute, "stop after this long even if targets remain")
	fs.IntVar(&c.targets, "targets", 30, "targets per campaign (at least 10)")
	fs.IntVar(&c.workers, "workers", 2, "worker servers to run")
	fs.BoolVar(&c.useEnv, "use-env", false, "use DATABASE_URL and REDIS_URL instead of throwaway servers")
	fs.StringVar(&c.dashboardAddr, "dashboard-addr", "127.0.0.1:8080", "serve the dashboard here (a free port is taken if it is busy; empty: none)")
	fs.StringVar(&c.metricsAddr, "metrics-addr", "", "also serve Prometheus /metrics here")
	fs.BoolVar(&c.keepServing, "keep-serving", true, "after the run, keep the dashboard and console up until interrupted (Ctrl-C)")
	fs.BoolVar(&c.verbose, "verbose", false, "show the pipeline's logs (else warnings only)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected argument %q", pos[0])
	}
	if c.targets < 10 || c.workers < 1 || c.duration <= 0 {
		return usagef("want --targets of at least 10, --workers of at least 1 and a positive --duration")
	}
	return demo(ctx, env, c)
}

func demo(ctx context.Context, env *Env, c demoConfig) error {
	out := env.Stderr
	log := demoLogger(env, c)

	// Postgres and Redis.
	stop, err := startDemoBackends(ctx, env, c)
	if err != nil {
		return err
	}
	defer stop()
	if _, err := store.Migrate(ctx, env.DatabaseURL); err != nil {
		return err
	}
	st, err := env.OpenStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	rdb, err := env.OpenRedis(ctx)
	if err != nil {
		return err
	}
	defer rdb.Close()

	// The simulator, in this process, on a free port.
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	sim, simURL, simDone, err := startDemoSimulator(runCtx)
	if err != nil {
		return err
	}
	useDemoSimulator(env, simURL)

	if err := checkDemoDatabase(ctx, st, c); err != nil {
		return err
	}
	seed, err := seedDemo(ctx, st, sim, c.targets, time.Now())
	if err != nil {
		return fmt.Errorf("seed the demo: %w", err)
	}

	// Scheduler, workers, dashboard.
	m := &demoMetrics{Metrics: metrics.New(), pauses: map[string]map[string]int{}}
	sys, err := newDemoSystem(ctx, env, c, rdb, log, m)
	if err != nil {
		return err
	}
	defer sys.Close()
	if err := sys.Run(runCtx); err != nil {
		return err
	}

	dashURL := ""
	if c.dashboardAddr != "" {
		// On ctx, not runCtx: the dashboard and console outlive the run.
		u, stopDash, err := serveDemoDashboard(ctx, env, c.dashboardAddr)
		if err != nil {
			return err
		}
		dashURL = u
		defer stopDash()
	}
	if c.metricsAddr != "" {
		stopMetrics, err := serveMetrics(runCtx, env, c.metricsAddr, m.Metrics, rdb, st)
		if err != nil {
			return err
		}
		defer stopMetrics()
	}

	printDemoStart(out, c, simURL, len(seed.campaigns), dashURL)
	reason := watchDemo(ctx, out, log, st, seed, c.duration)

	// Stop the pipeline, then report.
	sys.Close()
	cancel()
	<-simDone
	if err := reportDemo(ctx, env, st, seed, m, reason); err != nil {
		return err
	}
	if dashURL != "" && c.keepServing && ctx.Err() == nil {
		keepDemoServing(ctx, out, dashURL)
	}
	if !c.useEnv {
		fmt.Fprintln(env.Stdout, "\ndemo: the throwaway Postgres and Redis are removed; run against your own with --use-env.")
	}
	return nil
}

// demoLogger returns the demo's logger (warnings only unless --verbose),
// writing to env.Stderr, and makes it env.Logger.
func demoLogger(env *Env, c demoConfig) *slog.Logger {
	level := slog.LevelWarn
	if c.verbose {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(env.Stderr, &slog.HandlerOptions{Level: level}))
	env.Logger = log
	return log
}

// startDemoBackends starts a throwaway Postgres and Redis and points env at
// them, unless --use-env; stop removes them (a no-op with --use-env).
func startDemoBackends(ctx context.Context, env *Env, c demoConfig) (stop func(), err error) {
	if c.useEnv {
		return func() {}, nil
	}
	fmt.Fprintln(env.Stderr, "demo: starting throwaway Postgres and Redis…")
	pgURL, redisURL, stop, err := startThrowaway(ctx)
	if err != nil {
		return nil, err
	}
	env.DatabaseURL, env.RedisURL = pgURL, redisURL
	return stop, nil
}

// useDemoSimulator points every provider's URL and credentials in env at
// the simulator at simURL.
func useDemoSimulator(env *Env, simURL string) {
	env.UnipileURL, env.PartooURL, env.AltegioURL = simURL, simURL, simURL
	env.secrets["UNIPILE_API_KEY"] = simulator.DefaultUnipileAPIKey
	env.secrets["PARTOO_API_KEY"] = simulator.DefaultPartooAPIKey
	env.secrets["ALTEGIO_PARTNER_TOKEN"] = simulator.DefaultAltegioPartnerToken
	env.secrets["ALTEGIO_USER_TOKEN"] = simulator.DefaultAltegioUserToken
}

// checkDemoDatabase refuses, with --use-env, a database that holds accounts
// other than the demo's.
func checkDemoDatabase(ctx context.Context, st *store.Store, c demoConfig) error {
	if c.useEnv {
		// The demo's workers send to the simulator and record the answers:
		// against real campaigns that would mark real targets sent.
		others, err := st.AccountsNotNamed(ctx, "demo-")
		if err != nil {
			return err
		}
		if others > 0 {
			return fmt.Errorf("--use-env: the database at DATABASE_URL has %d accounts that are not the demo's; "+
				"the demo would send their targets to the simulator and mark them sent. Use an empty database", others)
		}
	}
	return nil
}

// newDemoSystem builds the demo's scheduler and workers, with compressed
// intervals and the demo's outcome policy, reporting to m. Each opens a
// pool of its own, as the scheduler and worker processes do: on one
// shared pool the scheduler's statements queue behind the handlers'.
func newDemoSystem(ctx context.Context, env *Env, c demoConfig, rdb redis.UniversalClient, log *slog.Logger, m *demoMetrics) (*system.System, error) {
	policy := demoPolicy()
	return system.New(ctx, system.Config{
		OpenStore: func(ctx context.Context) (*store.Store, error) { return env.OpenStore(ctx, store.PoolSize(12)) },
		Redis:     rdb, Logger: log,
		Scheduler: &scheduler.Config{Horizon: 20 * time.Second, PollInterval: 500 * time.Millisecond, ReconcileInterval: 5 * time.Second,
			RequestTimeout: 5 * time.Second, WithdrawInterval: time.Second, Metrics: m},
		Workers: c.workers, NumberWorkers: true,
		Worker: worker.Config{Clients: env.Client, Policy: &policy, RequestTimeout: 5 * time.Second, Metrics: m, Polls: demoPollConfig},
		Server: worker.ServerConfig{Concurrency: 10, ShutdownTimeout: 10 * time.Second},
	})
}

// serveDemoDashboard serves the dashboard and console at addr, or on a
// free port of the same host if addr is busy, until ctx ends or stop is
// called; it returns their URL.
func serveDemoDashboard(ctx context.Context, env *Env, addr string) (url string, stop func(), err error) {
	if ln, err := net.Listen("tcp", addr); err != nil {
		host, _, _ := net.SplitHostPort(addr)
		addr = net.JoinHostPort(host, "0")
	} else {
		ln.Close()
	}
	stop, err = serveDashboard(ctx, env, addr, dashboardOptions{ready: func(u string) { url = u }})
	if err != nil {
		return "", nil, err
	}
	return url, stop, nil
}

// printDemoStart tells where the simulator, dashboard, console and metrics
// are, and how long the demo runs.
func printDemoStart(out io.Writer, c demoConfig, simURL string, campaigns int, dashURL string) {
	fmt.Fprintf(out, "demo: simulator on %s; %d workers; %d campaigns of %d targets\n", simURL, c.workers, campaigns, c.targets)
	if dashURL != "" {
		fmt.Fprintf(out, "demo: dashboard on %s (open it now: queues invites and lookups)\n", dashURL)
		fmt.Fprintf(out, "demo: console on %sconsole/ (accounts, budgets, campaigns, why targets wait)\n", dashURL)
	}
	if c.metricsAddr != "" {
		fmt.Fprintf(out, "demo: metrics on http://%s/metrics\n", c.metricsAddr)
	}
	fmt.Fprintf(out, "demo: running until every target is done, at most %s (Ctrl-C stops it)\n\n", c.duration)
}

// watchDemo prints the campaigns' progress every second until every target
// is done and every invitation that is withdrawn when unanswered is
// answered or withdrawn, duration has passed or ctx ends, and returns which.
func watchDemo(ctx context.Context, out io.Writer, log *slog.Logger, st *store.Store, seed *demoSeed, duration time.Duration) (reason string) {
	start := time.Now()
	deadline := time.NewTimer(duration)
	defer deadline.Stop()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return "interrupted"
		case <-deadline.C:
			return fmt.Sprintf("stopped after %s", duration)
		case <-tick.C:
		}
		camps, accounts, follow, err := demoReport(ctx, st, seed.campaigns)
		if err != nil {
			log.Warn("reading progress", "error", err)
			continue
		}
		line, done := demoProgressLine(camps, accounts, demoFollowUp(seed, follow), time.Since(start))
		fmt.Fprintln(out, line)
		if done {
			return fmt.Sprintf("every target done, every invitation accepted or withdrawn, in %s", time.Since(start).Round(time.Second))
		}
	}
}

// reportDemo prints why the run ended and its summary to env.Stdout.
func reportDemo(ctx context.Context, env *Env, st *store.Store, seed *demoSeed, m *demoMetrics, reason string) error {
	camps, accounts, follow, err := demoReport(context.WithoutCancel(ctx), st, seed.campaigns)
	if err != nil {
		return err
	}
	pauses := m.snapshot()
	fmt.Fprintf(env.Stdout, "\ndemo: %s\n\n", reason)
	printDemoSummary(env.Stdout, camps, accounts, follow, demoFollowUp(seed, follow), pauses)
	return nil
}

// keepDemoServing waits, the run over, until ctx ends, leaving the
// dashboard and console at dashURL up.
func keepDemoServing(ctx context.Context, out io.Writer, dashURL string) {
	fmt.Fprintf(out, "\ndemo: the run is over; the dashboard (%s) and the console (%sconsole/) stay up until you press Ctrl-C\n", dashURL, dashURL)
	<-ctx.Done()
	fmt.Fprintln(out, "demo: interrupted; stopping the dashboard and console")
}

// demoReport reads the progress of this run's campaigns and accounts only
// (a database given with --use-env may hold earlier demos), and what
// became of the campaigns' invitations.
func demoReport(ctx context.Context, st *store.Store, ids []int64) ([]*report.Campaign, []*report.Account, map[int64]store.FollowUp, error) {
	all, err := report.Campaigns(ctx, st, "")
	if err != nil {
		return nil, nil, nil, err
	}
	var camps []*report.Campaign
	names := map[string]bool{}
	for _, c := range all {
		if slices.Contains(ids, c.ID) {
			camps = append(camps, c)
			names[c.Account] = true
		}
	}
	allAccounts, err := report.Accounts(ctx, st, "")
	if err != nil {
		return nil, nil, nil, err
	}
	var accounts []*report.Account
	for _, a := range allAccounts {
		if names[a.Name] {
			accounts = append(accounts, a)
		}
	}
	follow, err := st.FollowUps(ctx, ids)
	if err != nil {
		return nil, nil, nil, err
	}
	return camps, accounts, follow, nil
}
