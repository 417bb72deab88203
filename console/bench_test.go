package console_test

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/outreach-dev/outreach/console"
	"github.com/outreach-dev/outreach/internal/testenv"
	"github.com/outreach-dev/outreach/store"
)

var benchTargets = flag.Int("console.targets", 1_000_000, "targets loaded by BenchmarkConsolePages (the issue asks for 10,000,000)")

// BenchmarkConsolePages renders each console page (the handler, its
// queries and its template; no network) over 1,000 accounts with limits and
// a ledger of 200 rows each, 100 campaigns and -console.targets targets
// (default a million). Run: go test -run XXX -bench ConsolePages ./console/
func BenchmarkConsolePages(b *testing.B) {
	ctx := context.Background()
	dsn := testenv.DatabaseURL(b)
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close(ctx)
	start := time.Now()
	for _, sql := range []string{
		`SET synchronous_commit = off`,
		`SET maintenance_work_mem = '256MB'`,
		`INSERT INTO accounts (name, provider, provider_account_id, timezone, work_start, work_end)
			SELECT 'acct-' || lpad(i::text, 4, '0'), 'unipile', 'ua-' || i, 'Europe/Paris', '08:00', '20:00' FROM generate_series(1, 1000) i`,
		`INSERT INTO account_limits (account_id, action, max_count, per)
			SELECT id, 'invite', 25, interval '1 day' FROM accounts UNION ALL SELECT id, 'invite', 100, interval '7 days' FROM accounts
			UNION ALL SELECT id, 'lookup', 80, interval '1 day' FROM accounts`,
		`INSERT INTO campaigns (name, account_id) SELECT 'camp-' || i, i * 10 FROM generate_series(1, 100) i`,
		`ALTER TABLE targets DISABLE TRIGGER USER`,
		fmt.Sprintf(`INSERT INTO targets (campaign_id, account_id, identifier, normalized_identifier, provider_id, status, error_type, next_attempt_at, finished_at)
			SELECT c, c * 10, 'https://www.linkedin.com/in/p-' || lpad(i::text, 8, '0') || '/', 'p-' || i, 'ACo' || i,
				CASE WHEN k < 3 THEN 'pending' WHEN k = 3 THEN 'queued' WHEN k = 4 THEN 'failed' WHEN k = 5 THEN 'skipped' ELSE 'sent' END,
				CASE WHEN k = 4 THEN 'invalid_recipient' WHEN k = 5 THEN 'already_connected' END,
				now() + (i %% 600) * interval '1 minute', CASE WHEN k >= 4 THEN now() - (i %% 5000) * interval '1 minute' END
			FROM (SELECT i, (i - 1) / %[2]d + 1 AS c, i %% 100 AS k FROM generate_series(1, %[1]d) i) s`, *benchTargets, max(*benchTargets/100, 1)),
		`ALTER TABLE targets ENABLE TRIGGER USER`,
		`SELECT outreach_recount_campaigns()`,
		`INSERT INTO sends (account_id, target_id, action, reserved_at, window_at, outcome, error_type, http_status)
			SELECT a, NULL, 'invite', now() - j * interval '21 minutes', now() - j * interval '21 minutes',
				CASE WHEN j % 9 = 0 THEN 'refused' ELSE 'sent' END, CASE WHEN j % 9 = 0 THEN 'cannot_resend_yet' END, 201
			FROM generate_series(1, 1000) a, generate_series(1, 200) j`,
		`VACUUM ANALYZE`,
	} {
		if _, err := c.Exec(ctx, sql); err != nil {
			b.Fatalf("%v\n%s", err, sql)
		}
	}
	b.Logf("loaded 1,000 accounts, 100 campaigns, %d targets, 200,000 ledger rows in %s", *benchTargets, time.Since(start).Round(time.Second))
	st, err := store.Open(ctx, dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	cons, err := console.New(console.Options{Store: st, Prefix: "/console"})
	if err != nil {
		b.Fatal(err)
	}
	var target int64
	if err := c.QueryRow(ctx, `SELECT id FROM targets WHERE campaign_id = 50 AND status = 'failed' LIMIT 1`).Scan(&target); err != nil {
		b.Fatal(err)
	}
	pages := []struct{ name, path string }{
		{"accounts", "/console/"},
		{"account", "/console/accounts/500"},
		{"campaigns", "/console/campaigns"},
		{"campaign", "/console/campaigns/50"},
		{"campaign-failed", "/console/campaigns/50?status=failed"},
		{"campaign-deep", "/console/campaigns/50?status=sent&after=https://www.linkedin.com/in/p-00" + fmt.Sprint(50*(*benchTargets/100)-100)},
		{"target", fmt.Sprintf("/console/targets/%d", target)},
	}
	for _, p := range pages {
		b.Run(p.name, func(b *testing.B) {
			for b.Loop() {
				rec := httptest.NewRecorder()
				cons.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, p.path, nil))
				if rec.Code != http.StatusOK {
					b.Fatalf("%s: %d %s", p.path, rec.Code, rec.Body.String())
				}
				_, _ = io.Copy(io.Discard, rec.Body)
			}
		})
	}
}
