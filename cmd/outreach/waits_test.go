package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/outreach-dev/outreach/internal/testenv"
	"github.com/outreach-dev/outreach/report"
	"github.com/outreach-dev/outreach/scheduler"
	"github.com/outreach-dev/outreach/store"
	"github.com/outreach-dev/outreach/store/storetest"
)

// waitEnv is a fresh database with account li (Unipile, Europe/Paris) and
// campaign spring with one target, and a scheduler whose clock is now.
type waitEnv struct {
	st       *store.Store
	db       storetest.DB // the test's own, for setup and checks (storetest)
	sched    *scheduler.Scheduler
	now      time.Time
	account  int64
	campaign int64
	target   int64
}

func newWaitEnv(t *testing.T, accountFlags ...string) *waitEnv {
	t.Helper()
	st := cliEnv(t)
	mustRun(t, append([]string{"account", "add", "li", "--provider", "unipile", "--provider-account-id", "acc1",
		"--timezone", "Europe/Paris"}, accountFlags...)...)
	mustRun(t, "campaign", "add", "spring", "--account", "li")
	e := &waitEnv{st: st, db: cliDB(t), now: time.Now()}
	e.account, e.campaign = storetest.OnlyAccountAndCampaign(t, e.db)
	// A LinkedIn member id needs no lookup: the target waits for an
	// invitation slot.
	e.target = storetest.AddDueTarget(t, e.db, e.campaign, "ACoAAAcDMMQBODyLwZrRcgYhrkCafURGqva0U4E", e.now.Add(-time.Second))
	rs := testenv.Redis(t)
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr})
	t.Cleanup(func() { _ = rdb.Close() })
	sched, err := scheduler.New(scheduler.Config{Store: st, Redis: rdb, Now: func() time.Time { return e.now }})
	if err != nil {
		t.Fatal(err)
	}
	e.sched = sched
	return e
}

