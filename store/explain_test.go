package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/outreach-dev/outreach/internal/testenv"
	"github.com/outreach-dev/outreach/provider"
	"github.com/outreach-dev/outreach/store"
)

// TestExplainAtScale loads a million targets and a million ledger rows,
// runs the store's real methods while recording every statement they send
// (with its arguments), then EXPLAINs each statement that touches targets
// or sends, twice: with the arguments, as pgx runs it (a custom plan), and
// as a generic plan (what a prepared statement may switch to after a few
// executions). No plan may read targets, sends or people (200,000 cached
// profiles) with a sequential scan,
// and the hot paths must use the index built for them. Its subtest
// "console" checks the operator console's queries on the same load
// (consoleExplain): two million rows are loaded once for both.
func TestExplainAtScale(t *testing.T) {
	if testing.Short() {
		t.Skip("loads two million rows; skipped with -short")
	}
	t.Parallel()
	ctx := context.Background()
	dsn := testenv.DatabaseURL(t)
	start := time.Now()

	admin, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	explainLoad(t, admin)
	t.Logf("loaded 1,000,000 targets and 1,000,000 sends in %s", time.Since(start).Round(time.Millisecond))

	// The store, on a pool that records what it sends.
	pool, rec := recordingPool(t, dsn)
	st := store.New(pool)
	now := time.Now()

	rec.op("AccountsWithWork")
	work, err := st.AccountsWithWork(ctx, now, now.Add(time.Minute), nil)
	if err != nil || len(work) == 0 {
		t.Fatalf("AccountsWithWork = %d accounts, %v; want some", len(work), err)
	}
	rec.op("PrepareTargets")
	ps, err := st.PrepareTargets(ctx, 100, func(_ provider.Name, id string) store.Normalized {
		// Half resolve at once (as a member id would), half need a lookup.
		if len(id)%2 == 0 {
			return store.Normalized{Identifier: id, ProviderID: "member:" + id}
		}
		return store.Normalized{Identifier: id}
	})
	if err != nil || ps.Seen == 0 {
		t.Fatalf("PrepareTargets = %+v, %v; want some targets seen", ps, err)
	}
	keep := func(store.Claimed) store.Prepared { return store.Prepared{Message: "hello"} }
	rec.op("ClaimTargets(lookup)")
	lookups, err := st.ClaimTargets(ctx, 1, true, 50, now, now, keep)
	if err != nil || len(lookups) == 0 {
		t.Fatalf("ClaimTargets(lookup) = %d, %v; want some", len(lookups), err)
	}
	rec.op("ClaimTargets(invite)")
	invites, err := st.ClaimTargets(ctx, 1, false, 50, now, now, keep)
	if err != nil || len(invites) == 0 {
		t.Fatalf("ClaimTargets(invite) = %d, %v; want some", len(invites), err)
	}
	rec.op("ClaimTargetsBatch(invite)")
	if _, err := st.ClaimTargetsBatch(ctx, false, []store.ClaimWant{{AccountID: 2, N: 20}, {AccountID: 3, N: 20}}, now, now, keep); err != nil {
		t.Fatalf("ClaimTargetsBatch(invite): %v", err)
	}
	rec.op("ClaimAndPrepare")
	if _, _, err := st.ClaimAndPrepare(ctx, []store.ClaimWant{{AccountID: 4, N: 20}, {AccountID: 5, N: 20}}, now, now,
		func(p provider.Name, id string) store.Normalized {
			return store.Normalized{Identifier: id, ProviderID: id}
		}, keep); err != nil {
		t.Fatalf("ClaimAndPrepare: %v", err)
	}
	// Account 1's limits are full (the ledger has ~45 invites a day): Begin
	// runs every per-limit window query, then hands the target back.
	rec.op("Begin(invite)")
	_, err = st.Begin(ctx, store.BeginRequest{TargetID: invites[0].ID, Action: store.ActionInvite, Now: now,
		Lease: time.Minute, RequestTimeout: 30 * time.Second, HoldFor: time.Minute})
	var nn *store.NotNowError
	if !errors.As(err, &nn) || !strings.Contains(nn.Reason, "limit") {
		t.Fatalf("Begin(invite) on a full account = %v; want a NotNowError for a limit", err)
	}
	// A lookup of the same account has room (its provider's default
	// lookup limit, 100 a day; the ledger has 45 in the last day) once the
	// default gap after its latest lookup (at now) is over: the whole
	// reservation, then Finish.
	rec.op("Begin(lookup)")
	later := now.Add(2 * time.Minute)
	at, err := st.Begin(ctx, store.BeginRequest{TargetID: lookups[0].ID, Action: store.ActionLookup, Now: later,
		Lease: time.Minute, RequestTimeout: 30 * time.Second, HoldFor: time.Minute})
	if err != nil {
		t.Fatalf("Begin(lookup): %v", err)
	}
	rec.op("Finish(lookup)")
	if err := st.Finish(ctx, store.Finish{SendID: at.SendID, TargetID: at.Target.ID, AccountID: at.Account.ID, Now: later,
		Outcome: store.OutcomeResolved, TargetStatus: store.TargetPending, NextAttemptAt: later,
		Person: &store.Person{Provider: "unipile", NormalizedIdentifier: at.Target.NormalizedIdentifier, ProviderID: "ACoNEW1"}}); err != nil {
		t.Fatalf("Finish(lookup): %v", err)
	}
	rec.op("QueuedTargets")
	if _, err := st.QueuedTargets(ctx, now, now, 0, 100); err != nil {
		t.Fatal(err)
	}
	rec.op("ExpireOrphanSends")
	if _, err := st.ExpireOrphanSends(ctx, now, time.Minute, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	rec.op("CountRefusals")
	for _, distinct := range []bool{false, true} {
		if _, err := st.CountRefusals(ctx, 1, []string{"cannot_resend_yet"}, 429, now.Add(-time.Hour), distinct); err != nil {
			t.Fatal(err)
		}
	}
	rec.op("ClaimDuePolls")
	if _, err := st.ClaimDuePolls(ctx, now, time.Minute, 50); err != nil {
		t.Fatal(err)
	}
	rec.op("AssignPoolTargets")
	if _, err := st.AssignPoolTargets(ctx, false, []store.SenderRoom{{AccountID: 1, N: 10}, {AccountID: 2, N: 10}}, now); err != nil {
		t.Fatal(err)
	}
	rec.op("PlanWithdrawals")
	if _, err := st.PlanWithdrawals(ctx, now, 50, time.Minute, []provider.Name{"unipile"}); err != nil {
		t.Fatal(err)
	}
	rec.op("RecordAcceptances")
	if _, err := st.RecordAcceptances(ctx, "unipile", "ua-1", []store.Acceptance{{ProviderID: "ACoAA0000103"},
		{PublicID: "person-0000207"}}, store.AcceptedByPoll, now); err != nil {
		t.Fatal(err)
	}
	rec.op("HoldWithdrawnPeople")
	if _, err := st.HoldWithdrawnPeople(ctx, now); err != nil {
		t.Fatal(err)
	}
	rec.op("ReleaseStoppedSenders")
	if _, err := st.ReleaseStoppedSenders(ctx, now); err != nil {
		t.Fatal(err)
	}
	rec.op("RecoverDeadWorkers")
	if _, _, err := st.RecoverDeadWorkers(ctx, now, time.Minute, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	rec.op("AddDNC")
	if _, err := st.AddDNC(ctx, store.NewDNCEntry{Provider: "unipile", Identifier: "https://www.linkedin.com/in/person-0000300/",
		NormalizedIdentifier: "person-0000300", Reason: "asked"}); err != nil {
		t.Fatal(err)
	}
	rec.op("FoldCampaignCounts")
	if _, err := st.FoldCampaignCounts(ctx); err != nil {
		t.Fatal(err)
	}
	rec.op("PlanSentListReads")
	if _, err := st.PlanSentListReads(ctx, now, time.Minute, []provider.Name{"unipile"}); err != nil {
		t.Fatal(err)
	}
	rec.op("EventsAfter")
	if _, err := st.EventsAfter(ctx, store.EventCursor{}, store.EventFilter{CampaignID: 3}, 100); err != nil {
		t.Fatal(err)
	}
	// What `outreach limits ACCOUNT` reads.
	rec.op("AccountProgress(one)")
	if _, err := st.AccountProgress(ctx, "acct-7"); err != nil {
		t.Fatal(err)
	}
	rec.op("Requeue")
	if err := st.Requeue(ctx, []int64{invites[2].ID}, now); err != nil {
		t.Fatal(err)
	}
	// What an operator asks: an account's invitations in the last 7 days.
	rec.op("7-day count")
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM sends WHERE account_id = $1 AND action = 'invite'
		AND window_at > now() - interval '7 days'`, 1).Scan(&n); err != nil || n == 0 {
		t.Fatalf("7-day count = %d, %v; want some", n, err)
	}

	// The statements that must use particular indexes.
	wantIndex := []struct {
		op, sql, index string
	}{
		{"AccountsWithWork", "t.account_id = cs.account_id", "targets_due_sender"},
		{"AccountsWithWork", "t.account_id IS NULL", "targets_pool_due"},
		{"AccountsWithWork", "t.status IN ('queued', 'sending')", "targets_in_flight"},
		{"AccountsWithWork", "s.window_at > $5::timestamptz - make_interval(secs => x.per)", "sends_window"},
		{"AccountsWithWork", "action = x.action ORDER BY window_at DESC LIMIT 1", "sends_window"},
		{"PrepareTargets", "t.normalized_identifier IS NULL", "targets_new"},
		{"ClaimTargets(lookup)", "FOR UPDATE SKIP LOCKED", "targets_due_sender"},
		{"ClaimTargets(invite)", "FOR UPDATE SKIP LOCKED", "targets_due_sender"},
		{"ClaimTargetsBatch(invite)", "FOR UPDATE SKIP LOCKED", "targets_due_sender"},
		{"ClaimAndPrepare", "t0.normalized_identifier IS NOT NULL", "targets_due_sender"},
		{"ClaimAndPrepare", "t0.normalized_identifier IS NULL", "targets_new_sender"},
		{"AccountsWithWork", "t.normalized_identifier IS NULL", "targets_new_sender"},
		{"Begin(invite)", "ORDER BY window_at DESC OFFSET l.off LIMIT 1", "sends_window"},
		{"Begin(lookup)", "ORDER BY window_at DESC OFFSET l.off LIMIT 1", "sends_window"},
		{"Begin(lookup)", "AND action = $2 ORDER BY window_at DESC LIMIT 1", "sends_window"},
		{"Finish(lookup)", "AND t.id <> ALL($3::bigint[])", "targets_one_per_person"},
		{"ClaimDuePolls", "t.accepted_at IS NULL", "targets_awaiting_acceptance"},
		{"AssignPoolTargets", "SELECT EXISTS", "targets_pool_due"},
		{"PlanWithdrawals", "t.withdrawn_at IS NULL", "targets_withdrawable"},
		{"AccountProgress(one)", "outcome = 'sent'", "sends_window"},
		{"ReleaseStoppedSenders", "x.normalized_identifier IS NOT NULL", "targets_due_sender"},
		{"ReleaseStoppedSenders", "x.normalized_identifier IS NULL", "targets_new_sender"},
		{"7-day count", "interval '7 days'", "sends_window"},
	}
	found := make([]bool, len(wantIndex))
	explained := 0
	for _, s := range rec.statements() {
		if !touchesHotTables.MatchString(s.sql) {
			continue
		}
		explained++
		for _, generic := range []bool{false, true} {
			plan := explainPlan(t, admin, s, generic)
			kind := "custom"
			if generic {
				kind = "generic"
			}
			t.Logf("%s (%s plan):\n%s\n%s", s.op, kind, oneLine(s.sql), plan.render())
			for _, seq := range plan.seqScans("targets", "sends", "people") {
				t.Errorf("%s (%s plan): sequential scan on %s in\n%s", s.op, kind, seq, oneLine(s.sql))
			}
			if dueCondMissing(plan) {
				t.Logf("NOTE: %s (%s plan): targets_due is scanned without its (provider_id IS NULL) column; "+
					"the planner turns `(provider_id IS NULL) = false` into `provider_id IS NOT NULL`, which does not "+
					"match the index expression, so every due target of the campaign is read and filtered", s.op, kind)
			}
			for i, w := range wantIndex {
				if s.op != w.op || !strings.Contains(s.sql, w.sql) {
					continue
				}
				found[i] = true
				if !plan.usesIndex(w.index) {
					t.Errorf("%s (%s plan): want index %s in\n%s\n%s", s.op, kind, w.index, oneLine(s.sql), plan.render())
				}
			}
		}
	}
	for i, w := range wantIndex {
		if !found[i] {
			t.Errorf("%s: no statement containing %q was recorded; update this test to the store's SQL", w.op, w.sql)
		}
	}
	t.Logf("explained %d statements; whole test %s", explained, time.Since(start).Round(time.Millisecond))
	t.Run("console", func(t *testing.T) { consoleExplain(t, dsn, admin) })
}

var touchesHotTables = regexp.MustCompile(`(?i)\b(from|join|update|into)\s+(targets|sends)\b`)

// explainLoad fills the database: 200 accounts with limits 25 per day and
// 100 per 7 days (account 1 also a minimum gap), 20 campaigns of the first 10 accounts, a million targets
// (93% sent, 1% each failed, skipped, queued and new, 3% pending of which a
// third resolved, due times spread 17 hours either side of now), and a
// million ledger rows, 5,000 per account over three months, and 200,000
// cached people. The secondary
// indexes are dropped during the load and rebuilt from their own
// definitions, which is much faster than maintaining them row by row.
func explainLoad(t *testing.T, c *pgx.Conn) {
	t.Helper()
	ctx := context.Background()
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := c.Exec(ctx, sql, args...); err != nil {
			t.Fatalf("%v\n%s", err, sql)
		}
	}
	exec(`SET synchronous_commit = off`)
	exec(`SET maintenance_work_mem = '256MB'`)
	// Skips the per-row trigger and foreign key checks; needs a superuser,
	// and the load is only slower without it.
	_, _ = c.Exec(ctx, `SET session_replication_role = replica`)

	rows, err := c.Query(ctx, `SELECT indexname, indexdef FROM pg_indexes i
		WHERE schemaname = current_schema() AND tablename IN ('targets', 'sends')
		AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)`)
	if err != nil {
		t.Fatal(err)
	}
	defs, err := pgx.CollectRows(rows, pgx.RowToStructByPos[struct{ Name, Def string }])
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range defs {
		exec(`DROP INDEX ` + pgx.Identifier{d.Name}.Sanitize())
	}

	exec(`INSERT INTO accounts (name, provider, provider_account_id)
		SELECT 'acct-' || i, 'unipile', 'ua-' || i FROM generate_series(1, 200) i`)
	exec(`INSERT INTO account_limits (account_id, action, max_count, per)
		SELECT id, 'invite', 25, interval '1 day' FROM accounts
		UNION ALL SELECT id, 'invite', 100, interval '7 days' FROM accounts`)
	exec(`UPDATE accounts SET min_gap = interval '1 minute' WHERE id = 1`)
	exec(`INSERT INTO campaigns (name, account_id, status)
		SELECT 'camp-' || i, (i + 1) / 2, CASE WHEN i % 7 = 0 THEN 'paused' ELSE 'active' END
		FROM generate_series(1, 20) i`)
	exec(`INSERT INTO campaign_senders (campaign_id, account_id) SELECT id, account_id FROM campaigns`) // the trigger is off
	// In campaign order, so the unique indexes grow at their end.
	exec(`INSERT INTO targets (campaign_id, account_id, identifier, normalized_identifier, provider_id, status,
			next_attempt_at, finished_at)
		SELECT c, (c + 1) / 2, 'https://www.linkedin.com/in/person-' || lpad(i::text, 7, '0') || '/',
			CASE WHEN k = 0 THEN NULL ELSE 'person-' || lpad(i::text, 7, '0') END,
			CASE WHEN k IN (0, 1, 2) THEN NULL ELSE 'ACoAA' || lpad(i::text, 7, '0') END,
			CASE WHEN k < 4 THEN 'pending' WHEN k = 4 THEN 'queued' WHEN k = 5 THEN 'failed'
				WHEN k = 6 THEN 'skipped' ELSE 'sent' END,
			now() + ((i % 2000) - 1000) * interval '1 minute',
			CASE WHEN k >= 5 THEN now() - (i % 1000) * interval '1 minute' END
		FROM (SELECT i, (i - 1) / 50000 + 1 AS c, i % 100 AS k FROM generate_series(1, 1000000) i) s`)
	exec(`INSERT INTO sends (account_id, action, reserved_at, window_at, outcome, error_type)
		SELECT a, CASE WHEN j <= 1000 THEN 'lookup' ELSE 'invite' END, w - interval '1 second', w,
			CASE WHEN j % 10 = 0 THEN 'refused' ELSE 'sent' END,
			CASE WHEN j % 10 = 0 THEN 'cannot_resend_yet' END
		FROM generate_series(1, 200) a, generate_series(1, 5000) j,
			LATERAL (SELECT now() - ((5000 - j) % 4000) * interval '32 minutes' AS w) x`)
	// The resolve cache: every fifth person.
	exec(`INSERT INTO people (provider, normalized_identifier, provider_id, first_name, last_name, looked_up_by)
		SELECT 'unipile', 'person-' || lpad(i::text, 7, '0'), 'ACoAA' || lpad(i::text, 7, '0'), 'Ann', 'Lee', (i - 1) / 100000 + 1
		FROM generate_series(5, 1000000, 5) i`)
	for _, d := range defs {
		exec(d.Def)
	}
	exec(`RESET session_replication_role`)
	exec(`ANALYZE`)
	var nt, ns int64
	if err := c.QueryRow(ctx, `SELECT (SELECT count(*) FROM targets), (SELECT count(*) FROM sends)`).Scan(&nt, &ns); err != nil {
		t.Fatal(err)
	}
	if nt != 1_000_000 || ns != 1_000_000 {
		t.Fatalf("loaded %d targets and %d sends; want a million each", nt, ns)
	}
}

// recordingPool is a pool on dsn whose statements rec records, closed when
// the test ends.
func recordingPool(t *testing.T, dsn string) (*pgxpool.Pool, *statementRecorder) {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	rec := &statementRecorder{}
	cfg.ConnConfig.Tracer = rec
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool, rec
}

// statement is one SQL statement a store method sent, with its arguments.
type statement struct {
	op   string
	sql  string
	args []any
}

// statementRecorder is a pgx tracer that keeps every statement sent,
// labelled with the store method being exercised.
type statementRecorder struct {
	mu      sync.Mutex
	current string
	list    []statement
}

func (r *statementRecorder) op(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.current = name
}

func (r *statementRecorder) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.list = append(r.list, statement{op: r.current, sql: d.SQL, args: append([]any(nil), d.Args...)})
	return ctx
}

func (r *statementRecorder) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (r *statementRecorder) statements() []statement {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]statement(nil), r.list...)
}

// planNode is one node of EXPLAIN (FORMAT JSON) output.
type planNode struct {
	NodeType     string `json:"Node Type"`
	Relationship string `json:"Parent Relationship"`
	RelationName string `json:"Relation Name"`
	Alias        string `json:"Alias"`
	IndexName    string `json:"Index Name"`
	IndexCond    string `json:"Index Cond"`
	RecheckCond  string `json:"Recheck Cond"`
	Filter       string `json:"Filter"`
	// ActualRows and ActualLoops are read with EXPLAIN ANALYZE only: rows
	// per loop, and loops.
	ActualRows  float64    `json:"Actual Rows"`
	ActualLoops float64    `json:"Actual Loops"`
	Plans       []planNode `json:"Plans"`
}

// explainPlan explains s: with its arguments as pgx sends them (Postgres
// plans with the values, a custom plan), or, when generic, as a prepared
// statement forced to its generic plan (the values unknown).
func explainPlan(t *testing.T, c *pgx.Conn, s statement, generic bool) planNode {
	t.Helper()
	ctx := context.Background()
	var out []byte
	if !generic {
		if err := c.QueryRow(ctx, "EXPLAIN (FORMAT JSON) "+s.sql, s.args...).Scan(&out); err != nil {
			t.Fatalf("explain %s: %v\n%s", s.op, err, s.sql)
		}
	} else {
		if _, err := c.Exec(ctx, "PREPARE explain_generic AS "+s.sql); err != nil {
			t.Fatalf("prepare %s: %v\n%s", s.op, err, s.sql)
		}
		nulls := strings.TrimSuffix(strings.Repeat("NULL, ", len(s.args)), ", ")
		exec := "EXECUTE explain_generic"
		if nulls != "" {
			exec += "(" + nulls + ")"
		}
		_, err := c.Exec(ctx, "SET plan_cache_mode = force_generic_plan")
		if err == nil {
			err = c.QueryRow(ctx, "EXPLAIN (FORMAT JSON) "+exec, pgx.QueryExecModeSimpleProtocol).Scan(&out)
		}
		_, _ = c.Exec(ctx, "RESET plan_cache_mode")
		_, _ = c.Exec(ctx, "DEALLOCATE explain_generic")
		if err != nil {
			t.Fatalf("explain generic %s: %v\n%s", s.op, err, s.sql)
		}
	}
	return parsePlan(t, s, out)
}

// explainAnalyze runs s with its arguments under EXPLAIN ANALYZE: the plan
// with the rows each node read (ActualRows, ActualLoops).
func explainAnalyze(t *testing.T, c *pgx.Conn, s statement) planNode {
	t.Helper()
	var out []byte
	if err := c.QueryRow(context.Background(), "EXPLAIN (ANALYZE, FORMAT JSON) "+s.sql, s.args...).Scan(&out); err != nil {
		t.Fatalf("explain analyze %s: %v\n%s", s.op, err, s.sql)
	}
	return parsePlan(t, s, out)
}

func parsePlan(t *testing.T, s statement, out []byte) planNode {
	t.Helper()
	var doc []struct {
		Plan planNode `json:"Plan"`
	}
	if err := json.Unmarshal(out, &doc); err != nil || len(doc) != 1 {
		t.Fatalf("explain %s: unexpected output %s (%v)", s.op, out, err)
	}
	return doc[0].Plan
}

func (n planNode) walk(fn func(planNode)) {
	fn(n)
	for _, c := range n.Plans {
		c.walk(fn)
	}
}

// seqScans returns the tables among tables that the plan reads sequentially.
func (n planNode) seqScans(tables ...string) []string {
	var out []string
	n.walk(func(p planNode) {
		if p.NodeType != "Seq Scan" {
			return
		}
		for _, tb := range tables {
			if p.RelationName == tb {
				out = append(out, tb)
			}
		}
	})
	return out
}

// dueCondMissing reports whether the plan scans targets_due without a
// condition on its second column, (provider_id IS NULL).
func dueCondMissing(n planNode) bool {
	var missing bool
	n.walk(func(p planNode) {
		if p.IndexName == "targets_due" && !strings.Contains(p.IndexCond, "provider_id IS NULL") {
			missing = true
		}
	})
	return missing
}

func (n planNode) usesIndex(name string) bool {
	var ok bool
	n.walk(func(p planNode) { ok = ok || p.IndexName == name })
	return ok
}

// render prints the plan as an indented tree, one node a line.
func (n planNode) render() string {
	var b strings.Builder
	var rec func(p planNode, depth int)
	rec = func(p planNode, depth int) {
		fmt.Fprintf(&b, "%s%s", strings.Repeat("  ", depth), p.NodeType)
		if p.Relationship == "InitPlan" || p.Relationship == "SubPlan" {
			fmt.Fprintf(&b, " [%s]", p.Relationship)
		}
		if p.IndexName != "" {
			fmt.Fprintf(&b, " using %s", p.IndexName)
		}
		if p.RelationName != "" {
			fmt.Fprintf(&b, " on %s %s", p.RelationName, p.Alias)
		}
		for _, kv := range [][2]string{{"index cond", p.IndexCond}, {"recheck", p.RecheckCond}, {"filter", p.Filter}} {
			if kv[1] != "" {
				fmt.Fprintf(&b, " (%s: %s)", kv[0], kv[1])
			}
		}
		b.WriteByte('\n')
		for _, c := range p.Plans {
			rec(c, depth+1)
		}
	}
	rec(n, 0)
	return b.String()
}

var spaces = regexp.MustCompile(`\s+`)

func oneLine(sql string) string { return spaces.ReplaceAllString(strings.TrimSpace(sql), " ") }
