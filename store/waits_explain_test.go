package store_test

import (
	"context"
	"regexp"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/outreach-dev/outreach/internal/testenv"
	"github.com/outreach-dev/outreach/report"
	"github.com/outreach-dev/outreach/store"
)

// TestTargetWaitsExplain loads 400,000 targets (40 campaigns of 20
// accounts, a tenth of them waiting) and checks that reading target_waits
// for a campaign or an account (through its campaigns), the status report's queries over it, and
// resume's clearing of handed-back targets use indexes, never a sequential
// scan of targets, with the values and as generic plans.
func TestTargetWaitsExplain(t *testing.T) {
	if testing.Short() {
		t.Skip("loads 400,000 targets; skipped with -short")
	}
	t.Parallel()
	ctx := context.Background()
	dsn := testenv.DatabaseURL(t)
	admin, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	for _, sql := range []string{
		`SET synchronous_commit = off`,
		`SET session_replication_role = replica`, // no per-row triggers: a faster load
		`INSERT INTO accounts (name, provider, provider_account_id, timezone)
			SELECT 'acct-' || i, 'unipile', 'ua-' || i, 'Europe/Paris' FROM generate_series(1, 20) i`,
		`INSERT INTO campaigns (name, account_id) SELECT 'camp-' || i, (i + 1) / 2 FROM generate_series(1, 40) i`,
		`INSERT INTO targets (campaign_id, account_id, identifier, normalized_identifier, provider_id, status, next_attempt_at,
				error_type, wait_reason)
			SELECT c, (c + 1) / 2, 'p' || i, 'p' || i, CASE WHEN k = 1 THEN NULL ELSE 'ACoAA' || i END,
				CASE WHEN k < 8 THEN 'pending' WHEN k = 8 THEN 'queued' WHEN k = 9 THEN 'sending' ELSE 'sent' END,
				now() + ((i % 200) - 100) * interval '1 minute',
				CASE WHEN k = 2 THEN 'cannot_resend_yet' END, CASE WHEN k = 3 THEN 'outside working hours' END
			FROM (SELECT i, (i - 1) / 10000 + 1 AS c, i % 100 AS k FROM generate_series(1, 400000) i) s`,
		`INSERT INTO account_waits (account_id, action, kind, reason, until)
			SELECT id, 'invite', 'hours', 'outside working hours', now() + interval '1 hour' FROM accounts WHERE id % 2 = 0`,
		`RESET session_replication_role`,
		`ANALYZE`,
	} {
		if _, err := admin.Exec(ctx, sql); err != nil {
			t.Fatalf("%v\n%s", err, sql)
		}
	}

	pool, rec := recordingPool(t, dsn)
	st := store.New(pool)

	rec.op("campaign's waits")
	rows, err := pool.Query(ctx, `SELECT target_id, wait, reason, until, until_local FROM target_waits
		WHERE campaign_id = $1 ORDER BY until LIMIT 20`, int64(7))
	if err != nil {
		t.Fatal(err)
	}
	rows.Close()
	rec.op("account's waits")
	rows, err = pool.Query(ctx, `SELECT wait, count(*) FROM target_waits
		WHERE campaign_id IN (SELECT id FROM campaigns WHERE account_id = $1) GROUP BY 1`, int64(4))
	if err != nil {
		t.Fatal(err)
	}
	rows.Close()
	rec.op("TargetWait")
	if _, err := st.TargetWait(ctx, 12301); err != nil {
		t.Fatal(err)
	}
	rec.op("report.Campaigns")
	cs, err := report.Campaigns(ctx, st, "camp-3")
	if err != nil || len(cs) != 1 || len(cs[0].Waiting) == 0 {
		t.Fatalf("report.Campaigns = %v, %v; want camp-3 with waiting targets", cs, err)
	}
	rec.op("report.Accounts")
	if _, err := report.Accounts(ctx, st, "acct-2"); err != nil {
		t.Fatal(err)
	}
	rec.op("ResumeAccount")
	if err := st.ResumeAccount(ctx, 5); err != nil {
		t.Fatal(err)
	}

	explained := 0
	for _, s := range rec.statements() {
		if !touchesWaits.MatchString(s.sql) {
			continue
		}
		explained++
		for _, generic := range []bool{false, true} {
			plan := explainPlan(t, admin, s, generic)
			for _, seq := range plan.seqScans("targets") {
				t.Errorf("%s (generic %v): sequential scan on %s in\n%s\n%s", s.op, generic, seq, oneLine(s.sql), plan.render())
			}
			t.Logf("%s (generic %v):\n%s\n%s", s.op, generic, oneLine(s.sql), plan.render())
			if s.op == "campaign's waits" && !plan.usesIndex("targets_campaign_status") {
				t.Errorf("campaign's waits (generic %v): want index targets_campaign_status in\n%s", generic, plan.render())
			}
			if s.op == "ResumeAccount" && !plan.usesIndex("targets_handed_back") {
				t.Errorf("ResumeAccount (generic %v): want index targets_handed_back in\n%s", generic, plan.render())
			}
		}
	}
	if explained < 6 {
		t.Errorf("explained %d statements over targets or target_waits, want at least 6", explained)
	}
}

var touchesWaits = regexp.MustCompile(`(?i)\b(from|join|update)\s+(targets|target_waits)\b`)
