package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/outreach-dev/outreach/internal/testenv"
	"github.com/outreach-dev/outreach/provider"
	"github.com/outreach-dev/outreach/provider/simulator"
	"github.com/outreach-dev/outreach/store"
	"github.com/outreach-dev/outreach/store/storetest"
)

// inviteRequests counts the simulator's invitation requests (answered or
// refused) per account and recipient: a person must receive at most one.
func inviteRequests(sim *simulator.Simulator) map[[2]string]int {
	out := map[[2]string]int{}
	for _, r := range sim.Requests() {
		if r.Op == "invite" {
			out[[2]string{r.Account, r.Recipient}]++
		}
	}
	return out
}

// sentIDs returns the simulator's invitation id per account and recipient.
func sentIDs(sim *simulator.Simulator) map[[2]string]string {
	out := map[[2]string]string{}
	for _, r := range sim.Requests() {
		if r.Op == "invite" && r.Outcome == simulator.OutcomeSent {
			out[[2]string{r.Account, r.Recipient}] = r.InvitationID
		}
	}
	return out
}

// checkExactlyOnce checks, against the simulator's record, that every
// target is sent, that its person received exactly one invitation request,
// and that the target holds that invitation's id; and that no ledger or
// owner row names a missing account or target.
func checkExactlyOnce(t *testing.T, db storetest.DB, sim *simulator.Simulator) {
	t.Helper()
	reqs, ids := inviteRequests(sim), sentIDs(sim)
	n := 0
	for _, r := range storetest.Invitations(t, db) {
		acc, pid, status, inv, reason := r.Account, r.ProviderID, r.Status, r.InvitationID, r.LastError
		n++
		k := [2]string{acc, pid}
		if status != store.TargetSent {
			t.Errorf("%s → %s: %s (%s), want sent", acc, pid, status, reason)
		}
		if reqs[k] != 1 {
			t.Errorf("%s → %s: %d invitation requests at the provider, want exactly 1", acc, pid, reqs[k])
		}
		if ids[k] == "" || inv != ids[k] {
			t.Errorf("%s → %s: invitation_id %q stored, the provider's is %q (%s)", acc, pid, inv, ids[k], reason)
		}
	}
	if n == 0 {
		t.Fatal("no targets")
	}
	if d := storetest.DanglingRows(t, db); d != 0 {
		t.Errorf("%d ledger or owner rows name an account or a target that does not exist", d)
	}
}

