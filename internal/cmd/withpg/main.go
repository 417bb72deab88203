// Command withpg runs a command with a throwaway PostgreSQL server of its
// own: `go run ./internal/cmd/withpg go test ./...`. `make test` uses it so
// that the whole test run shares one private server, tuned for tests
// (fsync off, 400 connections: tests of many packages run in parallel),
// whatever runs on the machine's 127.0.0.1:5432. The server's URL is given
// to the command as OUTREACH_TEST_DATABASE_URL (internal/testenv); the
// server and its files are removed when the command ends. When
// OUTREACH_TEST_DATABASE_URL is set already, the command runs against it
// and no server is started.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"github.com/outreach-dev/outreach/internal/throwaway"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "usage: withpg COMMAND [ARG...]")
		return 2
	}
	// Signals are caught from the start, so that an interrupt while the
	// server starts still stops it; once the command runs they are passed
	// on to it (a terminal's Ctrl-C reaches it anyway, in the same process
	// group), and withpg outlives it to stop the server.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	if os.Getenv("OUTREACH_TEST_DATABASE_URL") == "" {
		pg, err := throwaway.StartPostgres(context.Background())
		if err != nil {
			fmt.Fprintf(os.Stderr, "withpg: start a throwaway postgres: %v\n", err)
			return 1
		}
		defer pg.Stop()
		os.Setenv("OUTREACH_TEST_DATABASE_URL", pg.URL)
	}
	select {
	case sig := <-sigs:
		fmt.Fprintf(os.Stderr, "withpg: %v before the command started\n", sig)
		return 128 + int(sig.(syscall.Signal))
	default:
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "withpg: %v\n", err)
		return 1
	}
	go func() {
		for sig := range sigs {
			_ = cmd.Process.Signal(sig)
		}
	}()
	err := cmd.Wait()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &exit):
		if st, ok := exit.Sys().(syscall.WaitStatus); ok && st.Signaled() {
			return 128 + int(st.Signal())
		}
		if code := exit.ExitCode(); code > 0 {
			return code
		}
		return 1
	default:
		fmt.Fprintf(os.Stderr, "withpg: %v\n", err)
		return 1
	}
}
