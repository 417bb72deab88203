package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/outreach-dev/outreach/internal/testenv"
	"github.com/outreach-dev/outreach/store"
	"github.com/outreach-dev/outreach/store/storetest"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// cli runs the binary's entry point with the environment set by the
// test and returns the exit code, stdout and stderr.
func cli(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

// cliIn is cli with environment variables (KEY=value) added to the
// process's, so that a test can give its own DATABASE_URL and still run in
// parallel.
func cliIn(t *testing.T, vars []string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := runIn(append(os.Environ(), vars...), args, &out, &errb)
	return code, out.String(), errb.String()
}

// cliEnv gives the test a fresh database through DATABASE_URL, with an
// account and a campaign. Tests using it cannot be parallel.
func cliEnv(t *testing.T) *store.Store {
	t.Helper()
	st, dsn := testenv.Store(t)
	t.Setenv("DATABASE_URL", dsn)
	t.Setenv("LOG_FORMAT", "text")
	return st
}

// cliDB opens a pool of the test's own on cliEnv's database, for SQL
// setup and checks (the store exports none).
func cliDB(t *testing.T) storetest.DB {
	t.Helper()
	return testenv.DB(t, os.Getenv("DATABASE_URL"))
}

func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errs := cli(t, args...)
	if code != 0 {
		t.Fatalf("outreach %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

// TestAccountAddWorkingHours: account add sets the working hours and days
// it is given, in its time zone, and leaves all day, every day otherwise.
func TestAccountAddWorkingHours(t *testing.T) {
	st := cliEnv(t)
	ctx := context.Background()
	mustRun(t, "account", "add", "li-dora", "--provider", "unipile", "--provider-account-id", "acc-d",
		"--timezone", "Europe/Paris", "--hours", "09:30-18:00", "--days", "mon-wed,fri,6")
	mustRun(t, "account", "add", "li-emil", "--provider", "unipile", "--provider-account-id", "acc-e", "--hours", "08:00-24:00")
	mustRun(t, "account", "add", "li-finn", "--provider", "unipile", "--provider-account-id", "acc-f")
	for _, tc := range []struct {
		name       string
		start, end time.Duration
		days       []int
	}{
		{"li-dora", 9*time.Hour + 30*time.Minute, 18 * time.Hour, []int{1, 2, 3, 5, 6}},
		{"li-emil", 8 * time.Hour, 24 * time.Hour, []int{1, 2, 3, 4, 5, 6, 7}},
		{"li-finn", 0, 24 * time.Hour, []int{1, 2, 3, 4, 5, 6, 7}},
	} {
		a, err := st.AccountByName(ctx, tc.name)
		if err != nil {
			t.Fatal(err)
		}
		if a.WorkStart != tc.start || a.WorkEnd != tc.end || !slices.Equal(a.WorkDays, tc.days) {
			t.Errorf("%s works %v-%v on %v; want %v-%v on %v", tc.name, a.WorkStart, a.WorkEnd, a.WorkDays, tc.start, tc.end, tc.days)
		}
	}
}

func TestAccountCampaignLimitsPauseResume(t *testing.T) {
	st := cliEnv(t)
	ctx := context.Background()
	mustRun(t, "account", "add", "li-alice", "--provider", "unipile", "--provider-account-id", "acc1",
		"--min-gap", "90s", "--jitter", "2m", "--limit", "invite:25/1d")
	mustRun(t, "campaign", "add", "spring", "--account", "li-alice", "--message", "Hi {{.FirstName}}")

	out := mustRun(t, "limits", "set", "li-alice", "invite", "25/24h", "invite", "100/7d", "lookup:100/1d")
	for _, want := range []string{"invite 25/24h", "invite 100/168h", "lookup 100/24h", "min gap 1m30s"} {
		if !strings.Contains(out, want) {
			t.Errorf("limits set output lacks %q:\n%s", want, out)
		}
	}
	a, err := st.AccountByName(ctx, "li-alice")
	if err != nil {
		t.Fatal(err)
	}
	// (Actions the account sets nothing for, such as withdrawals, run on
	// the provider's defaults.)
	if n := len(a.LimitsFor(store.ActionInvite)) + len(a.LimitsFor(store.ActionLookup)); n != 3 {
		t.Errorf("limits in the database: %v, want 3 of its own", a.Limits)
	}
	out = mustRun(t, "limits", "show", "li-alice", "--json")
	var ws []map[string]any
	custom := 0
	if err := json.Unmarshal([]byte(out), &ws); err == nil {
		for _, w := range ws {
			if w["source"] == "custom" {
				custom++
			}
		}
	}
	if custom != 3 {
		t.Errorf("limits show --json: %d of its own, want 3: %s", custom, out)
	}

	mustRun(t, "pause", "account", "li-alice", "--until", "2h", "--reason", "holiday")
	a, _ = st.AccountByName(ctx, "li-alice")
	if a.Status != "paused" || a.PauseReason != "holiday" || a.PausedUntil.Before(time.Now().Add(119*time.Minute)) {
		t.Errorf("after pause --until 2h: %s %q until %v", a.Status, a.PauseReason, a.PausedUntil)
	}
	mustRun(t, "resume", "account", "li-alice")
	mustRun(t, "pause", "account", "--reason", "checkpoint", "li-alice") // flags before the name, no --until
	a, _ = st.AccountByName(ctx, "li-alice")
	if a.Status != "disabled" || a.PauseReason != "checkpoint" {
		t.Errorf("after pause without --until: %s %q", a.Status, a.PauseReason)
	}
	mustRun(t, "resume", "account", "li-alice")
	a, _ = st.AccountByName(ctx, "li-alice")
	if a.Status != "active" {
		t.Errorf("after resume: %s", a.Status)
	}

	mustRun(t, "pause", "campaign", "spring")
	c, _ := st.CampaignByName(ctx, "spring")
	if c.Status != "paused" {
		t.Errorf("campaign after pause: %s", c.Status)
	}
	mustRun(t, "resume", "campaign", "spring")
	c, _ = st.CampaignByName(ctx, "spring")
	if c.Status != "active" {
		t.Errorf("campaign after resume: %s", c.Status)
	}

	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"pause", "campaign", "nope"}, exitNotFound},
		{[]string{"resume", "account", "nope"}, exitNotFound},
		{[]string{"limits", "show", "nope"}, exitNotFound},
		{[]string{"limits", "set", "li-alice", "invite", "25"}, exitUsage},
		{[]string{"limits", "set", "li-alice", "send", "25/1d"}, exitUsage},
		{[]string{"limits", "set", "li-alice", "invite", "0/1d"}, exitUsage},
		{[]string{"pause", "account", "li-alice", "--until", "yesterday"}, exitUsage},
		{[]string{"pause", "thing", "x"}, exitUsage},
		{[]string{"campaign", "add", "x", "--account", "nope"}, exitNotFound},
		{[]string{"status", "--campaign", "nope"}, exitNotFound},
	} {
		if code, _, errs := cli(t, tc.args...); code != tc.code {
			t.Errorf("outreach %s: exit %d, want %d (%s)", strings.Join(tc.args, " "), code, tc.code, errs)
		}
	}
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestImportAndStatus(t *testing.T) {
	st := cliEnv(t)
	db := cliDB(t)
	ctx := context.Background()
	mustRun(t, "account", "add", "li-bob", "--provider", "unipile", "--provider-account-id", "acc2", "--limit", "invite:5/10s")
	mustRun(t, "campaign", "add", "autumn", "--account", "li-bob")

	good := writeFile(t, "good.csv", "identifier,first_name,company\njane-doe,Jane,Acme\njohn-smith,John,Initech\n")
	code, out, errs := cli(t, "import", good, "--campaign", "autumn")
	if code != exitOK || !strings.Contains(out, "2 targets added") {
		t.Errorf("import of a good file: exit %d\n%s%s", code, out, errs)
	}

	bad := writeFile(t, "bad.csv", "identifier,first_name,company\n"+
		"amelie-dubois,Amélie,Société Générale\n"+ // 2 good
		"only-two,Two\n"+ // 3 bad
		",Empty,Acme\n"+ // 4 bad
		"latin1,\xe9t\xe9,Acme\n"+ // 5 bad
		"jane-doe,Jane,Acme\n") // 6 already there
	code, out, errs = cli(t, "import", "--campaign", "autumn", bad)
	if code != exitPartial {
		t.Errorf("import with bad rows: exit %d, want %d", code, exitPartial)
	}
	for _, want := range []string{"bad.csv:3: 2 fields, want 3", "bad.csv:4: empty identifier", `bad.csv:5: column "first_name" is not valid UTF-8`,
		"3 of 5 rows were bad"} {
		if !strings.Contains(errs, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errs)
		}
	}
	if !strings.Contains(out, "1 targets added, 1 already there, 3 bad rows skipped") {
		t.Errorf("stdout: %s", out)
	}
	_, vars := storetest.VarsOf(t, db, "amelie-dubois")
	if vars["company"] != "Société Générale" {
		t.Errorf("vars = %v", vars)
	}

	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"import", good, "--campaign", "nope"}, exitNotFound},
		{[]string{"import", good}, exitUsage},
		{[]string{"import", writeFile(t, "h.csv", "email,name\na@b.c,A\n"), "--campaign", "autumn"}, exitUsage},
		{[]string{"import", filepath.Join(t.TempDir(), "missing.csv"), "--campaign", "autumn"}, exitError},
	} {
		if code, _, errs := cli(t, tc.args...); code != tc.code {
			t.Errorf("outreach %s: exit %d, want %d (%s)", strings.Join(tc.args, " "), code, tc.code, errs)
		}
	}

	// Make some progress by hand, then read it back.
	a, _ := st.AccountByName(ctx, "li-bob")
	storetest.SetStatusOf(t, db, "jane-doe", store.TargetSent)
	storetest.FailWith(t, db, "john-smith", "invalid_recipient")
	now := storetest.Now(t, db)
	storetest.AddSend(t, db, storetest.Send{Account: a.ID, Action: store.ActionInvite, Reserved: now, Answered: now, Outcome: store.OutcomeSent})
	if err := st.PauseAccount(ctx, a.ID, time.Now().Add(time.Hour), "limit_exceeded"); err != nil {
		t.Fatal(err)
	}
	out = mustRun(t, "status")
	for _, want := range []string{"#1 autumn", "2/3 done", "pending 1", "sent 1", "failed 1", "failed: invalid_recipient 1",
		"li-bob", "paused until", ": limit_exceeded", "invite per 10s", "1 used, 4 left of 5"} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	out = mustRun(t, "status", "--json", "--campaign", "autumn")
	var rep statusReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	if len(rep.Campaigns) != 1 || rep.Campaigns[0].Total != 3 || rep.Campaigns[0].Counts["sent"] != 1 ||
		len(rep.Accounts) != 1 || rep.Accounts[0].Windows[0].Left != 4 || rep.Accounts[0].Status != "paused" {
		t.Errorf("status --json: %s", out)
	}
}

