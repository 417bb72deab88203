package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/outreach-dev/outreach/internal/testenv"
	"github.com/outreach-dev/outreach/provider"
	"github.com/outreach-dev/outreach/provider/simulator"
	"github.com/outreach-dev/outreach/store"
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
// and that the target holds that invitation's id.
func checkExactlyOnce(t *testing.T, ctx context.Context, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, sim *simulator.Simulator) {
	t.Helper()
	reqs, ids := inviteRequests(sim), sentIDs(sim)
	rows, err := q.Query(ctx, `SELECT a.provider_account_id, t.provider_id, t.status, coalesce(t.invitation_id, ''), coalesce(t.last_error, '')
		FROM targets t JOIN accounts a ON a.id = t.account_id ORDER BY t.id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var acc, pid, status, inv, reason string
		if err := rows.Scan(&acc, &pid, &status, &inv, &reason); err != nil {
			t.Fatal(err)
		}
		n++
		k := [2]string{acc, pid}
		if status != string(store.TargetSent) {
			t.Errorf("%s → %s: %s (%s), want sent", acc, pid, status, reason)
		}
		if reqs[k] != 1 {
			t.Errorf("%s → %s: %d invitation requests at the provider, want exactly 1", acc, pid, reqs[k])
		}
		if ids[k] == "" || inv != ids[k] {
			t.Errorf("%s → %s: invitation_id %q stored, the provider's is %q (%s)", acc, pid, inv, ids[k], reason)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("no targets")
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
		var n int
		if err := db.QueryRow(ctx, `SELECT count(*) FROM targets WHERE status = 'sent'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
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
	deadline := time.After(30 * time.Second)
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
	checkExactlyOnce(t, ctx, db, h.sim)
	var unknown int
	if err := db.QueryRow(ctx, `SELECT count(*) FROM sends WHERE outcome = 'unknown'`).Scan(&unknown); err != nil {
		t.Fatal(err)
	}
	if unknown > 0 {
		t.Errorf("%d ledger rows closed without their answer, want 0", unknown)
		rows, _ := db.Query(ctx, `SELECT id, action, coalesce(target_id, 0), coalesce(worker_id, 0), coalesce(detail, '') FROM sends WHERE outcome = 'unknown'`)
		for rows.Next() {
			var id, target, worker int64
			var action, detail string
			_ = rows.Scan(&id, &action, &target, &worker, &detail)
			t.Logf("send %d %s target %d worker %d: %q", id, action, target, worker, detail)
		}
		rows.Close()
	}
	if !strings.Contains(h.logs.String(), "answer recorded after retries") {
		t.Error("no answer was recorded after retries: the outage did not hit an answer in flight")
	}
	// The answers were kept, not recovered by asking the provider again.
	var lookups int
	if err := db.QueryRow(ctx, `SELECT count(*) FROM sends WHERE action = 'lookup'`).Scan(&lookups); err != nil {
		t.Fatal(err)
	}
	if lookups > 0 {
		t.Errorf("%d settling lookups, want 0: every answer should have been kept", lookups)
		rows, _ := db.Query(ctx, `SELECT id, target_id, action, outcome, coalesce(worker_id, 0), coalesce(detail, ''), reserved_at, window_at
			FROM sends WHERE target_id IN (SELECT target_id FROM sends WHERE action = 'lookup') ORDER BY id`)
		for rows.Next() {
			var id, target, worker int64
			var action, outcome, detail string
			var reserved, window time.Time
			_ = rows.Scan(&id, &target, &action, &outcome, &worker, &detail, &reserved, &window)
			t.Logf("send %d target %d %s %s worker %d %q reserved %s answered %s", id, target, action, outcome, worker, detail,
				reserved.Format("15:04:05.000"), window.Format("15:04:05.000"))
		}
		rows.Close()
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
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	for a := 0; a < nAccounts; a++ {
		name := fmt.Sprintf("kill-%d", a)
		var ids []string
		for i := 0; i < perAccount; i++ {
			ids = append(ids, pid(fmt.Sprintf("k-%d-%02d", a, i)))
		}
		if _, err := pool.Exec(ctx, `WITH a AS (INSERT INTO accounts (name, provider, provider_account_id, pacing) VALUES ($1, 'unipile', $1, 'unlimited') RETURNING id),
			c AS (INSERT INTO campaigns (name, account_id) SELECT $1, id FROM a RETURNING id)
			INSERT INTO targets (campaign_id, identifier) SELECT c.id, i FROM c, unnest($2::text[]) i`, name, ids); err != nil {
			t.Fatal(err)
		}
	}
	env := []string{"DATABASE_URL=" + dsn, "REDIS_URL=" + rs.URL, "UNIPILE_DSN=" + srv.URL,
		"UNIPILE_API_KEY=" + unipileKey, "PROVIDER_TIMEOUT=" + timeout.String(), "LOG_FORMAT=json", "LOG_LEVEL=info"}
	sched := startProcess(t, bin, "scheduler", env, "scheduler", "--horizon", "5s", "--poll", "250ms")
	victim := startProcess(t, bin, "worker-0", env, "worker", "--concurrency", "4")
	count := func(q string, args ...any) int {
		t.Helper()
		var n int
		if err := pool.QueryRow(ctx, q, args...).Scan(&n); err != nil {
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
			time.Sleep(50 * time.Millisecond)
		}
	}
	victimPID := victim.cmd.Process.Pid
	inFlight := `SELECT count(*) FROM sends s JOIN workers w ON w.id = s.worker_id
		WHERE s.outcome = 'in_flight' AND s.action = 'invite' AND w.pid = $1`
	// Several invitations in flight at the victim: some taken by the
	// provider, their answers on the way back, some not taken yet.
	waitUntil("invitations in flight at the victim", 60*time.Second, func() bool {
		n := count(inFlight, victimPID)
		taken := sim.SentCount() - count(`SELECT count(*) FROM targets WHERE status = 'sent'`)
		return n >= 3 && taken >= 1 && taken < n
	})
	if err := victim.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-victim.done
	victim.done <- nil
	var killedAt time.Time
	if err := pool.QueryRow(ctx, `SELECT now()`).Scan(&killedAt); err != nil {
		t.Fatal(err)
	}
	var victimID int64
	if err := pool.QueryRow(ctx, `SELECT id FROM workers WHERE pid = $1`, victimPID).Scan(&victimID); err != nil {
		t.Fatal(err)
	}
	orphans := count(`SELECT count(*) FROM sends WHERE worker_id = $1 AND outcome = 'in_flight' AND action = 'invite'`, victimID)
	t.Logf("killed worker %d with %d invitations in flight", victimID, orphans)
	// The worker that takes over starts after the kill.
	other := startProcess(t, bin, "worker-1", env, "worker", "--concurrency", "40")
	// Far less than the lease: only the heartbeat can recover them.
	waitUntil("every target to end", 120*time.Second, func() bool {
		return count(`SELECT count(*) FROM targets WHERE status NOT IN ('sent', 'skipped', 'failed')`) == 0
	})
	sched.stop(t, 20*time.Second)
	other.stop(t, 20*time.Second)

	checkExactlyOnce(t, ctx, pool, sim)
	// The mechanism: the victim was found dead by its heartbeat, each of
	// its orphans was settled by a lookup at the provider, well before the
	// lease, and nothing went through the lease's path.
	if n := count(`SELECT count(*) FROM workers WHERE id = $1 AND recovered_at IS NOT NULL AND stopped_at IS NULL`, victimID); n != 1 {
		t.Errorf("the victim's liveness row is not recovered")
	}
	if n := count(`SELECT count(*) FROM sends WHERE detail = 'worker stopped before recording the answer'`); n > 0 {
		t.Errorf("%d ledger rows closed by the lease's path, want 0", n)
	}
	if n := count(`SELECT count(*) FROM sends WHERE worker_id = $1 AND action = 'invite' AND (outcome = 'in_flight' OR settled_at IS NULL AND outcome = 'unknown')`, victimID); n > 0 {
		t.Errorf("%d orphaned invitations of the victim not settled", n)
	}
	settled := count(`SELECT count(*) FROM sends o WHERE o.worker_id = $1 AND o.action = 'invite' AND o.settled_at IS NOT NULL
		AND EXISTS (SELECT 1 FROM sends l WHERE l.target_id = o.target_id AND l.action = 'lookup' AND l.detail LIKE 'settle:%'
			AND l.reserved_at < o.reserved_at + make_interval(secs => $2))`, victimID, lease.Seconds())
	if settled != orphans || orphans < 3 {
		t.Errorf("%d of the victim's %d orphans settled by a lookup before the lease, want all (at least 3)", settled, orphans)
	}
	wentOut := count(`SELECT count(*) FROM sends WHERE worker_id = $1 AND action = 'invite' AND outcome = 'sent' AND settled_at IS NOT NULL`, victimID)
	var detected, recovery float64
	if err := pool.QueryRow(ctx, `SELECT extract(epoch FROM max(w.recovered_at) - $2::timestamptz),
			extract(epoch FROM min(l.reserved_at) - $2::timestamptz) FROM workers w, sends l
		WHERE w.id = $1 AND l.action = 'lookup' AND l.detail LIKE 'settle:%'`, victimID, killedAt).Scan(&detected, &recovery); err != nil {
		t.Fatal(err)
	}
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
	if _, err := h.db.Exec(ctx, `INSERT INTO sends (account_id, target_id, action, reserved_at, window_at, outcome, detail)
		SELECT account_id, id, 'invite', now() - interval '10 seconds', now() - interval '9 seconds', 'unknown',
			'worker 1 stopped heartbeating before recording the answer' FROM targets`); err != nil {
		t.Fatal(err)
	}
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
	var lookups, settledSent, settledNot int
	if err := h.db.QueryRow(ctx, `SELECT
			(SELECT count(*) FROM sends WHERE action = 'lookup' AND detail LIKE 'settle:%'),
			(SELECT count(*) FROM sends WHERE action = 'invite' AND outcome = 'sent' AND settled_at IS NOT NULL AND invitation_id = $1),
			(SELECT count(*) FROM sends WHERE action = 'invite' AND outcome = 'unknown' AND settled_at IS NOT NULL)`,
		sent.InvitationID).Scan(&lookups, &settledSent, &settledNot); err != nil {
		t.Fatal(err)
	}
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
	checkExactlyOnce(t, h.ctx, h.db, h.sim)
	var recovered, lookups int
	if err := h.db.QueryRow(h.ctx, `SELECT (SELECT count(*) FROM workers WHERE recovered_at IS NOT NULL),
		(SELECT count(*) FROM sends WHERE action = 'lookup')`).Scan(&recovered, &lookups); err != nil {
		t.Fatal(err)
	}
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
