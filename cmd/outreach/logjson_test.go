package main

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/outreach-dev/outreach/internal/testenv"
)

// TestHelperOutreach is not a test: TestJSONLogsOnly runs the test binary
// as the outreach command through it, so that the command writes to a
// real os.Stderr as it does in production (go-redis's own logger writes
// there, not to run's stderr).
func TestHelperOutreach(t *testing.T) {
	if os.Getenv("OUTREACH_TEST_HELPER") != "1" {
		t.Skip("helper process for TestJSONLogsOnly")
	}
	args := os.Args
	for i, a := range args {
		if a == "--" {
			args = args[i+1:]
			break
		}
	}
	os.Exit(run(args, os.Stdout, os.Stderr))
}

// TestJSONLogsOnly runs a worker with LOG_FORMAT=json, stops its Redis
// under it so that go-redis and asynq complain, stops the worker, and
// checks that every line on stderr is a JSON record, go-redis's included.
func TestJSONLogsOnly(t *testing.T) {
	_, dsn := testenv.Store(t)
	rs := testenv.Redis(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperOutreach$", "--", "worker", "--concurrency", "2")
	cmd.Env = append(os.Environ(), "OUTREACH_TEST_HELPER=1", "DATABASE_URL="+dsn, "REDIS_URL="+rs.URL,
		"LOG_FORMAT=json", "LOG_LEVEL=info")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	var (
		mu    sync.Mutex
		lines []string
		seen  = make(chan struct{}, 1)
	)
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			mu.Lock()
			lines = append(lines, sc.Text())
			mu.Unlock()
			select {
			case seen <- struct{}{}:
			default:
			}
		}
	}()
	go func() { <-scanned; exited <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })

	// waitLine waits until a line holds all of subs.
	waitLine := func(what string, timeout time.Duration, subs ...string) {
		t.Helper()
		deadline := time.After(timeout)
		for {
			mu.Lock()
			for _, l := range lines {
				ok := true
				for _, s := range subs {
					ok = ok && strings.Contains(l, s)
				}
				if ok {
					mu.Unlock()
					return
				}
			}
			mu.Unlock()
			select {
			case <-seen:
			case err := <-exited:
				t.Fatalf("the worker exited (%v) before %s; stderr:\n%s", err, what, strings.Join(lines, "\n"))
			case <-deadline:
				mu.Lock()
				defer mu.Unlock()
				t.Fatalf("no %s within %s; stderr:\n%s", what, timeout, strings.Join(lines, "\n"))
			}
		}
	}
	waitLine("start", 60*time.Second, "worker started")
	if err := rs.Stop(); err != nil {
		t.Fatal(err)
	}
	waitLine("go-redis log line", 120*time.Second, "connection pool")
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
	case <-time.After(120 * time.Second):
		t.Fatal("the worker did not stop within 2 minutes of SIGTERM")
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(strings.Join(lines, "\n"), `"component":"go-redis"`) {
		t.Errorf("no go-redis line went through the logger")
	}
	for i, l := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil || rec["msg"] == nil {
			t.Errorf("stderr line %d is not a JSON log record: %q", i+1, l)
		}
	}
}