// An account added with nothing runs on its provider's defaults, which
// `limits show` and `status` say; `limits set` sets a gap per action, opts
// the account out (unlimited) and back (default).
func TestLimitsPacingDefaultsAndOptOut(t *testing.T) {
	st := cliEnv(t)
	ctx := context.Background()
	mustRun(t, "account", "add", "li-carol", "--provider", "unipile", "--provider-account-id", "acc3")
	out := mustRun(t, "limits", "show", "li-carol")
	for _, want := range []string{"pacing default", "invite min gap 1m30s + up to 2m30s (default)", "invite 80/24h", "invite 200/168h",
		"lookup min gap 30s + up to 1m (default)", "lookup 100/24h", "(default)"} {
		if !strings.Contains(out, want) {
			t.Errorf("limits show of an account on defaults lacks %q:\n%s", want, out)
		}
	}
	if out := mustRun(t, "status"); !strings.Contains(out, "pacing default") || !strings.Contains(out, "lookup gap 30s + up to 1m (default)") {
		t.Errorf("status does not say the account runs on defaults:\n%s", out)
	}

	out = mustRun(t, "limits", "set", "li-carol", "lookup", "gap", "10s+5s", "lookup", "500/1d")
	for _, want := range []string{"pacing custom+default", "lookup min gap 10s + up to 5s (custom)", "lookup 500/24h", "invite 80/24h"} {
		if !strings.Contains(out, want) {
			t.Errorf("limits set lookup gap lacks %q:\n%s", want, out)
		}
	}

	out = mustRun(t, "limits", "set", "li-carol", "unlimited")
	if !strings.Contains(out, "UNLIMITED") || !strings.Contains(out, "no limits") {
		t.Errorf("limits set unlimited:\n%s", out)
	}
	a, err := st.AccountByName(ctx, "li-carol")
	if err != nil {
		t.Fatal(err)
	}
	if a.Pacing != store.PacingUnlimited || a.Pace(store.ActionLookup).Paced() || a.Pace(store.ActionInvite).Paced() {
		t.Errorf("after limits set unlimited: pacing %q, lookup %+v, invite %+v", a.Pacing, a.Pace(store.ActionLookup), a.Pace(store.ActionInvite))
	}
	if out := mustRun(t, "status"); !strings.Contains(out, "pacing UNLIMITED") {
		t.Errorf("status does not say the account opted out:\n%s", out)
	}
	if out := mustRun(t, "limits", "set", "li-carol", "default"); !strings.Contains(out, "pacing default") {
		t.Errorf("limits set default:\n%s", out)
	}
	for _, args := range [][]string{
		{"limits", "set", "li-carol", "lookup", "gap", "soon"},
		{"limits", "set", "li-carol", "send", "gap", "1s"},
		{"account", "add", "x", "--provider", "unipile", "--provider-account-id", "x", "--pacing", "fast"},
		{"account", "add", "x", "--provider", "unipile", "--provider-account-id", "x", "--hours", "18:00-09:00"},
		{"account", "add", "x", "--provider", "unipile", "--provider-account-id", "x", "--hours", "9-18"},
		{"account", "add", "x", "--provider", "unipile", "--provider-account-id", "x", "--hours", "09:00-24:30"},
		{"account", "add", "x", "--provider", "unipile", "--provider-account-id", "x", "--days", "mon-funday"},
		{"account", "add", "x", "--provider", "unipile", "--provider-account-id", "x", "--days", "fri-mon"},
		{"account", "add", "x", "--provider", "unipile", "--provider-account-id", "x", "--days", "0"},
	} {
		if code, _, errs := cli(t, args...); code != exitUsage {
			t.Errorf("outreach %s: exit %d, want %d (%s)", strings.Join(args, " "), code, exitUsage, errs)
		}
	}
}
