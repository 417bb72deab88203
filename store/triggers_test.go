package store_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// The event triggers join a statement's old and new rows, and PL/pgSQL
// keeps the plan of a trigger's first run for the session: after a first
// run of one row, a nested loop made an UPDATE of 20,000 targets compare
// 400 million pairs (25 s, its locks held meanwhile). Each trigger's join
// must not be a nested loop in a session whose first change was one row
// (auto_explain shows the plans of the triggers' statements).
func TestEventTriggersJoinWithoutNestedLoops(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	addTargets(t, f, 30)
	exec(t, f, `INSERT INTO accounts (name, provider, provider_account_id)
		SELECT 'more-' || g, 'unipile', 'm' || g FROM generate_series(1, 20) g`)
	exec(t, f, `INSERT INTO campaigns (name, account_id) SELECT 'more-' || g, $1 FROM generate_series(1, 20) g`, f.account)
	cfg, err := pgx.ParseConfig(f.dsn)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var notices []string
	cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) {
		mu.Lock()
		defer mu.Unlock()
		notices = append(notices, n.Message)
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `LOAD 'auto_explain'`); err != nil {
		t.Skipf("auto_explain is not installed with this Postgres: %v", err)
	}
	for _, set := range []string{`SET auto_explain.log_min_duration = 0`, `SET auto_explain.log_nested_statements = on`,
		`SET auto_explain.log_level = notice`} {
		if _, err := conn.Exec(ctx, set); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct{ table, one, all string }{
		{"targets", `UPDATE targets SET status = 'failed' WHERE id = (SELECT min(id) FROM targets)`,
			`UPDATE targets SET status = 'skipped', last_error = 'bulk' WHERE status = 'pending'`},
		{"accounts", `UPDATE accounts SET status = 'disabled', pause_reason = 'one' WHERE id = (SELECT min(id) FROM accounts)`,
			`UPDATE accounts SET status = 'disabled', pause_reason = 'bulk' WHERE status = 'active'`},
		{"campaigns", `UPDATE campaigns SET status = 'done' WHERE id = (SELECT min(id) FROM campaigns)`,
			`UPDATE campaigns SET status = 'done' WHERE status <> 'done'`},
	} {
		if _, err := conn.Exec(ctx, c.one); err != nil {
			t.Fatalf("%s, one row: %v", c.table, err)
		}
		mu.Lock()
		notices = nil
		mu.Unlock()
		tag, err := conn.Exec(ctx, c.all)
		if err != nil || tag.RowsAffected() < 20 {
			t.Fatalf("%s, all rows: %v (%d rows)", c.table, err, tag.RowsAffected())
		}
		mu.Lock()
		joins := 0
		for _, n := range notices {
			if !strings.Contains(n, "JOIN old_rows") {
				continue
			}
			joins++
			if strings.Contains(n, "Nested Loop") {
				t.Errorf("%s: the event trigger joins %d rows by a nested loop, planned for the session's first run of one row:\n%s", c.table, tag.RowsAffected(), n)
			}
		}
		mu.Unlock()
		if joins == 0 {
			t.Errorf("%s: no plan of the event trigger's join among %d notices", c.table, len(notices))
		}
	}
}
