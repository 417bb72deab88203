package benchdb

import (
	"context"
	"fmt"
)

// LoadConsole loads the console benchmark's data (console's
// BenchmarkConsolePages): 1,000 accounts (acct-0001…) with limits,
// 100 campaigns (camp-1…, of accounts 10, 20, …), n targets spread over
// the campaigns in every status, and a ledger of 200 invitations per
// account over the last 70 hours. It loads on one connection with
// synchronous commits off and the targets' triggers off, then recounts
// the campaigns and analyses.
func (db *DB) LoadConsole(ctx context.Context, n int) error {
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
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
			FROM (SELECT i, (i - 1) / %[2]d + 1 AS c, i %% 100 AS k FROM generate_series(1, %[1]d) i) s`, n, max(n/100, 1)),
		`ALTER TABLE targets ENABLE TRIGGER USER`,
		`SELECT outreach_recount_campaigns()`,
		`INSERT INTO sends (account_id, target_id, action, reserved_at, window_at, outcome, error_type, http_status)
			SELECT a, NULL, 'invite', now() - j * interval '21 minutes', now() - j * interval '21 minutes',
				CASE WHEN j % 9 = 0 THEN 'refused' ELSE 'sent' END, CASE WHEN j % 9 = 0 THEN 'cannot_resend_yet' END, 201
			FROM generate_series(1, 1000) a, generate_series(1, 200) j`,
		`VACUUM ANALYZE`,
	} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			return fmt.Errorf("load the console's data: %w\n%s", err, sql)
		}
	}
	return nil
}

// FailedTarget returns the id of a failed target of the campaign.
func (db *DB) FailedTarget(ctx context.Context, campaign int64) (int64, error) {
	var id int64
	err := db.pool.QueryRow(ctx, `SELECT id FROM targets WHERE campaign_id = $1 AND status = 'failed' LIMIT 1`, campaign).Scan(&id)
	return id, err
}
