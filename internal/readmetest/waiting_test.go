package readmetest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/redis/go-redis/v9"

	"github.com/outreach-dev/outreach/internal/testenv"
	"github.com/outreach-dev/outreach/scheduler"
	"github.com/outreach-dev/outreach/store"
)

const waitingDoc = "../../docs/waiting.md"

// TestWaitingDocSQL runs the SQL blocks of docs/waiting.md in order on a
// fresh database. After the first block (its example rows) the
// scheduler plans once, its clock at 03:00 Paris time tomorrow, so the
// account is closed and the planner records why; the later blocks read
// that back.
func TestWaitingDocSQL(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := testenv.DatabaseURL(t)
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	st, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	tomorrow := time.Now().In(paris).AddDate(0, 0, 1)
	clock := time.Date(tomorrow.Year(), tomorrow.Month(), tomorrow.Day(), 3, 0, 0, 0, paris)
	opens := time.Date(tomorrow.Year(), tomorrow.Month(), tomorrow.Day(), 9, 0, 0, 0, paris)

	var results [][]*pgconn.Result
	for _, b := range readBlocks(t, waitingDoc) {
		if b.lang != "sql" {
			if strings.HasPrefix(b.lang, "sql") {
				t.Errorf("docs/waiting.md:%d: unknown fence %q; use sql", b.line, b.lang)
			}
			continue
		}
		res, err := conn.PgConn().Exec(ctx, b.text).ReadAll()
		if err != nil {
			t.Fatalf("docs/waiting.md:%d: the SQL block under %q fails: %v\n%s", b.line, b.section, err, b.text)
		}
		results = append(results, res)
		if len(results) == 1 {
			rs := testenv.Redis(t)
			rdb := redis.NewClient(&redis.Options{Addr: rs.Addr})
			defer rdb.Close()
			s, err := scheduler.New(scheduler.Config{Store: st, Redis: rdb, Now: func() time.Time { return clock }})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Tick(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(results) < 7 {
		t.Fatalf("docs/waiting.md has %d SQL blocks, want 7; update this test", len(results))
	}
	rows := func(block, stmt int) []string {
		t.Helper()
		if len(results[block]) <= stmt {
			t.Fatalf("block %d has %d statements, want %d", block, len(results[block]), stmt+1)
		}
		var out []string
		for _, r := range results[block][stmt].Rows {
			var cols []string
			for _, c := range r {
				cols = append(cols, string(c))
			}
			out = append(out, strings.Join(cols, "|"))
		}
		return out
	}
	local := opens.Format("2006-01-02 15:04") + " Europe/Paris"
	for _, c := range []struct {
		block, stmt int
		what        string
		want        []string // a substring of each row, in order
	}{
		{1, 0, "a campaign's waits", []string{"hours|outside working hours|3|", "deferred|deferred after cannot_resend_yet|1|"}},
		{1, 1, "its next targets", []string{local, local, local, "deferred"}},
		{2, 0, "an account's waits", []string{"hours|outside working hours|3|", "deferred|deferred after cannot_resend_yet|1|"}},
		{3, 0, "paused campaigns", nil},
		{4, 0, "accounts not active", nil},
		{5, 0, "account waits", []string{"jane-linkedin|invite|hours|outside working hours|"}},
		{5, 1, "windows", []string{"jane-linkedin|invite|25|1 day|0"}},
		{6, 0, "deferrals", []string{"deferred after cannot_resend_yet|1|"}},
	} {
		got := rows(c.block, c.stmt)
		ok := len(got) == len(c.want)
		for i := 0; ok && i < len(got); i++ {
			ok = strings.Contains(got[i], c.want[i])
		}
		if !ok {
			t.Errorf("docs/waiting.md, %s: got rows\n%s\nwant rows containing\n%s", c.what, strings.Join(got, "\n"), strings.Join(c.want, "\n"))
		}
	}
	if got := rows(5, 0); len(got) == 1 && !strings.Contains(got[0], local) {
		t.Errorf("account wait %q: want until %s", got[0], local)
	}
}