// Postgres crashes (an immediate stop) while answers are in flight at the
// provider, and comes back a few seconds later: the workers keep the
// answers and record them once it is back. No answer is lost, no request
// is repeated, every invitation_id is stored.
func TestPostgresRestartKeepsAnswers(t *testing.T) {
	if testing.Short() {
		t.Skip("restarts a server")
	}
	t.Parallel()
	ctx := context.Background()
	// Durable: a crash must not undo commits already acknowledged.
	pg, st, db, dsn := ownPostgres(t, "restart", true)

	// Invitations take effect at once; their answers come 2 s later, so
	// that some are on their way back when Postgres goes down.
	h := newHarness(t, options{sim: simulator.Config{Latency: 20 * time.Millisecond, AnswerDelay: 2 * time.Second}})
	h.st, h.db, h.dsn = st, db, dsn
	limit := store.Limit{Action: store.ActionInvite, Max: 3, Per: time.Second}
	for a := 0; a < 2; a++ {
		name := fmt.Sprintf("r%d", a)
		acc := h.account(accountSpec{name: name, limits: []store.Limit{limit}})
		c, err := st.CreateCampaign(ctx, store.Campaign{Name: name, AccountID: acc})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for i := 0; i < 12; i++ {
			ids = append(ids, pid(fmt.Sprintf("restart-%d-%02d", a, i)))
		}
		h.targets(c, ids...)
	}
	h.start(2)
	// Wait until the provider has taken invitations whose answers are not
	// recorded yet (they are in flight back to the workers).
	h.waitFor("answers in flight", 30*time.Second, func() bool {
		n := storetest.TargetsIn(t, db, store.TargetSent)
		return n >= 3 && h.sim.SentCount() >= n+2
	})
	if err := pg.Crash(); err != nil {
		t.Fatal(err)
	}
	down := time.Now()
	// Postgres stays down until a worker holds an answer it could not
	// record and has tried to record it again and again (its fourth
	// attempt failed too): the outage outlasts several retries.
	changed := h.logs.Changed()
	deadline := time.After(patient(30 * time.Second))
	for !heldAndRetried(h.logs.String(), 4) {
		select {
		case <-changed:
		case <-deadline:
			t.Fatal("no worker held an answer and retried it while Postgres was down")
		}
	}
	if err := pg.Up(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("postgres was down for %s", time.Since(down).Round(time.Millisecond))
	h.waitTerminal(90 * time.Second)
	checkExactlyOnce(t, db, h.sim)
	unknownCalls := storetest.Calls{Outcomes: []store.Outcome{store.OutcomeUnknown}}
	if unknown := storetest.CountCalls(t, db, unknownCalls); unknown > 0 {
		t.Errorf("%d ledger rows closed without their answer, want 0", unknown)
		for _, c := range storetest.DescribeCalls(t, db, unknownCalls) {
			t.Log(c)
		}
	}
	if !strings.Contains(h.logs.String(), "answer recorded after retries") {
		t.Error("no answer was recorded after retries: the outage did not hit an answer in flight")
	}
	// The answers were kept, not recovered by asking the provider again.
	if lookups := storetest.CountCalls(t, db, storetest.Calls{Actions: []store.Action{store.ActionLookup}}); lookups > 0 {
		t.Errorf("%d settling lookups, want 0: every answer should have been kept", lookups)
		for _, c := range storetest.DescribeCalls(t, db, storetest.Calls{LookedUp: true}) {
			t.Log(c)
		}
	}
}

// A worker process is killed with SIGKILL while several invitations are in
// flight at a slow provider (some taken, their answers on the way; some
// not yet taken), with a provider timeout of minutes: only its stopped
// heartbeat can explain a quick recovery. Afterwards nobody received two
// invitation requests, every target is sent with its invitation id, and
// the orphaned invitations were settled by asking the provider, through
// the dead-worker path, long before the lease would have expired.
func TestWorkerKilledRecoveredByHeartbeat(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end with processes")
	}
	t.Parallel()
	const (
		nAccounts  = 4
		perAccount = 10
		timeout    = 5 * time.Minute
		lease      = 2*timeout + 5*time.Second // the workers' default
	)
	bin := buildBinary(t)
	dsn := testenv.DatabaseURL(t)
	rs := testenv.Redis(t)
	sim := simulator.New(simulator.Config{UnipileAPIKeys: []string{unipileKey},
		Latency: time.Second, Jitter: 1500 * time.Millisecond, AnswerDelay: 1500 * time.Millisecond})
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	pool := testenv.DB(t, dsn)
	for a := 0; a < nAccounts; a++ {
		name := fmt.Sprintf("kill-%d", a)
		var ids []string
		for i := 0; i < perAccount; i++ {
			ids = append(ids, pid(fmt.Sprintf("k-%d-%02d", a, i)))
		}
		storetest.SeedAccount(t, pool, storetest.Seed{Name: name, Targets: ids})
	}
	env := []string{"DATABASE_URL=" + dsn, "REDIS_URL=" + rs.URL, "UNIPILE_DSN=" + srv.URL,
		"UNIPILE_API_KEY=" + unipileKey, "PROVIDER_TIMEOUT=" + timeout.String(), "LOG_FORMAT=json", "LOG_LEVEL=info"}
	sched := startProcess(t, bin, "scheduler", env, "scheduler", "--horizon", "5s", "--poll", "250ms")
	victim := startProcess(t, bin, "worker-0", env, "worker", "--concurrency", "4")
	victimPID := victim.cmd.Process.Pid
	// Several invitations in flight at the victim: some taken by the
	// provider, their answers on the way back, some not taken yet.
	waitUntil(t, "invitations in flight at the victim", 60*time.Second, func() bool {
		n := storetest.InFlightAtProcess(t, pool, victimPID)
		taken := sim.SentCount() - storetest.TargetsIn(t, pool, store.TargetSent)
		return n >= 3 && taken >= 1 && taken < n
	})
	if err := victim.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-victim.done
	victim.done <- nil
	killedAt := storetest.Now(t, pool)
	victimID := storetest.WorkerOfProcess(t, pool, victimPID)
	orphans := storetest.CountCalls(t, pool, storetest.Calls{Worker: victimID, Outcomes: []store.Outcome{store.OutcomeInFlight},
		Actions: []store.Action{store.ActionInvite}})
	t.Logf("killed worker %d with %d invitations in flight", victimID, orphans)
	// The worker that takes over starts after the kill.
	other := startProcess(t, bin, "worker-1", env, "worker", "--concurrency", "40")
	// Far less than the lease: only the heartbeat can recover them.
	waitUntil(t, "every target to end", 120*time.Second, func() bool {
		return storetest.Unfinished(t, pool) == 0
	})
	sched.stop(t, 20*time.Second)
	other.stop(t, 20*time.Second)

	checkExactlyOnce(t, pool, sim)
	// The mechanism: the victim was found dead by its heartbeat, each of
	// its orphans was settled by a lookup at the provider, well before the
	// lease, and nothing went through the lease's path.
	if !storetest.RecoveredNotStopped(t, pool, victimID) {
		t.Errorf("the victim's liveness row is not recovered")
	}
	if n := storetest.CountCalls(t, pool, storetest.Calls{Detail: "worker stopped before recording the answer"}); n > 0 {
		t.Errorf("%d ledger rows closed by the lease's path, want 0", n)
	}
	if n := storetest.UnsettledOrphans(t, pool, victimID); n > 0 {
		t.Errorf("%d orphaned invitations of the victim not settled", n)
	}
	settled := storetest.OrphansSettledByLookup(t, pool, victimID, lease)
	if settled != orphans || orphans < 3 {
		t.Errorf("%d of the victim's %d orphans settled by a lookup before the lease, want all (at least 3)", settled, orphans)
	}
	wentOut := storetest.CountCalls(t, pool, storetest.Calls{Worker: victimID, Actions: []store.Action{store.ActionInvite},
		Outcomes: []store.Outcome{store.OutcomeSent}, Settled: true})
	detected, recovery := storetest.RecoveryDelays(t, pool, victimID, killedAt)
	t.Logf("%d orphans: %d had gone out (recorded from the provider's state), %d had not (sent once); "+
		"found dead %.1fs and first settling lookup %.1fs after the kill (the lease is %s)",
		orphans, wentOut, orphans-wentOut, detected, recovery, lease)
}

