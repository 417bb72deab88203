package store_test

import (
	"context"
	"slices"
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
	conn, plans := autoExplain(t, f)
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
		plans.reset()
		tag, err := conn.Exec(ctx, c.all)
		if err != nil || tag.RowsAffected() < 20 {
			t.Fatalf("%s, all rows: %v (%d rows)", c.table, err, tag.RowsAffected())
		}
		joins := 0
		seen := plans.all()
		for _, n := range seen {
			if !strings.Contains(n, "JOIN old_rows") {
				continue
			}
			joins++
			if strings.Contains(n, "Nested Loop") {
				t.Errorf("%s: the event trigger joins %d rows by a nested loop, planned for the session's first run of one row:\n%s", c.table, tag.RowsAffected(), n)
			}
		}
		if joins == 0 {
			t.Errorf("%s: no plan of the event trigger's join among %d notices", c.table, len(seen))
		}
	}
}

// The events of targets build their data in the triggers' INSERT, not by
// a call of outreach_target_event_data per event: declared IMMUTABLE over
// STABLE functions, the function could not be inlined, and ran as a
// query of its own for every event (migration 00019).
func TestTargetEventsBuildTheirDataInline(t *testing.T) {
	t.Parallel()
	f := setup(t)
	addTargets(t, f, 5)
	conn, plans := autoExplain(t, f, `SET auto_explain.log_verbose = on`)
	if _, err := conn.Exec(context.Background(), `UPDATE targets SET status = 'skipped', last_error = 'bulk' WHERE status = 'pending'`); err != nil {
		t.Fatal(err)
	}
	inserts := 0
	for _, n := range plans.all() {
		_, plan, found := strings.Cut(n, "Insert on public.events")
		if !found {
			continue
		}
		inserts++
		if strings.Contains(plan, "outreach_target_event_data(") || !strings.Contains(plan, "jsonb_build_object") {
			t.Errorf("the event trigger calls the data function for each event instead of building it in its INSERT:\n%s", n)
		}
	}
	if inserts == 0 {
		t.Errorf("no plan of the event trigger's INSERT among %d notices", len(plans.all()))
	}
}

// explained is what autoExplain's connection received: the plans of its
// statements, nested ones too.
type explained struct {
	mu    sync.Mutex
	plans []string
}

func (e *explained) reset() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.plans = nil
}

func (e *explained) all() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.plans)
}

// autoExplain opens a connection of its own to f's database whose
// statements' plans, the triggers' statements too, come back as notices
// (auto_explain, with settings added); it skips the test where
// auto_explain is not installed.
func autoExplain(t *testing.T, f fixture, settings ...string) (*pgx.Conn, *explained) {
	t.Helper()
	ctx := context.Background()
	cfg, err := pgx.ParseConfig(f.dsn)
	if err != nil {
		t.Fatal(err)
	}
	e := &explained{}
	cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) {
		e.mu.Lock()
		defer e.mu.Unlock()
		e.plans = append(e.plans, n.Message)
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	if _, err := conn.Exec(ctx, `LOAD 'auto_explain'`); err != nil {
		t.Skipf("auto_explain is not installed with this Postgres: %v", err)
	}
	for _, set := range append([]string{`SET auto_explain.log_min_duration = 0`, `SET auto_explain.log_nested_statements = on`,
		`SET auto_explain.log_level = notice`}, settings...) {
		if _, err := conn.Exec(ctx, set); err != nil {
			t.Fatal(err)
		}
	}
	return conn, e
}
