// Command outreach runs the outreach pipeline: migrate the database, run the
// scheduler and workers, serve the dashboard, run the provider simulator or
// the demo, and inspect or steer campaigns. Run `outreach help` for the
// list of commands and `outreach CMD --help` for one.
//
// Configuration comes from the environment (see env.go) and flags; this
// package is the only one that reads either.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	_ "time/tzdata" // time zones load the same everywhere, distroless images included

	"github.com/redis/go-redis/v9"

	"github.com/outreach-dev/outreach/store"
)

// Exit codes a script can rely on.
const (
	exitOK       = 0
	exitError    = 1 // the command failed (a server unreachable, a provider down, ...)
	exitUsage    = 2 // bad flags or arguments, or a value the database refuses (store.ErrInvalid)
	exitNotFound = 3 // the campaign or account named does not exist
	exitPartial  = 4 // done, but part of the input was refused (import: some rows were bad)
)

// exitCoder is an error that chooses its exit code.
type exitCoder interface{ ExitCode() int }

// command is one subcommand of the binary.
type command struct {
	name    string
	summary string
	// run parses args with fs and does the work. Returning a usageError
	// exits with exitUsage.
	run func(ctx context.Context, env *Env, args []string) error
}

// commands returns the table of subcommands, in the order help lists
// them. Each command lives in the file named after it.
func commands() []*command {
	return []*command{
		{name: "account", summary: "add an account", run: runAccount},
		{name: "bench", summary: "measure throughput, limit accuracy, scheduler cost, wake-up latency and memory", run: runBench},
		{name: "campaign", summary: "add a campaign", run: runCampaign},
		{name: "dashboard", summary: "serve the asynq dashboard and the outreach console (long-running)", run: runDashboard},
		{name: "demo", summary: "run the whole system on a seeded demo campaign (simulated providers)", run: runDemo},
		{name: "dnc", summary: "add, remove, list or import do-not-contact entries (people, provider ids, email domains)", run: runDnc},
		{name: "events", summary: "print the event stream (sent, failed, paused, ...); --follow waits for more", run: runEvents},
		{name: "healthcheck", summary: "exit 0 if a URL answers 200 (for container health checks)", run: runHealthcheck},
		{name: "import", summary: "add a campaign's targets from a CSV file (streams; bad rows reported)", run: runImport},
		{name: "limits", summary: "show or set an account's pacing: rolling limits, gaps, defaults or unlimited", run: runLimits},
		{name: "migrate", summary: "apply the database migrations (safe to repeat)", run: runMigrate},
		{name: "pool", summary: "list, add or remove a campaign's sending accounts; set its weight and daily cap", run: runPool},
		{name: "pause", summary: "pause a campaign, or an account (until a time, or until resumed)", run: runPause},
		{name: "resume", summary: "resume a paused campaign or a paused or disabled account", run: runResume},
		{name: "scheduler", summary: "plan send slots and enqueue due targets (long-running)", run: runScheduler},
		{name: "simulate", summary: "serve a simulator of the Unipile, Partoo and Altegio APIs", run: runSimulate},
		{name: "status", summary: "show campaigns' progress and accounts' budgets and pauses", run: runStatus},
		{name: "warmup", summary: "show, start or stop an account's warm-up ramp", run: runWarmup},
		{name: "worker", summary: "send invitations from the queue (long-running)", run: runWorker},
	}
}

// lookupCommand returns the command called name, or nil.
func lookupCommand(name string) *command {
	for _, c := range commands() {
		if c.name == name {
			return c
		}
	}
	return nil
}

// usageError marks a mistake in the command line.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return usageError{fmt.Sprintf(format, a...)} }

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	return runIn(os.Environ(), args, stdout, stderr)
}

// runIn is run with the environment given as a list of KEY=value (a later
// entry wins), read once.
func runIn(environ, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		if len(args) > 1 {
			if c := lookupCommand(args[1]); c != nil {
				return runIn(environ, []string{c.name, "--help"}, stdout, stderr)
			}
		}
		printUsage(stdout)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	c := lookupCommand(args[0])
	if c == nil {
		fmt.Fprintf(stderr, "outreach: unknown command %q (run `outreach help`)\n", args[0])
		return exitUsage
	}
	env, err := LoadEnv(environ, stdout, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "outreach %s: %v\n", c.name, err)
		return exitUsage
	}
	// go-redis's logger is global to the process: set here, once per
	// command, never in a library.
	redis.SetLogger(redisLogger{env.Logger.With("component", "go-redis")})
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err = explainDBError(c.name, c.run(ctx, env, args[1:]), env.DatabaseURL)
	var ec exitCoder
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case isUsage(err):
		fmt.Fprintf(stderr, "outreach %s: %v\n", c.name, err)
		return exitUsage
	case errors.As(err, &ec):
		fmt.Fprintf(stderr, "outreach %s: %v\n", c.name, err)
		return ec.ExitCode()
	case isNotFound(err):
		fmt.Fprintf(stderr, "outreach %s: %v\n", c.name, err)
		return exitNotFound
	case errors.Is(err, store.ErrInvalid):
		// A value the schema's rules refuse (an unknown time zone, a
		// window over 366 days, ...): the message names the column.
		fmt.Fprintf(stderr, "outreach %s: %v\n", c.name, err)
		return exitUsage
	default:
		fmt.Fprintf(stderr, "outreach %s: %v\n", c.name, err)
		return exitError
	}
}

func isUsage(err error) bool {
	var u usageError
	return errors.As(err, &u)
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "outreach: a rate-limited worker for outreach campaigns (Unipile, Partoo, Altegio).")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Usage: outreach COMMAND [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-11s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run `outreach COMMAND --help` for a command's flags. Configuration is read")
	fmt.Fprintln(w, "from the environment: DATABASE_URL, REDIS_URL and the provider settings")
	fmt.Fprintln(w, "(see the README).")
}

// newFlags returns a flag set for a command that prints its usage to the
// env's stderr.
func newFlags(env *Env, name, usage string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	fs.Usage = func() {
		fmt.Fprintf(env.Stderr, "Usage: outreach %s\n\n", strings.TrimSpace(usage))
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args, mapping flag errors to usage errors.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err.Error()}
	}
	return nil
}
