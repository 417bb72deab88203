package store_test

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/outreach-dev/outreach/internal/testenv"
	"github.com/outreach-dev/outreach/migrations"
	"github.com/outreach-dev/outreach/report"
	"github.com/outreach-dev/outreach/store"
)

// TestAccountRules checks that the schema refuses accounts and limits that
// cannot work, with a check_violation whose message names the column, and
// takes the sensible values at the edges.
func TestAccountRules(t *testing.T) {
	t.Parallel()
	st, pool := testenv.StoreDB(t)
	ctx := context.Background()
	exec := func(sql string) error {
		_, err := pool.Exec(ctx, sql)
		return err
	}
	if err := exec(`INSERT INTO accounts (name, provider, provider_account_id) VALUES ('ok', 'unipile', 'u-ok')`); err != nil {
		t.Fatal(err)
	}
	refused := []struct{ sql, want string }{
		{`INSERT INTO accounts (name, provider, provider_account_id) VALUES ('a', 'unipile', '')`, "accounts.provider_account_id: must not be empty"},
		{`INSERT INTO accounts (name, provider, provider_account_id) VALUES ('a', 'unipile', '  ')`, "accounts.provider_account_id: must not be empty"},
		{`INSERT INTO accounts (name, provider, provider_account_id, timezone) VALUES ('a', 'unipile', 'u1', 'Mars/Phobos')`, `accounts.timezone: unknown time zone "Mars/Phobos"`},
		{`INSERT INTO accounts (name, provider, provider_account_id, timezone) VALUES ('a', 'unipile', 'u1', 'europe/paris')`, `accounts.timezone: unknown time zone "europe/paris"`},
		{`INSERT INTO accounts (name, provider, provider_account_id, timezone) VALUES ('a', 'unipile', 'u1', 'UTC+3')`, `accounts.timezone: unknown time zone "UTC+3"`},
		{`INSERT INTO accounts (name, provider, provider_account_id, timezone) VALUES ('a', 'unipile', 'u1', 'XYZ3')`, `accounts.timezone: unknown time zone "XYZ3"`},
		{`INSERT INTO accounts (name, provider, provider_account_id, timezone) VALUES ('a', 'unipile', 'u1', 'PST')`, `accounts.timezone: unknown time zone "PST"`},
		{`INSERT INTO accounts (name, provider, provider_account_id, timezone) VALUES ('a', 'unipile', 'u1', '')`, `accounts.timezone: unknown time zone ""`},
		{`INSERT INTO accounts (name, provider, provider_account_id, work_days) VALUES ('a', 'unipile', 'u1', '{}')`, "accounts.work_days: empty"},
		{`INSERT INTO accounts (name, provider, provider_account_id, work_days) VALUES ('a', 'unipile', 'u1', '{0,1}')`, "accounts.work_days: {0,1} holds values outside 1..7"},
		{`INSERT INTO accounts (name, provider, provider_account_id, work_days) VALUES ('a', 'unipile', 'u1', '{1,8}')`, "accounts.work_days: {1,8}"},
		{`INSERT INTO accounts (name, provider, provider_account_id, work_days) VALUES ('a', 'unipile', 'u1', '{1,NULL}')`, "accounts.work_days:"},
		{`INSERT INTO accounts (name, provider, provider_account_id, min_gap) VALUES ('a', 'unipile', 'u1', '1000 years')`, "accounts.min_gap: 1000 years is longer than the maximum, 1 day"},
		{`INSERT INTO accounts (name, provider, provider_account_id, gap_jitter) VALUES ('a', 'unipile', 'u1', '25 hours')`, "accounts.gap_jitter: 1 day 01:00:00 is longer"},
		{`UPDATE accounts SET timezone = 'Mars/Phobos' WHERE name = 'ok'`, `accounts.timezone: unknown time zone "Mars/Phobos"`},
		{`UPDATE accounts SET work_days = '{}' WHERE name = 'ok'`, "accounts.work_days: empty"},
		{`UPDATE accounts SET min_gap = '2 days' WHERE name = 'ok'`, "accounts.min_gap:"},
		{`UPDATE accounts SET provider_account_id = '' WHERE name = 'ok'`, "accounts.provider_account_id:"},
		{`INSERT INTO account_limits (account_id, action, max_count, per) SELECT id, 'invite', 1, '1000 years' FROM accounts WHERE name = 'ok'`, "account_limits.per: 1000 years is longer than the maximum, 366 days"},
		{`INSERT INTO account_limits (account_id, action, max_count, per) SELECT id, 'invite', 1, '367 days' FROM accounts WHERE name = 'ok'`, "account_limits.per: 367 days"},
		{`INSERT INTO account_limits (account_id, action, max_count, per) SELECT id, 'invite', 1000001, '1 day' FROM accounts WHERE name = 'ok'`, "account_limits.max_count: 1000001 is outside 1..1000000"},
	}
	for _, tc := range refused {
		err := exec(tc.sql)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "23514" || !strings.Contains(pgErr.Message, tc.want) {
			t.Errorf("%s\n  error %v, want check_violation (23514) naming %q", tc.sql, err, tc.want)
		}
	}
	accepted := []string{
		`INSERT INTO accounts (name, provider, provider_account_id, timezone, work_days, min_gap, gap_jitter)
			VALUES ('paris', 'unipile', 'u2', 'Europe/Paris', '{1,2,3,4,5}', '1 day', '1 day')`,
		`INSERT INTO accounts (name, provider, provider_account_id, timezone) VALUES ('ny', 'partoo', 'p1', 'America/New_York')`,
		`INSERT INTO accounts (name, provider, provider_account_id, timezone) VALUES ('gmt3', 'partoo', 'p2', 'Etc/GMT+3')`,
		`INSERT INTO accounts (name, provider, provider_account_id, timezone) VALUES ('est', 'partoo', 'p3', 'EST5EDT')`,
		`INSERT INTO account_limits (account_id, action, max_count, per) SELECT id, 'invite', 1000000, '366 days' FROM accounts WHERE name = 'ok'`,
		`UPDATE account_limits SET max_count = 5`,
		`UPDATE accounts SET next_send_at = now(), status = 'paused', paused_until = now() + interval '1 hour', pause_reason = 'x'`,
	}
	for _, sql := range accepted {
		if err := exec(sql); err != nil {
			t.Errorf("%s\n  refused: %v", sql, err)
		}
	}
	// Checking a time zone leaves the session's own alone.
	var tz string
	if err := pool.QueryRow(ctx, `SELECT outreach_timezone_known('Asia/Tokyo')::text || current_setting('timezone')`).Scan(&tz); err != nil ||
		strings.Contains(tz, "Tokyo") || !strings.HasPrefix(tz, "true") {
		t.Errorf("outreach_timezone_known('Asia/Tokyo') then the session's time zone: %q, %v", tz, err)
	}

	// Through the store: ErrInvalid, with the column in the message.
	_, err := st.CreateAccount(ctx, store.NewAccount{Name: "m", Provider: "unipile", ProviderAccountID: "u3", Timezone: "Mars/Phobos"})
	if !errors.Is(err, store.ErrInvalid) || !strings.Contains(err.Error(), `accounts.timezone: unknown time zone "Mars/Phobos"`) {
		t.Errorf("CreateAccount in Mars/Phobos: %v, want ErrInvalid naming accounts.timezone", err)
	}
	ok, err := st.AccountByName(ctx, "ok")
	if err != nil {
		t.Fatal(err)
	}
	err = st.SetLimits(ctx, ok.ID, []store.Limit{{Action: store.ActionInvite, Max: 1, Per: 400 * 24 * time.Hour}})
	if !errors.Is(err, store.ErrInvalid) || !strings.Contains(err.Error(), "account_limits.per") {
		t.Errorf("SetLimits 1 per 400 days: %v, want ErrInvalid naming account_limits.per", err)
	}
}