func (e *waitEnv) tick(t *testing.T) {
	t.Helper()
	if _, err := e.sched.Tick(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// check asserts the target's wait in the target_waits view and in
// `status --json`: the campaign's waiting group, and, for account-level
// reasons, the account's waits. A zero until means none.
func (e *waitEnv) check(t *testing.T, wait, reason string, until time.Time, accountLevel bool) {
	t.Helper()
	w, ok := storetest.WaitOf(t, e.db, e.target)
	if !ok {
		t.Fatalf("target_waits: no row for the target")
	}
	gotWait, gotReason, gotUntil, local := w.Wait, w.Reason, w.Until, w.UntilLocal
	if gotWait != wait || !strings.Contains(gotReason, reason) {
		t.Errorf("SQL: target waits %q (%q), want %q containing %q", gotWait, gotReason, wait, reason)
	}
	if !sameTime(gotUntil, until) {
		t.Errorf("SQL: target waits until %v, want %v", gotUntil, until)
	}
	if !until.IsZero() {
		wantLocal := until.In(paris(t)).Format("2006-01-02 15:04") + " Europe/Paris"
		if local == nil || *local != wantLocal {
			t.Errorf("SQL: until_local %v, want %q", local, wantLocal)
		}
	}

	out := mustRun(t, "status", "--json")
	var rep statusReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	if len(rep.Campaigns) != 1 || len(rep.Campaigns[0].Waiting) != 1 {
		t.Fatalf("status --json: want one campaign with one waiting group:\n%s", out)
	}
	g := rep.Campaigns[0].Waiting[0]
	if g.Wait != wait || !strings.Contains(g.Reason, reason) || g.Count != 1 || !sameTime(g.Until, until) {
		t.Errorf("status --json: campaign waiting %+v, want %s %q until %v", g, wait, reason, until)
	}
	if accountLevel {
		var found bool
		for _, aw := range rep.Accounts[0].Waits {
			if aw.Wait == wait && strings.Contains(aw.Reason, reason) && sameTime(aw.Until, until) {
				found = true
			}
		}
		if !found {
			t.Errorf("status --json: account waits %+v, want %s %q until %v", rep.Accounts[0].Waits, wait, reason, until)
		}
	}
	text := mustRun(t, "status")
	if !strings.Contains(text, reason) {
		t.Errorf("status lacks %q:\n%s", reason, text)
	}
}

func sameTime(got *time.Time, want time.Time) bool {
	if got == nil {
		return want.IsZero()
	}
	return !want.IsZero() && got.Sub(want).Abs() < time.Millisecond
}

func paris(t *testing.T) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func TestWaitOutsideWorkingHours(t *testing.T) {
	e := newWaitEnv(t)
	// One working hour, chosen so that now is outside it.
	local := e.now.In(paris(t))
	startHour := 13
	if local.Hour() >= 12 {
		startHour = 1
	}
	storetest.SetWorkingHours(t, e.db, startHour, startHour+1)
	open := time.Date(local.Year(), local.Month(), local.Day(), startHour, 0, 0, 0, local.Location())
	if !open.After(e.now) {
		open = time.Date(local.Year(), local.Month(), local.Day()+1, startHour, 0, 0, 0, local.Location())
	}
	e.tick(t)
	e.check(t, "hours", "outside working hours", open, true)
	// Later ticks, while nothing changes, do not write the row again (its
	// xmin stays), even when the planner refreshes what it wrote.
	xmin := func() string {
		return storetest.AccountWaitsVersion(t, e.db)
	}
	first := xmin()
	e.tick(t)
	e.now = e.now.Add(2 * time.Minute)
	e.tick(t)
	if got := xmin(); got != first {
		t.Errorf("account_waits row rewritten by ticks that found the same wait (xmin %s, then %s)", first, got)
	}
	if !strings.Contains(mustRun(t, "status"), fmt.Sprintf("outside working hours until %s Europe/Paris", open.Format("2006-01-02 15:04"))) {
		t.Errorf("status does not say until when the account is closed:\n%s", mustRun(t, "status"))
	}

	// Once open, the reason goes with the next tick: the target is queued
	// for its slot.
	storetest.SetWorkingHours(t, e.db, 0, 24)
	e.tick(t)
	e.check(t, "queued", "task is in Redis", e.now, false)
	if out := mustRun(t, "status"); !strings.Contains(out, "1 queued: its task is in Redis, due at ") {
		t.Errorf("status does not say when the queued target is due:\n%s", out)
	}
}

func TestWaitWindowFull(t *testing.T) {
	e := newWaitEnv(t, "--limit", "invite:2/1d")
	oldest := e.now.Add(-3 * time.Hour).Truncate(time.Microsecond)
	storetest.AddSends(t, e.db,
		storetest.Send{Account: e.account, Action: store.ActionInvite, Reserved: oldest, Answered: oldest, Outcome: store.OutcomeSent},
		storetest.Send{Account: e.account, Action: store.ActionInvite, Reserved: e.now.Add(-time.Hour), Answered: e.now.Add(-time.Hour), Outcome: store.OutcomeSent})
	e.tick(t)
	e.check(t, "window", "window `invite 2 per 1 day` full", oldest.Add(24*time.Hour), true)

	// A raised limit clears it at the next tick.
	mustRun(t, "limits", "set", "li", "invite", "3/1d")
	e.tick(t)
	e.check(t, "queued", "task is in Redis", e.now, false)
}

func TestWaitMinimumGap(t *testing.T) {
	e := newWaitEnv(t, "--min-gap", "10m")
	next := e.now.Add(7 * time.Minute).Truncate(time.Microsecond)
	storetest.SetNextSendAt(t, e.db, next)
	e.tick(t)
	e.check(t, "gap", "minimum gap between invitations", next, true)
}

func TestWaitAccountPausedThenResumed(t *testing.T) {
	e := newWaitEnv(t)
	mustRun(t, "pause", "account", "li", "--until", "2h", "--reason", "holiday")
	a, err := e.st.AccountByName(context.Background(), "li")
	if err != nil {
		t.Fatal(err)
	}
	e.tick(t)
	e.check(t, "account_paused", "account paused (holiday)", a.PausedUntil, true)
	if out := mustRun(t, "status"); !strings.Contains(out, "paused until") || !strings.Contains(out, "holiday") {
		t.Errorf("status does not show the pause:\n%s", out)
	}
	mustRun(t, "resume", "account", "li")
	e.check(t, "due", "its turn", time.Time{}, false)
}

func TestWaitAccountDisabledThenResumed(t *testing.T) {
	e := newWaitEnv(t)
	mustRun(t, "pause", "account", "li", "--reason", "checkpoint")
	e.tick(t)
	e.check(t, "account_disabled", "account disabled (checkpoint); run `outreach resume account li`", time.Time{}, true)
	mustRun(t, "resume", "account", "li")
	e.tick(t)
	e.check(t, "queued", "task is in Redis", e.now, false)
}

func TestWaitDeferredAfterCannotResendYet(t *testing.T) {
	e := newWaitEnv(t)
	e.tick(t) // queued
	at, err := e.st.Begin(context.Background(), store.BeginRequest{TargetID: e.target, Action: store.ActionInvite, Now: e.now,
		Lease: time.Minute, RequestTimeout: 10 * time.Second, HoldFor: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	e.check(t, "sending", "calling the provider", e.now.Add(time.Minute), false)
	later := e.now.Add(24 * time.Hour).Truncate(time.Microsecond)
	if err := e.st.Finish(context.Background(), store.Finish{SendID: at.SendID, TargetID: e.target, AccountID: e.account, Now: e.now,
		Outcome: store.OutcomeRefused, ErrorType: "cannot_resend_yet", LastError: "cannot_resend_yet: refused",
		TargetStatus: store.TargetPending, NextAttemptAt: later, CountDeferral: true}); err != nil {
		t.Fatal(err)
	}
	e.tick(t)
	e.check(t, "deferred", "deferred after cannot_resend_yet", later, false)
}

func TestWaitCampaignPaused(t *testing.T) {
	e := newWaitEnv(t)
	mustRun(t, "pause", "campaign", "spring")
	e.tick(t)
	e.check(t, "campaign_paused", "campaign paused; run `outreach resume campaign spring`", time.Time{}, false)
}

// TestStatusReportShape: an account without waits and a campaign
// without waiting targets still list them as empty arrays (scripts
// iterate them).
func TestStatusReportShape(t *testing.T) {
	cliEnv(t)
	mustRun(t, "account", "add", "li", "--provider", "unipile", "--provider-account-id", "acc1")
	mustRun(t, "campaign", "add", "spring", "--account", "li")
	var rep struct {
		Campaigns []struct {
			Waiting []report.WaitGroup `json:"waiting"`
		} `json:"campaigns"`
		Accounts []map[string]json.RawMessage `json:"accounts"`
	}
	out := mustRun(t, "status", "--json")
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if string(rep.Accounts[0]["waits"]) != "[]" || rep.Campaigns[0].Waiting == nil {
		t.Errorf("status --json: want empty waits and waiting lists:\n%s", out)
	}
}

// TestWaitNothingPlansDueTargets: an active account whose targets are due
// for minutes, with nothing queued and no reason recorded by a planner,
// says that no scheduler seems to run.
func TestWaitNothingPlansDueTargets(t *testing.T) {
	e := newWaitEnv(t)
	storetest.ResolveAllDueSince(t, e.db, 5*time.Minute)
	out := mustRun(t, "status", "--json")
	var rep statusReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if w := rep.Accounts[0].Waits; len(w) != 1 || w[0].Wait != "due" || !strings.Contains(w[0].Reason, "is a scheduler running?") {
		t.Errorf("status --json: account waits %+v, want one saying no scheduler plans its due targets", w)
	}
	if text := mustRun(t, "status"); !strings.Contains(text, "sends nothing now: targets are due") {
		t.Errorf("status does not say why the account sends nothing:\n%s", text)
	}
	// Once a scheduler plans them, it is gone.
	e.tick(t)
	out = mustRun(t, "status", "--json")
	rep = statusReport{}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if w := rep.Accounts[0].Waits; len(w) != 0 {
		t.Errorf("status --json after a tick: account waits %+v, want none", w)
	}
}
