package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/outreach-dev/outreach/store"
)

// The reads of this file check accounts, campaigns, workers and what
// targets wait for.

// AccountState returns the account's status and its pause reason (empty
// when none).
func AccountState(t testing.TB, db DB, account int64) (store.AccountStatus, string) {
	t.Helper()
	var s store.AccountStatus
	var reason string
	one(t, db, "account state", `SELECT status, coalesce(pause_reason, '') FROM accounts WHERE id = $1`, []any{account}, &s, &reason)
	return s, reason
}

// ProviderStatus returns the status the provider last reported for the
// account at a poll (nil: none recorded).
func ProviderStatus(t testing.TB, db DB, account int64) *string {
	t.Helper()
	var s *string
	one(t, db, "provider status", `SELECT provider_status FROM account_polls WHERE account_id = $1`, []any{account}, &s)
	return s
}

// CampaignOf returns the id of a campaign of the account; ok is false
// when it has none.
func CampaignOf(t testing.TB, db DB, account int64) (id int64, ok bool) {
	t.Helper()
	err := db.QueryRow(context.Background(), `SELECT id FROM campaigns WHERE account_id = $1 ORDER BY id LIMIT 1`, account).Scan(&id)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return 0, false
	case err != nil:
		t.Fatalf("campaign of an account: %v", err)
	}
	return id, true
}

// OnlyAccountAndCampaign returns the ids of the test's one account and
// one campaign.
func OnlyAccountAndCampaign(t testing.TB, db DB) (account, campaign int64) {
	t.Helper()
	one(t, db, "the account and the campaign", `SELECT a.id, c.id FROM accounts a, campaigns c`, nil, &account, &campaign)
	return account, campaign
}

// PoolShare returns the weight and the daily cap of the pool campaign
// named name.
func PoolShare(t testing.TB, db DB, name string) (weight, dailyCap int) {
	t.Helper()
	one(t, db, "pool share", `SELECT weight, daily_cap FROM campaigns WHERE name = $1`, []any{name}, &weight, &dailyCap)
	return weight, dailyCap
}

// Wait is what a target waits for, as target_waits says.
type Wait struct {
	Wait, Reason string
	Until        *time.Time // nil: no known end
	UntilLocal   *string    // Until in the account's time zone
}

// WaitOf returns what the target waits for; ok is false when
// target_waits has no row for it.
func WaitOf(t testing.TB, db DB, target int64) (w Wait, ok bool) {
	t.Helper()
	err := db.QueryRow(context.Background(), `SELECT wait, reason, until, until_local FROM target_waits WHERE target_id = $1`, target).
		Scan(&w.Wait, &w.Reason, &w.Until, &w.UntilLocal)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return Wait{}, false
	case err != nil:
		t.Fatalf("target_waits: %v", err)
	}
	return w, true
}

// PoolWait returns what an unassigned target of the pool campaign waits
// for (one of them).
func PoolWait(t testing.TB, db DB, campaign int64) Wait {
	t.Helper()
	var w Wait
	one(t, db, "pool's wait", `SELECT wait, reason, until, until_local FROM target_waits WHERE campaign_id = $1 AND account_id IS NULL LIMIT 1`,
		[]any{campaign}, &w.Wait, &w.Reason, &w.Until, &w.UntilLocal)
	return w
}

// AccountWaitsVersion returns the row version (xmin) of the account
// waits: it changes whenever they are written again.
func AccountWaitsVersion(t testing.TB, db DB) string {
	t.Helper()
	var x string
	one(t, db, "account_waits version", `SELECT xmin::text FROM account_waits`, nil, &x)
	return x
}

// AccountWaits returns how many account waits are recorded.
func AccountWaits(t testing.TB, db DB) int {
	t.Helper()
	var n int
	one(t, db, "account waits", `SELECT count(*) FROM account_waits`, nil, &n)
	return n
}

// WorkerOfProcess returns the id of the worker with the process id.
func WorkerOfProcess(t testing.TB, db DB, pid int) int64 {
	t.Helper()
	return id(t, db, "worker of a process", `SELECT id FROM workers WHERE pid = $1`, pid)
}

// RecoveredAt returns when the worker was found dead and its calls
// recovered (nil: not).
func RecoveredAt(t testing.TB, db DB, worker int64) *time.Time {
	t.Helper()
	var at *time.Time
	one(t, db, "recovered_at", `SELECT recovered_at FROM workers WHERE id = $1`, []any{worker}, &at)
	return at
}

// RecoveredNotStopped reports whether the worker was found dead (recovered)
// without having stopped cleanly.
func RecoveredNotStopped(t testing.TB, db DB, worker int64) bool {
	t.Helper()
	return count(t, db, "recovered worker", `SELECT count(*) FROM workers WHERE id = $1 AND recovered_at IS NOT NULL AND stopped_at IS NULL`, worker) == 1
}

// RecoveredWorkers counts the workers found dead.
func RecoveredWorkers(t testing.TB, db DB) int {
	t.Helper()
	return count(t, db, "recovered workers", `SELECT count(*) FROM workers WHERE recovered_at IS NOT NULL`)
}

// RecoveryDelays returns, in seconds after since, when the worker was
// found dead and when the first settling lookup was reserved.
func RecoveryDelays(t testing.TB, db DB, worker int64, since time.Time) (detected, firstLookup float64) {
	t.Helper()
	one(t, db, "recovery delays", `SELECT extract(epoch FROM max(w.recovered_at) - $2::timestamptz),
			extract(epoch FROM min(l.reserved_at) - $2::timestamptz) FROM workers w, sends l
		WHERE w.id = $1 AND l.action = 'lookup' AND l.detail LIKE 'settle:%'`, []any{worker, since}, &detected, &firstLookup)
	return detected, firstLookup
}

// Now returns the database's clock.
func Now(t testing.TB, db DB) time.Time {
	t.Helper()
	var now time.Time
	one(t, db, "now", `SELECT now()`, nil, &now)
	return now
}
