package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outreach-dev/outreach/internal/testenv"
	"github.com/outreach-dev/outreach/store"
)

// TestDemoEndsWithEveryTargetDone runs the demo as a user would (throwaway
// Postgres and Redis, in-process simulator, scheduler, two workers and the
// dashboard), small, and checks that every target ends.
func TestDemoEndsWithEveryTargetDone(t *testing.T) {
	if testing.Short() {
		t.Skip("the demo takes about half a minute")
	}
	// The two demos wait on their compressed pacing far more than they
	// compute: they run side by side, each on its own throwaway servers.
	t.Parallel()
	code, out, errs := cli(t, "demo", "--targets", "12", "--duration", "120s", "--dashboard-addr", "127.0.0.1:0", "--keep-serving=false")
	if code != exitOK {
		t.Fatalf("demo: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	if !strings.Contains(out, "every target done") {
		t.Errorf("the demo did not finish every target:\n%s\nstderr tail:\n%s", out, tail(errs, 3000))
	}
	for _, want := range []string{"CAMPAIGN", "li-alice-campaign", "li-bob-campaign", "altegio-salon-campaign",
		"ACCEPTED", "WITHDRAWN", "LinkedIn invitations sent", "already_connected", "invalid_identifier", "too_many_characters", "resource_not_found", "limit_exceeded"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	if !regexp.MustCompile(`dashboard on http://127\.0\.0\.1:\d+/`).MatchString(errs) {
		t.Errorf("the demo did not print the dashboard's URL:\n%s", tail(errs, 2000))
	}
	if !strings.Contains(errs, "sent ") || !strings.Contains(errs, "waiting ") {
		t.Errorf("no progress lines on stderr:\n%s", tail(errs, 2000))
	}
	// Every campaign row shows nothing waiting.
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "-campaign-") {
			f := strings.Fields(l)
			if len(f) < 7 || f[6] != "0" {
				t.Errorf("campaign still has targets waiting: %s", l)
			}
		}
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// TestDemoRecordsAcceptancesAndWithdrawals runs a small demo on a database
// of the test's own (--use-env), and reads back from it that simulated
// people accepted invitations, that polls recorded it, and that invitations
// left unanswered were withdrawn; the demo's output says so too.
func TestDemoRecordsAcceptancesAndWithdrawals(t *testing.T) {
	if testing.Short() {
		t.Skip("the demo takes about half a minute")
	}
	t.Parallel()
	st, dsn := testenv.Store(t)
	vars := []string{"DATABASE_URL=" + dsn, "REDIS_URL=" + testenv.Redis(t).URL, "LOG_FORMAT=text"}
	code, out, errs := cliIn(t, vars, "demo", "--use-env", "--targets", "10", "--duration", "120s", "--dashboard-addr", "", "--keep-serving=false")
	if code != exitOK {
		t.Fatalf("demo: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, tail(errs, 3000))
	}
	ctx := context.Background()
	camps, err := st.CampaignProgress(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for _, c := range camps {
		ids = append(ids, c.ID)
	}
	follow, err := st.FollowUps(ctx, ids)
	if err != nil {
		t.Fatal(err)
	}
	var sum store.FollowUp
	for _, f := range follow {
		sum.Sent += f.Sent
		sum.Accepted += f.Accepted
		sum.Withdrawn += f.Withdrawn
	}
	if sum.Accepted < 1 || sum.Withdrawn < 1 {
		t.Errorf("after the demo: %d invitations sent, %d accepted, %d withdrawn; want at least one of each\n%s\nstderr tail:\n%s",
			sum.Sent, sum.Accepted, sum.Withdrawn, out, tail(errs, 3000))
	}
	want := regexp.MustCompile(`LinkedIn invitations sent \d+: accepted ` + strconv.Itoa(sum.Accepted) + ` .*withdrawn ` + strconv.Itoa(sum.Withdrawn) + ` `)
	if !want.MatchString(out) {
		t.Errorf("the summary does not say %d accepted and %d withdrawn:\n%s", sum.Accepted, sum.Withdrawn, out)
	}
	if !strings.Contains(errs, "accepted ") || !strings.Contains(errs, "withdrawn ") {
		t.Errorf("the progress lines do not count acceptances and withdrawals:\n%s", tail(errs, 2000))
	}
}

// TestDemoRefusesARealDatabase: with --use-env the demo must not run its
// simulator-bound workers over real campaigns.
func TestDemoRefusesARealDatabase(t *testing.T) {
	cliEnv(t)
	t.Setenv("REDIS_URL", testenv.Redis(t).URL)
	mustRun(t, "account", "add", "jane-linkedin", "--provider", "unipile", "--provider-account-id", "real")
	code, _, errs := cli(t, "demo", "--use-env", "--duration", "5s", "--dashboard-addr", "")
	if code != exitError || !strings.Contains(errs, "not the demo's") {
		t.Errorf("demo --use-env over a database with a real account: exit %d, %s", code, errs)
	}
}

// signalWriter keeps what is written and closes seen once it contains want.
type signalWriter struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	want string
	seen chan struct{}
	once sync.Once
}

func (w *signalWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if strings.Contains(w.buf.String(), w.want) {
		w.once.Do(func() { close(w.seen) })
	}
	return len(p), nil
}

func (w *signalWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// TestDemoKeepsConsoleUp: after the run the demo keeps serving the
// dashboard and the console, says so, and stops when interrupted.
func TestDemoKeepsConsoleUp(t *testing.T) {
	if testing.Short() {
		t.Skip("the demo takes about half a minute")
	}
	// The two demos wait on their compressed pacing far more than they
	// compute: they run side by side, each on its own throwaway servers.
	t.Parallel()
	errw := &signalWriter{want: "stay up until you press Ctrl-C", seen: make(chan struct{})}
	var out bytes.Buffer
	env, err := LoadEnv(os.Environ(), &out, errw)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- runDemo(ctx, env, []string{"--targets", "10", "--duration", "120s", "--dashboard-addr", "127.0.0.1:0"})
	}()
	select {
	case <-errw.seen:
	case err := <-done:
		t.Fatalf("the demo returned (%v) instead of staying up:\n%s", err, tail(errw.String(), 3000))
	case <-time.After(4 * time.Minute):
		t.Fatalf("the demo never said it stays up:\n%s", tail(errw.String(), 3000))
	}
	m := regexp.MustCompile(`console on (http://127\.0\.0\.1:\d+/console/)`).FindStringSubmatch(errw.String())
	if m == nil {
		t.Fatalf("the demo did not print the console's URL:\n%s", tail(errw.String(), 3000))
	}
	resp, err := http.Get(m[1])
	if err != nil {
		t.Fatalf("the console is not up after the run: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "demo-") {
		t.Fatalf("console after the run: %d\n%.1000s", resp.StatusCode, body)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("the demo ended with %v after the interrupt", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the demo did not stop after the interrupt")
	}
	if _, err := http.Get(m[1]); err == nil {
		t.Error("the console still answers after the demo returned")
	}
}
