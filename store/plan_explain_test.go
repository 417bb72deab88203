package store_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/outreach-dev/outreach/internal/testenv"
	"github.com/outreach-dev/outreach/store"
)

// TestAccountsWithWorkReadsInFlightOnce: the planner's first query counts
// each account's queued and sending targets. Targets analysed while little
// was in flight (after a quiet spell, before autoanalyze catches up) made
// the count of every in-flight target, grouped by account, look like one
// row, and Postgres ran it again for each account: 100 accounts with 20
// queued each read 100,000 index entries a tick instead of 2,000. Run with
// those statistics, the query must read each in-flight target once, and
// still count them right.
func TestAccountsWithWorkReadsInFlightOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, dsn := testenv.Store(t)
	db := testenv.DB(t, dsn)
	const accounts, queuedEach = 100, 20
	for _, sql := range []string{
		// The statistics stay as the test leaves them.
		`ALTER TABLE targets SET (autovacuum_enabled = off)`,
		`INSERT INTO accounts (name, provider, provider_account_id, pacing)
			SELECT 'acct-' || i, 'unipile', 'ua-' || i, 'unlimited' FROM generate_series(1, ` + strconv.Itoa(accounts) + `) i`,
		`INSERT INTO campaigns (name, account_id) SELECT 'camp-' || id, id FROM accounts`,
		// One due target each, and nothing in flight, when targets is analysed.
		`INSERT INTO targets (campaign_id, account_id, identifier, normalized_identifier, provider_id, next_attempt_at)
			SELECT c.id, c.account_id, 'due-' || c.id, 'due-' || c.id, 'ACo-due-' || c.id, now() - interval '1 minute'
			FROM campaigns c`,
		`ANALYZE targets`,
		`INSERT INTO targets (campaign_id, account_id, identifier, normalized_identifier, provider_id, status, queued_at)
			SELECT c.id, c.account_id, 'q-' || c.id || '-' || j, 'q-' || c.id || '-' || j, 'ACo-q-' || c.id || '-' || j, 'queued', now()
			FROM campaigns c, generate_series(1, ` + strconv.Itoa(queuedEach) + `) j`,
	} {
		if _, err := db.Exec(ctx, sql); err != nil {
			t.Fatalf("%v\n%s", err, sql)
		}
	}

	work, statements, admin := accountsWithWork(t, dsn, accounts, "t.status IN ('queued', 'sending')")
	for _, w := range work {
		if w.QueuedInvites != queuedEach || w.QueuedLookups != 0 || w.SendingInvites != 0 {
			t.Fatalf("account %d: queued invites %d, lookups %d, sending %d; want %d, 0, 0",
				w.Account.ID, w.QueuedInvites, w.QueuedLookups, w.SendingInvites, queuedEach)
		}
	}

	for _, s := range statements {
		plan := explainAnalyze(t, admin, s)
		read := 0.0
		plan.walk(func(p planNode) {
			if p.IndexName == "targets_in_flight" {
				read += p.ActualRows * p.ActualLoops
			}
		})
		if read == 0 || read > accounts*queuedEach {
			t.Errorf("the in-flight count read %.0f rows of targets_in_flight for %d targets in flight; want each once:\n%s\n%s",
				read, accounts*queuedEach, oneLine(s.sql), plan.render())
		}
	}
}

// TestAccountsWithWorkProbesByIndex: whether a campaign or a sender has a
// due target is a LIMIT 1 probe. With the statistics of an ordinary pool
// campaign (thousands of unassigned due targets when targets was last
// analysed), Postgres's generic plan (what a prepared statement switches to
// after five runs) took the probe for cheap as a sequential scan that stops
// at its first match, and ran it for every campaign, including those with
// no match, which read the whole table each: one read of targets per
// campaign per tick. Every probe must go by its index, in the custom plan
// and in the generic one.
func TestAccountsWithWorkProbesByIndex(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, dsn := testenv.Store(t)
	db := testenv.DB(t, dsn)
	const accounts = 50
	for _, sql := range []string{
		`ALTER TABLE targets SET (autovacuum_enabled = off)`,
		`INSERT INTO accounts (name, provider, provider_account_id, pacing)
			SELECT 'acct-' || i, 'unipile', 'ua-' || i, 'unlimited' FROM generate_series(1, ` + strconv.Itoa(accounts) + `) i`,
		// A campaign of each account's own, done: no target waits.
		`INSERT INTO campaigns (name, account_id) SELECT 'own-' || id, id FROM accounts`,
	} {
		if _, err := db.Exec(ctx, sql); err != nil {
			t.Fatalf("%v\n%s", err, sql)
		}
	}
	var ids []int64
	for i := int64(1); i <= accounts; i++ {
		ids = append(ids, i)
	}
	pool, err := st.CreatePoolCampaign(ctx, store.Campaign{Name: "pool"}, ids)
	if err != nil {
		t.Fatal(err)
	}
	// The pool's targets: unassigned, resolved or not, due; new ones too.
	for _, sql := range []string{
		`INSERT INTO targets (campaign_id, identifier, normalized_identifier, provider_id, next_attempt_at)
			SELECT $1, 'pool-' || j, 'pool-' || j, CASE WHEN j % 4 <> 0 THEN 'ACo-pool-' || j END, now() - interval '1 minute'
			FROM generate_series(1, 6000) j`,
		`INSERT INTO targets (campaign_id, identifier) SELECT $1, 'new-' || j FROM generate_series(1, 2000) j`,
		`ANALYZE targets`,
	} {
		args := []any{}
		if strings.Contains(sql, "$1") {
			args = append(args, pool)
		}
		if _, err := db.Exec(ctx, sql, args...); err != nil {
			t.Fatalf("%v\n%s", err, sql)
		}
	}

	_, statements, admin := accountsWithWork(t, dsn, accounts, "t.account_id IS NULL")
	for _, s := range statements {
		for _, generic := range []bool{false, true} {
			plan := explainPlan(t, admin, s, generic)
			if seq := plan.seqScans("targets"); len(seq) > 0 {
				t.Errorf("AccountsWithWork (generic plan %v) scans targets sequentially:\n%s", generic, plan.render())
			}
			for _, index := range []string{"targets_pool_due", "targets_due_sender", "targets_new_sender"} {
				if !plan.usesIndex(index) {
					t.Errorf("AccountsWithWork (generic plan %v) does not use %s:\n%s", generic, index, plan.render())
				}
			}
		}
	}
}

// accountsWithWork runs AccountsWithWork on a pool that records its
// statements and checks it found want accounts; it returns what it found,
// its statements that contain match (there must be one), and a connection
// to explain them on.
func accountsWithWork(t *testing.T, dsn string, want int, match string) ([]*store.AccountWork, []statement, *pgx.Conn) {
	t.Helper()
	ctx := context.Background()
	pool, rec := recordingPool(t, dsn)
	now := time.Now()
	work, err := store.New(pool).AccountsWithWork(ctx, now, now.Add(time.Minute), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(work) != want {
		t.Fatalf("AccountsWithWork found %d accounts with work; want %d", len(work), want)
	}
	var matched []statement
	for _, s := range rec.statements() {
		if strings.Contains(s.sql, match) {
			matched = append(matched, s)
		}
	}
	if len(matched) == 0 {
		t.Fatalf("no statement of AccountsWithWork contains %q; update this test to the store's SQL", match)
	}
	admin, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close(context.Background()) })
	return work, matched, admin
}
