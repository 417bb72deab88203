package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/outreach-dev/outreach/store"
)

// The functions of this file change settings of accounts, campaigns,
// providers and webhooks with SQL, as an operator's SQL would (or where
// the store has no call for it).

// SetCampaignStatus sets the campaign's status with SQL.
func SetCampaignStatus(t testing.TB, db DB, campaign int64, status store.CampaignStatus) {
	t.Helper()
	exec(t, db, "set a campaign's status", `UPDATE campaigns SET status = $2 WHERE id = $1`, campaign, string(status))
}

// SetOwnerDays sets, for every campaign, how many days a person stays
// with the account that first invited them.
func SetOwnerDays(t testing.TB, db DB, days int) {
	t.Helper()
	exec(t, db, "set owner days", `UPDATE campaigns SET owner_days = $1`, days)
}

// SetWithdrawStale sets whether the campaign withdraws its stale
// invitations.
func SetWithdrawStale(t testing.TB, db DB, campaign int64, on bool) {
	t.Helper()
	exec(t, db, "set withdraw_stale", `UPDATE campaigns SET withdraw_stale = $2 WHERE id = $1`, campaign, on)
}

// SetCampaignWithdrawAfter sets the campaign's own age at which an
// unanswered invitation is withdrawn.
func SetCampaignWithdrawAfter(t testing.TB, db DB, campaign int64, after time.Duration) {
	t.Helper()
	exec(t, db, "set a campaign's withdraw_after", `UPDATE campaigns SET withdraw_after = make_interval(secs => $2) WHERE id = $1`,
		campaign, after.Seconds())
}

// SetWithdrawals sets the account's age at which an unanswered invitation
// is withdrawn (zero: never) and how long a withdrawn person is not
// invited again.
func SetWithdrawals(t testing.TB, db DB, account int64, after, block time.Duration) {
	t.Helper()
	var a any
	if after != 0 {
		a = after.Seconds()
	}
	exec(t, db, "set withdrawals", `UPDATE accounts SET withdraw_after = make_interval(secs => $2), withdraw_block = make_interval(secs => $3)
		WHERE id = $1`, account, a, block.Seconds())
}

// StopWithdrawals turns the account's withdrawals off.
func StopWithdrawals(t testing.TB, db DB, account int64) {
	t.Helper()
	exec(t, db, "stop withdrawals", `UPDATE accounts SET withdraw_after = NULL WHERE id = $1`, account)
}

// SetSentListReads sets whether the account counts the invitations sent
// outside outreach, and (non-zero every) how often it reads its sent list.
func SetSentListReads(t testing.TB, db DB, account int64, countOutside bool, every time.Duration) {
	t.Helper()
	var e any
	if every != 0 {
		e = every.Seconds()
	}
	exec(t, db, "set sent list reads", `UPDATE accounts SET count_outside_invites = $2,
		sent_list_every = coalesce(make_interval(secs => $3), sent_list_every) WHERE id = $1`, account, countOutside, e)
}

// AddLimit adds an invitation or lookup limit to the account with SQL.
func AddLimit(t testing.TB, db DB, account int64, l store.Limit) {
	t.Helper()
	days, secs := interval(l.Per)
	exec(t, db, "add a limit", `INSERT INTO account_limits (account_id, action, max_count, per)
		VALUES ($1, $2, $3, make_interval(days => $4, secs => $5))`, account, string(l.Action), l.Max, days, secs)
}

// RaiseLimits sets the maximum of every limit of the account with SQL.
func RaiseLimits(t testing.TB, db DB, account int64, max int) {
	t.Helper()
	exec(t, db, "set limits", `UPDATE account_limits SET max_count = $2 WHERE account_id = $1`, account, max)
}

// DisableAllAccounts disables every account with SQL, with the reason.
func DisableAllAccounts(t testing.TB, db DB, reason string) {
	t.Helper()
	exec(t, db, "disable accounts", `UPDATE accounts SET status = 'disabled', pause_reason = $1`, reason)
}

// SetWorkingHours sets every account's working hours, from start to end
// hours (0 to 24) of its time zone.
func SetWorkingHours(t testing.TB, db DB, start, end int) {
	t.Helper()
	exec(t, db, "set working hours", `UPDATE accounts SET work_start = $1::time, work_end = $2::time`,
		fmt.Sprintf("%02d:00", start), fmt.Sprintf("%02d:00", end))
}

// SetNextSendAt sets when every account may send next (its minimum gap).
func SetNextSendAt(t testing.TB, db DB, at time.Time) {
	t.Helper()
	exec(t, db, "set next_send_at", `UPDATE accounts SET next_send_at = $1`, at)
}

// AgeWarmups moves every warm-up's current stage back by age, as if it
// had started that long ago.
func AgeWarmups(t testing.TB, db DB, age time.Duration) {
	t.Helper()
	exec(t, db, "age warm-ups", `UPDATE account_warmups SET stage_since = now() - make_interval(secs => $1)`, age.Seconds())
}

// SetProviderWarmup sets whether new accounts of the provider start on
// its warm-up ramp (docs/warmup.md).
func SetProviderWarmup(t testing.TB, db DB, provider string, newAccounts bool) {
	t.Helper()
	exec(t, db, "set a provider's warm-up", `UPDATE provider_warmup SET new_accounts = $2 WHERE provider = $1`, provider, newAccounts)
}

// QuietWarmups turns off, in the database at dsn, the ramps that new
// accounts of every provider start on. It runs before any test (on a
// template database), hence its context and error.
func QuietWarmups(ctx context.Context, dsn string) error {
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return fmt.Errorf("connect to template database: %w", err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, `UPDATE provider_warmup SET new_accounts = false`); err != nil {
		return fmt.Errorf("turn off default warm-ups in the template database: %w", err)
	}
	return nil
}

// DuePolls makes every account's acceptance poll due at.
func DuePolls(t testing.TB, db DB, at time.Time) {
	t.Helper()
	exec(t, db, "make polls due", `UPDATE account_polls SET next_poll_at = $1`, at)
}

// WebhookFailure is a webhook subscriber's state after failed deliveries.
type WebhookFailure struct {
	Attempts  int
	LastError string
	Delivered int // zero: unchanged
}

// MarkWebhookFailing records that the subscriber has been failing since
// now.
func MarkWebhookFailing(t testing.TB, db DB, subscriber int64, f WebhookFailure) {
	t.Helper()
	exec(t, db, "mark a webhook failing", `UPDATE webhook_subscribers SET attempts = $2, failing_since = now(), last_error = $3,
		delivered = coalesce(nullif($4, 0), delivered) WHERE id = $1`, subscriber, f.Attempts, f.LastError, f.Delivered)
}

// CommitDurably makes the database name, on the server at adminDSN, commit
// as production servers do (synchronous_commit on), whatever the server's
// own setting: a crash must not undo commits already acknowledged.
func CommitDurably(t testing.TB, adminDSN, name string) {
	t.Helper()
	ctx := context.Background()
	c, err := pgx.Connect(ctx, adminDSN)
	if err != nil {
		t.Fatalf("commit durably: %v", err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, "ALTER DATABASE "+pgx.Identifier{name}.Sanitize()+" SET synchronous_commit = on"); err != nil {
		t.Fatalf("commit durably: %v", err)
	}
}
