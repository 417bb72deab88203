package e2e

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/outreach-dev/outreach/internal/bench"
	"github.com/outreach-dev/outreach/internal/testenv"
	"github.com/outreach-dev/outreach/provider"
	"github.com/outreach-dev/outreach/provider/simulator"
)

// buildBinary builds cmd/outreach once per test binary.
// The tests running at the same time share it; the last of them to end
// removes it.
func buildBinary(t *testing.T) string {
	t.Helper()
	built.mu.Lock()
	defer built.mu.Unlock()
	if built.bin == "" {
		dir, err := os.MkdirTemp("", "outreach-e2e-")
		if err != nil {
			t.Fatal(err)
		}
		bin := filepath.Join(dir, "outreach")
		cmd := exec.Command("go", "build", "-o", bin, "github.com/outreach-dev/outreach/cmd/outreach")
		cmd.Stderr = os.Stderr
		if err := cmd.Run(); err != nil {
			os.RemoveAll(dir)
			t.Fatalf("build outreach: %v", err)
		}
		built.dir, built.bin = dir, bin
	}
	built.users++
	t.Cleanup(func() {
		built.mu.Lock()
		defer built.mu.Unlock()
		if built.users--; built.users == 0 {
			os.RemoveAll(built.dir)
			built.dir, built.bin = "", ""
		}
	})
	return built.bin
}

// built is the binary buildBinary built and how many tests use it.
var built struct {
	mu       sync.Mutex
	dir, bin string
	users    int
}

type process struct {
	name string
	cmd  *exec.Cmd
	done chan error
}

func startProcess(t *testing.T, bin, name string, env []string, args ...string) *process {
	t.Helper()
	logf, err := os.Create(filepath.Join(t.TempDir(), name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{name: name, cmd: cmd, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait(); logf.Close() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("%s log (tail):\n%s", name, tail(string(b), 3000))
		}
	})
	return p
}

// stop sends SIGTERM and waits for a clean exit.
func (p *process) stop(t *testing.T, within time.Duration) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		p.done <- err
		if err != nil {
			t.Errorf("%s exited with %v after SIGTERM, want 0", p.name, err)
		}
	case <-time.After(within):
		t.Errorf("%s still running %s after SIGTERM", p.name, within)
	}
}

