package storetest

import (
	"testing"
)

// Console is the console's demo data (SeedConsole): three accounts and
// the campaign of anna's with targets in every status.
type Console struct {
	// Anna is active, with limits and a ledger over three days.
	Anna int64
	// Ben is paused by a 429, with its reason.
	Ben int64
	// Partoo is a disabled Partoo account.
	Partoo int64
	// Campaign is anna's campaign of 130 targets: 60 sent, 12 skipped,
	// 18 failed, 4 queued, 36 pending.
	Campaign int64
}

// SeedConsole writes the console's demo data: three accounts (anna:
// active with limits and a ledger over three days; ben: paused by a 429
// with its reason; a disabled Partoo account), a campaign of anna's with
// 130 targets in every status and a paused campaign of ben's, and the
// ledger: a lookup and an invite per finished target, refusals, errors and
// one call in flight.
func SeedConsole(t testing.TB, db DB) Console {
	t.Helper()
	var c Console
	q := func(sql string, args ...any) {
		t.Helper()
		exec(t, db, "seed the console's data\n"+sql, sql, args...)
	}
	one := func(sql string, args ...any) int64 {
		t.Helper()
		return id(t, db, "seed the console's data\n"+sql, sql, args...)
	}
	c.Anna = one(`INSERT INTO accounts (name, provider, provider_account_id, timezone, work_start, work_end, work_days, min_gap, gap_jitter, next_send_at)
		VALUES ('linkedin-anna', 'unipile', 'acc_anna', 'Europe/Paris', '08:00', '20:00', '{1,2,3,4,5}', '2 minutes', '3 minutes', now() + interval '90 seconds') RETURNING id`)
	c.Ben = one(`INSERT INTO accounts (name, provider, provider_account_id, status, paused_until, pause_reason, timezone)
		VALUES ('linkedin-ben', 'unipile', 'acc_ben', 'paused', now() + interval '2 hours', 'HTTP 429 from Unipile: Retry-After 7200', 'America/New_York') RETURNING id`)
	c.Partoo = one(`INSERT INTO accounts (name, provider, provider_account_id, status, pause_reason)
		VALUES ('partoo-main', 'partoo', 'main', 'disabled', 'HTTP 401: invalid API key') RETURNING id`)
	q(`INSERT INTO account_limits (account_id, action, max_count, per) VALUES
		($1, 'invite', 25, '1 day'), ($1, 'invite', 100, '7 days'), ($1, 'lookup', 80, '1 day'),
		($2, 'invite', 20, '1 day')`, c.Anna, c.Ben)
	c.Campaign = one(`INSERT INTO campaigns (name, account_id, message_template) VALUES ('Q4 founders', $1,
		'Hi {{.FirstName}}, I enjoyed your post on pricing. Would love to connect.') RETURNING id`, c.Anna)
	q(`INSERT INTO campaigns (name, account_id, status) VALUES ('Agencies EU', $1, 'paused')`, c.Ben)
	// 130 targets: 60 sent, 12 skipped, 18 failed, 4 queued, 36 pending.
	q(`INSERT INTO targets (campaign_id, identifier, normalized_identifier, provider_id, status, error_type, last_error,
			invitation_id, message, next_attempt_at, finished_at)
		SELECT $1, 'https://www.linkedin.com/in/person-' || lpad(i::text, 3, '0') || '/', 'person-' || lpad(i::text, 3, '0'),
			CASE WHEN i % 13 = 0 AND i > 94 THEN NULL ELSE 'ACoAA' || i END,
			CASE WHEN i <= 60 THEN 'sent' WHEN i <= 72 THEN 'skipped' WHEN i <= 90 THEN 'failed' WHEN i <= 94 THEN 'queued' ELSE 'pending' END,
			CASE WHEN i BETWEEN 61 AND 72 THEN 'already_connected' WHEN i BETWEEN 73 AND 84 THEN 'invalid_recipient'
				WHEN i BETWEEN 85 AND 90 THEN 'too_many_characters' WHEN i IN (95, 96) THEN 'cannot_resend_yet' END,
			CASE WHEN i BETWEEN 61 AND 72 THEN 'already connected (FIRST_DEGREE)' WHEN i BETWEEN 73 AND 84 THEN 'the recipient cannot be invited'
				WHEN i BETWEEN 85 AND 90 THEN 'message over 300 characters' WHEN i IN (95, 96) THEN 'cannot resend yet: deferred' END,
			CASE WHEN i <= 60 THEN 'inv_' || i END,
			CASE WHEN i <= 60 OR i BETWEEN 91 AND 94 THEN 'Hi Person ' || i || ', I enjoyed your post on pricing. Would love to connect.' END,
			CASE WHEN i IN (95, 96) THEN now() + interval '20 hours' ELSE now() - interval '1 minute' END,
			CASE WHEN i <= 90 THEN now() - (i * interval '50 minutes') END
		FROM generate_series(1, 130) i`, c.Campaign)
	// The ledger: a lookup and an invite per finished target, over three
	// days, plus refusals, errors and one call in flight.
	q(`INSERT INTO sends (account_id, target_id, action, reserved_at, window_at, outcome, error_type, http_status, invitation_id, detail)
		SELECT t.account_id, t.id, 'invite', t.finished_at - interval '2 seconds', t.finished_at,
			CASE WHEN t.status = 'sent' THEN 'sent' WHEN t.error_type = 'too_many_characters' THEN 'refused'
				WHEN t.status = 'failed' THEN 'refused' ELSE 'cached' END,
			CASE WHEN t.status <> 'sent' THEN t.error_type END,
			CASE WHEN t.status = 'sent' THEN 201 WHEN t.status = 'failed' THEN 422 END,
			t.invitation_id, CASE WHEN t.status = 'failed' THEN t.last_error END
		FROM targets t WHERE t.finished_at IS NOT NULL`)
	q(`INSERT INTO sends (account_id, target_id, action, reserved_at, window_at, outcome, http_status)
		SELECT t.account_id, t.id, 'lookup', t.finished_at - interval '5 minutes', t.finished_at - interval '5 minutes', 'resolved', 200
		FROM targets t WHERE t.finished_at IS NOT NULL AND t.status = 'sent'`)
	q(`INSERT INTO sends (account_id, target_id, action, reserved_at, window_at, outcome, error_type, http_status, detail)
		SELECT $1, t.id, 'invite', now() - interval '3 hours', now() - interval '3 hours', 'error', 'server_error', 503, 'provider answered 503'
		FROM targets t WHERE t.status = 'queued' LIMIT 2`, c.Anna)
	q(`INSERT INTO sends (account_id, target_id, action, reserved_at) SELECT $1, t.id, 'invite', now() - interval '3 seconds'
		FROM targets t WHERE t.status = 'queued' ORDER BY t.id DESC LIMIT 1`, c.Anna)
	q(`INSERT INTO sends (account_id, action, reserved_at, window_at, outcome, error_type, http_status, detail)
		VALUES ($1, 'invite', now() - interval '2 hours', now() - interval '2 hours', 'refused', 'limit_exceeded', 429, 'account paused for 2h')`, c.Ben)

	return c
}