// Targets whose earlier invitation was never answered (a worker died: the
// ledger row is 'unknown'): for Unipile, the provider is asked first, on a
// lookup reservation. The one that went out is recorded as sent with its
// invitation id and not sent again; the one that did not is sent once.
// Partoo has no such read: its target is sent again, once.
func TestUncertainInvitationSettledFromProvider(t *testing.T) {
	t.Parallel()
	h := newHarness(t, options{})
	ctx := h.ctx
	ua := h.account(accountSpec{name: "ua"})
	h.targets(h.campaign(ua, ""), pid("went-out"), pid("never-arrived"))
	pa := h.account(accountSpec{name: "pa", provider: "partoo"})
	h.targets(h.campaign(pa, ""), "u-uncertain")
	if _, err := h.st.PrepareTargets(ctx, 100, func(_ provider.Name, id string) store.Normalized {
		return store.Normalized{Identifier: id, ProviderID: id}
	}); err != nil {
		t.Fatal(err)
	}
	// The invitation that went out before its worker died.
	c, err := h.Clients(provider.Unipile, "default")
	if err != nil {
		t.Fatal(err)
	}
	sent, err := c.Invite(ctx, provider.Invitation{AccountID: "ua", RecipientID: pid("went-out")})
	if err != nil {
		t.Fatal(err)
	}
	// What a dead worker's recovery leaves: a row whose answer is unknown.
	storetest.RecordUnansweredInvites(t, h.db, "worker 1 stopped heartbeating before recording the answer")
	h.start(1)
	rows := h.waitTerminal(30 * time.Second)
	if r := rows[pid("went-out")]; r.Status != "sent" || r.InvitationID != sent.InvitationID {
		t.Errorf("went-out: %+v, want sent with invitation_id %s", r, sent.InvitationID)
	}
	if r := rows[pid("never-arrived")]; r.Status != "sent" || r.InvitationID == "" {
		t.Errorf("never-arrived: %+v, want sent with an invitation id", r)
	}
	if r := rows["u-uncertain"]; r.Status != "sent" {
		t.Errorf("partoo: %+v, want sent", r)
	}
	for _, who := range []string{pid("went-out"), pid("never-arrived"), "u-uncertain"} {
		if n := len(h.invitesTo(who)); n != 1 {
			t.Errorf("%s: %d invitation requests, want 1", who, n)
		}
	}
	s := storetest.SettlingOf(t, h.db, sent.InvitationID)
	lookups, settledSent, settledNot := s.Lookups, s.SettledSent, s.SettledNot
	if lookups != 2 || settledSent != 1 || settledNot != 1 {
		t.Errorf("ledger: %d settling lookups, %d settled as sent, %d settled as not sent; want 2, 1, 1", lookups, settledSent, settledNot)
	}
}

// A live worker whose provider call lasts longer than the dead-worker
// threshold (12 s against 8 s) is never taken for dead: its heartbeat is
// independent of its calls. The invitation is sent once, recorded once,
// and nothing is recovered or settled.
func TestSlowCallIsNotTakenForDead(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for a slow provider")
	}
	t.Parallel()
	h := newHarness(t, options{sim: simulator.Config{Latency: 12 * time.Second}, requestTimeout: time.Minute})
	acc := h.account(accountSpec{name: "slow"})
	h.targets(h.campaign(acc, ""), pid("slow-1"), pid("slow-2"))
	h.start(1)
	h.waitTerminal(60 * time.Second)
	checkExactlyOnce(t, h.db, h.sim)
	recovered := storetest.RecoveredWorkers(t, h.db)
	lookups := storetest.CountCalls(t, h.db, storetest.Calls{Actions: []store.Action{store.ActionLookup}})
	if recovered > 0 || lookups > 0 {
		t.Errorf("%d workers taken for dead, %d settling lookups; want none", recovered, lookups)
	}
}

// heldAndRetried reports whether logs has a worker's warning that
// recording an answer failed at its attempt-th try (or later): the answer
// is held and was retried while Postgres stayed away.
func heldAndRetried(logs string, attempt int) bool {
	for _, line := range strings.Split(logs, "\n") {
		if !strings.Contains(line, "recording the answer failed; keeping it and retrying") {
			continue
		}
		var e struct{ Attempt int }
		if json.Unmarshal([]byte(line), &e) == nil && e.Attempt >= attempt {
			return true
		}
	}
	return false
}