// TestRulesMigrationKeepsBadRows migrates a database that already holds
// accounts breaking the new rules: nothing is lost, the bad accounts are
// disabled with the reason, unrelated updates keep working, resuming an
// account that is still bad is refused, and reading one never wraps a
// duration around.
func TestRulesMigrationKeepsBadRows(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := emptyDatabase(t)
	db := stdlib.OpenDB(*mustParse(t, dsn))
	defer db.Close()
	p, err := goose.NewProvider(goose.DialectPostgres, db, migrations.FS)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(ctx, 1); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("x", 2100) // compressible: fits the index
	if _, err := db.ExecContext(ctx, `
		INSERT INTO accounts (name, provider, provider_account_id, timezone, work_days, min_gap) VALUES
			('good', 'unipile', 'g', 'Europe/Paris', '{1,2,3,4,5}', '90 seconds'),
			('mars', 'unipile', 'm', 'Mars/Phobos', '{1,2,3,4,5,6,7}', '0'),
			('blank', 'partoo', '', 'UTC', '{1}', '0'),
			('never', 'unipile', 'n', 'UTC', '{}', '0'),
			('eon', 'unipile', 'e', 'UTC', '{1,2,3,4,5,6,7}', '1000 years'),
			('slow', 'unipile', 's', 'UTC', '{1,2,3,4,5,6,7}', '0');
		UPDATE accounts SET status = 'paused', paused_until = now() - interval '1 minute', pause_reason = '429' WHERE name = 'mars';
		INSERT INTO account_limits (account_id, action, max_count, per)
			SELECT id, 'invite', 1, interval '1000 years' FROM accounts WHERE name = 'slow' UNION ALL
			SELECT id, 'invite', 25, '1 day' FROM accounts WHERE name = 'good';
		INSERT INTO campaigns (name, account_id) SELECT 'c', id FROM accounts WHERE name = 'good'`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO targets (campaign_id, identifier) SELECT id, $1 FROM campaigns`, long); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Migrate(ctx, dsn); err != nil {
		t.Fatalf("migrate a database holding bad rows: %v", err)
	}
	st, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	pool := testenv.DB(t, dsn)

	want := map[string]string{
		"good":  "",
		"mars":  `invalid configuration: accounts.timezone: unknown time zone "Mars/Phobos"`,
		"blank": "invalid configuration: accounts.provider_account_id: must not be empty",
		"never": "invalid configuration: accounts.work_days: empty",
		"eon":   "invalid configuration: accounts.min_gap: 1000 years",
		"slow":  "invalid configuration: account_limits.per: 1000 years",
	}
	accounts, err := st.Accounts(ctx)
	if err != nil {
		t.Fatalf("Accounts over rows from before the migration: %v", err)
	}
	if len(accounts) != len(want) {
		t.Errorf("%d accounts after the migration, want %d", len(accounts), len(want))
	}
	for _, a := range accounts {
		w := want[a.Name]
		if w == "" {
			if a.Status != store.AccountActive || a.PauseReason != "" {
				t.Errorf("account %s: %s %q, want active and untouched", a.Name, a.Status, a.PauseReason)
			}
			continue
		}
		if a.Status != store.AccountDisabled || !strings.HasPrefix(a.PauseReason, w) {
			t.Errorf("account %s: %s %q, want disabled with reason %q…", a.Name, a.Status, a.PauseReason, w)
		}
		// Durations never wrap around: '1000 years' reads as a very
		// long time, not a negative or tiny one.
		if a.MinGap < 0 || (a.Name == "eon" && a.MinGap < 5*365*24*time.Hour) {
			t.Errorf("account %s: min gap %v, want at least 5 years", a.Name, a.MinGap)
		}
		for _, l := range a.Limits {
			if a.LimitSources[l.Action] == store.SourceDefault {
				continue // the provider's defaults, not the row from before
			}
			if l.Per < 5*365*24*time.Hour {
				t.Errorf("account %s: limit %v, want a window of at least 5 years", a.Name, l)
			}
		}
	}
	reports, err := report.Accounts(ctx, st, "slow")
	var custom []report.Window
	if err == nil && len(reports) == 1 {
		for _, w := range reports[0].Windows {
			if w.Source != store.SourceDefault {
				custom = append(custom, w)
			}
		}
	}
	if err != nil || len(custom) != 1 || custom[0].Per < 5*365*24*time.Hour {
		t.Errorf("status of the account limited to 1 per 1000 years: %+v, %v; want a window of at least 5 years", reports, err)
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM targets WHERE identifier = $1`, long).Scan(&n); err != nil || n != 1 {
		t.Errorf("the long identifier from before: %d rows, %v; want kept", n, err)
	}
	// Updates that do not touch a bad value still work.
	if _, err := pool.Exec(ctx, `UPDATE targets SET status = 'failed', last_error = 'x'`); err != nil {
		t.Errorf("update of a target with an old long identifier: %v", err)
	}
	if _, err := pool.Exec(ctx, `UPDATE accounts SET next_send_at = now(), slow_until = now()`); err != nil {
		t.Errorf("workers' update of all accounts: %v", err)
	}
	if _, err := st.ResumeExpiredPauses(ctx, time.Now()); err != nil {
		t.Errorf("ResumeExpiredPauses: %v", err)
	}
	// New values are checked.
	if _, err := pool.Exec(ctx, `INSERT INTO targets (campaign_id, identifier) SELECT id, $1 FROM campaigns`, long+"y"); err == nil ||
		!strings.Contains(err.Error(), "targets.identifier: 2101 bytes") {
		t.Errorf("new identifier of 2101 bytes: %v, want refused naming targets.identifier", err)
	}
	// Resuming a bad account is refused with the reason; fixed, it resumes.
	mars, err := st.AccountByName(ctx, "mars")
	if err != nil {
		t.Fatal(err)
	}
	if err := st.ResumeAccount(ctx, mars.ID); !errors.Is(err, store.ErrInvalid) || !strings.Contains(err.Error(), "accounts.timezone") {
		t.Errorf("resume of an account in Mars/Phobos: %v, want ErrInvalid naming accounts.timezone", err)
	}
	if _, err := pool.Exec(ctx, `UPDATE accounts SET timezone = 'Europe/Berlin' WHERE id = $1`, mars.ID); err != nil {
		t.Fatal(err)
	}
	if err := st.ResumeAccount(ctx, mars.ID); err != nil {
		t.Errorf("resume after the fix: %v", err)
	}
	slow, err := st.AccountByName(ctx, "slow")
	if err != nil {
		t.Fatal(err)
	}
	if err := st.ResumeAccount(ctx, slow.ID); !errors.Is(err, store.ErrInvalid) || !strings.Contains(err.Error(), "account_limits.per") {
		t.Errorf("resume of an account limited to 1 per 1000 years: %v, want ErrInvalid naming account_limits.per", err)
	}
}

// emptyDatabase creates a database with no schema next to the test's own
// and returns its URL; it is dropped when the test ends.
func emptyDatabase(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	base := testenv.DatabaseURL(t)
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	name := strings.TrimPrefix(u.Path, "/") + "_empty"
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), base)
		if err != nil {
			return
		}
		defer c.Close(context.Background())
		_, _ = c.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	u.Path = "/" + name
	return u.String()
}

func mustParse(t *testing.T, dsn string) *pgx.ConnConfig {
	t.Helper()
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}
