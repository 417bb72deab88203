package main

import (
	"regexp"
	"strings"
	"testing"

	"github.com/outreach-dev/outreach/internal/testenv"
)

// TestDemoEndsWithEveryTargetDone runs the demo as a user would (throwaway
// Postgres and Redis, in-process simulator, scheduler, two workers and the
// dashboard), small, and checks that every target ends.
func TestDemoEndsWithEveryTargetDone(t *testing.T) {
	if testing.Short() {
		t.Skip("the demo takes about half a minute")
	}
	t.Setenv("CI", "true")
	code, out, errs := cli(t, "demo", "--targets", "12", "--duration", "120s", "--dashboard-addr", "127.0.0.1:0")
	if code != exitOK {
		t.Fatalf("demo: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	if !strings.Contains(out, "every target done") {
		t.Errorf("the demo did not finish every target:\n%s\nstderr tail:\n%s", out, tail(errs, 3000))
	}
	for _, want := range []string{"CAMPAIGN", "li-alice-campaign", "li-bob-campaign", "altegio-salon-campaign",
		"already_connected", "invalid_identifier", "too_many_characters", "resource_not_found", "limit_exceeded"} {
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