// TestEndToEndProcessesCrashAndRedisFlush runs the built binary: two
// schedulers and three workers over 50 accounts and 2,000 targets with
// limits in seconds. Midway one worker is killed with SIGKILL and Redis is
// flushed. Checked from the simulator's own record: no limit exceeded in
// any window, nobody invited twice by one account, and every target ends.
// The share of the allowed sends used is logged, not asserted (it depends
// on how busy the machine is; the benchmark measures it).
func TestEndToEndProcessesCrashAndRedisFlush(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end with processes")
	}
	t.Parallel()
	const (
		nAccounts  = 50
		perAccount = 40
	)
	windows := []simulator.Window{{Max: 3, Per: 2 * time.Second}, {Max: 12, Per: 10 * time.Second}}
	bin := buildBinary(t)
	dsn := testenv.DatabaseURL(t)
	rs := testenv.Redis(t)
	// The provider's own limits are twice the budget the accounts are
	// given, as users set them (and so its usage warnings stay quiet);
	// the check below is against the accounts' budget.
	sim := simulator.New(simulator.Config{UnipileAPIKeys: []string{unipileKey},
		DefaultLimits: []simulator.Window{{Max: 6, Per: 2 * time.Second}, {Max: 24, Per: 10 * time.Second}}})
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)

	// Seed with plain SQL, as a user would. The accounts opt out of the
	// provider's default pacing (minutes between calls): this test is
	// about the limits alone, compressed.
	want := map[string]string{} // identifier → final status
	for a := 0; a < nAccounts; a++ {
		name := fmt.Sprintf("acct-%02d", a)
		if _, err := pool.Exec(ctx, `WITH a AS (INSERT INTO accounts (name, provider, provider_account_id, pacing) VALUES ($1, 'unipile', $1, 'unlimited') RETURNING id),
			l AS (INSERT INTO account_limits (account_id, action, max_count, per)
				SELECT id, 'invite', 3, interval '2 seconds' FROM a UNION ALL SELECT id, 'invite', 12, interval '10 seconds' FROM a)
			INSERT INTO campaigns (name, account_id, message_template) SELECT $1, id, 'Hello {{.FirstName}}' FROM a`, name); err != nil {
			t.Fatal(err)
		}
		var ids []string
		for i := 0; i < perAccount; i++ {
			id := pid(fmt.Sprintf("p-%02d-%02d", a, i))
			status := "sent"
			switch {
			case i == 5:
				id, status = fmt.Sprintf("connected-%02d", a), "skipped"
			case i == 6:
				id, status = fmt.Sprintf("https://www.linkedin.com/in/lookup-%02d/", a), "sent"
			case i == 7:
				id, status = fmt.Sprintf("fail-blocked_recipient-%02d", a), "failed"
			}
			ids = append(ids, id)
			want[id] = status
		}
		if _, err := pool.Exec(ctx, `INSERT INTO targets (campaign_id, identifier)
			SELECT c.id, i FROM campaigns c, unnest($2::text[]) i WHERE c.name = $1`, name, ids); err != nil {
			t.Fatal(err)
		}
	}

	env := []string{"DATABASE_URL=" + dsn, "REDIS_URL=" + rs.URL, "UNIPILE_DSN=" + srv.URL,
		"UNIPILE_API_KEY=" + unipileKey, "PROVIDER_TIMEOUT=2s", "LOG_FORMAT=json", "LOG_LEVEL=info"}
	schedArgs := []string{"scheduler", "--horizon", "5s", "--poll", "250ms", "--reconcile", "1s"}
	var procs []*process
	for i := 0; i < 2; i++ {
		procs = append(procs, startProcess(t, bin, fmt.Sprintf("scheduler-%d", i), env, schedArgs...))
	}
	var workers []*process
	for i := 0; i < 3; i++ {
		workers = append(workers, startProcess(t, bin, fmt.Sprintf("worker-%d", i), env, "worker", "--concurrency", "40"))
	}
	start := time.Now()
	count := func(q string) int {
		var n int
		if err := pool.QueryRow(ctx, q).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	waitUntil := func(what string, timeout time.Duration, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(timeout)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out after %s waiting for %s", timeout, what)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	total := nAccounts * perAccount
	waitUntil("a quarter sent", 60*time.Second, func() bool { return count(`SELECT count(*) FROM targets WHERE status = 'sent'`) >= total/4 })
	if err := workers[0].cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	killedAt := time.Since(start)
	waitUntil("40% sent", 60*time.Second, func() bool { return count(`SELECT count(*) FROM targets WHERE status = 'sent'`) >= total*2/5 })
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr})
	defer rdb.Close()
	if err := rdb.FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	flushedAt := time.Since(start)
	// The killed worker's in-flight tasks come back when asynq's lease
	// on them expires (30 s) and its recoverer runs (each minute).
	waitUntil("every target to end", 180*time.Second, func() bool {
		return count(`SELECT count(*) FROM targets WHERE status NOT IN ('sent', 'skipped', 'failed')`) == 0
	})
	t.Logf("killed a worker at %s, flushed redis at %s, all done at %s", killedAt.Round(time.Millisecond),
		flushedAt.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	for _, p := range append(procs, workers[1:]...) {
		p.stop(t, 20*time.Second)
	}

	// Every target where it should be.
	rows, err := pool.Query(ctx, `SELECT identifier, status, coalesce(last_error, '') FROM targets`)
	if err != nil {
		t.Fatal(err)
	}
	bad := 0
	for rows.Next() {
		var id, status, reason string
		if err := rows.Scan(&id, &status, &reason); err != nil {
			t.Fatal(err)
		}
		if want[id] != status {
			bad++
			if bad <= 10 {
				t.Errorf("target %s: %s (%s), want %s", id, status, reason, want[id])
			}
		}
	}
	rows.Close()
	// From the simulator's own record.
	if v := sim.LimitViolations(windows); len(v) > 0 {
		t.Errorf("%d limit violations, first: %+v", len(v), v[0])
	}
	if d := sim.DuplicateInvites(); len(d) > 0 {
		t.Errorf("%d people invited twice by one account, first: %+v", len(d), d[0])
	}
	for _, r := range sim.Requests() {
		if r.Outcome == "limit_exceeded" || r.Outcome == "too_many_requests" {
			t.Errorf("the provider had to refuse a request: %+v", r)
			break
		}
	}
	// Utilisation: from the first send until the first account ran out of
	// work, every account had work waiting; compare what each sent in that
	// span with the most its limits allowed.
	byAccount := map[string][]time.Time{}
	var first time.Time
	for _, r := range sim.Requests() {
		if r.Op == "invite" && r.Provider == provider.Unipile {
			byAccount[r.Account] = append(byAccount[r.Account], r.Time)
			if first.IsZero() || r.Time.Before(first) {
				first = r.Time
			}
		}
	}
	end := time.Time{}
	for _, ts := range byAccount {
		sort.Slice(ts, func(i, j int) bool { return ts[i].Before(ts[j]) })
		if last := ts[len(ts)-1]; end.IsZero() || last.Before(end) {
			end = last
		}
	}
	// Each account's work ends with its last few sends; stop the span a
	// little before the earliest end, where every account still had more.
	end = end.Add(-2 * time.Second)
	span := end.Sub(first)
	used, allowed := 0, 0
	for _, ts := range byAccount {
		for _, x := range ts {
			if !x.After(end) {
				used++
			}
		}
		allowed += bench.GreedyMax(windows, span)
	}
	// A figure for the log only: on a loaded machine the processes get
	// less CPU than the windows allow, so no floor is asserted against the
	// wall clock (the benchmark records and compares utilisation; see
	// BENCHMARKS.md). The invariants above are what this test checks.
	util := float64(used) / float64(allowed)
	t.Logf("utilisation over %s: %d of %d allowed sends (%.1f%%)", span.Round(time.Millisecond), used, allowed, 100*util)
}
