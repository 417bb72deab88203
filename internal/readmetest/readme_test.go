package readmetest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"text/template"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/outreach-dev/outreach/internal/testenv"
	"github.com/outreach-dev/outreach/scheduler"
	"github.com/outreach-dev/outreach/store"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// block is one fenced code block of the README.
type block struct {
	lang    string // the fence's info string: sql, sql-no-test, sh, ...
	line    int    // of the opening fence, 1-based
	section string // the nearest heading above it, without the #s
	text    string
}

// readBlocks returns the fenced code blocks of the markdown file at path.
// Only fences at the start of a line count.
func readBlocks(t *testing.T, path string) []block {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []block
	var cur *block
	var section string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case cur == nil && strings.HasPrefix(line, "```"):
			cur = &block{lang: strings.TrimSpace(strings.TrimPrefix(line, "```")), line: n, section: section}
		case cur != nil && strings.TrimSpace(line) == "```":
			out = append(out, *cur)
			cur = nil
		case cur != nil:
			cur.text += line + "\n"
		case strings.HasPrefix(line, "#"):
			section = strings.TrimSpace(strings.TrimLeft(line, "#"))
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if cur != nil {
		t.Fatalf("%s:%d: code block never closed", path, cur.line)
	}
	return out
}

// root is the repository's top directory, seen from this package.
const root = "../.."

// sqlBlocks returns the blocks of the markdown file at path that the tests
// run, and fails the test on a fence of an unknown sql kind.
func sqlBlocks(t *testing.T, path string) []block {
	t.Helper()
	var out []block
	for _, b := range readBlocks(t, path) {
		switch {
		case b.lang == "sql":
			out = append(out, b)
		case b.lang == "sql-no-test":
		case strings.HasPrefix(b.lang, "sql"):
			t.Errorf("%s:%d: unknown fence %q; use sql (run by this test) or sql-no-test", path, b.line, b.lang)
		}
	}
	return out
}

// docRun is a fresh database on which markdown files' SQL blocks run.
type docRun struct {
	t    *testing.T
	ctx  context.Context
	conn *pgx.Conn
	st   *store.Store
}

func newDocRun(t *testing.T) *docRun {
	t.Helper()
	ctx := context.Background()
	dsn := testenv.DatabaseURL(t)
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(ctx) })
	st, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	return &docRun{t: t, ctx: ctx, conn: conn, st: st}
}

// run runs the SQL blocks of the markdown file at path in order and
// returns, per section, the results of each block's statements. Before
// the first block under a "Reading progress" heading it lets the scheduler
// prepare the targets (normalise identifiers, fail bad ones), as a running
// system would have, so the progress queries have something to show.
func (r *docRun) run(path string) map[string][][]*pgconn.Result {
	t := r.t
	t.Helper()
	results := map[string][][]*pgconn.Result{}
	prepared := false
	blocks := sqlBlocks(t, path)
	for _, b := range blocks {
		if b.section == "Reading progress" && !prepared {
			if _, err := r.st.PrepareTargets(r.ctx, 1000, scheduler.Normalize); err != nil {
				t.Fatalf("prepare the targets of %s: %v", path, err)
			}
			prepared = true
		}
		res, err := r.conn.PgConn().Exec(r.ctx, b.text).ReadAll()
		if err != nil {
			t.Fatalf("%s:%d: the SQL block under %q fails against the schema: %v\n%s", path, b.line, b.section, err, b.text)
		}
		results[b.section] = append(results[b.section], res)
	}
	t.Logf("ran %d SQL blocks of %s", len(blocks), path)
	return results
}

// check runs sql and compares its rows with want.
func (r *docRun) check(what, sql string, want any, args ...any) {
	t := r.t
	t.Helper()
	rows, err := r.conn.Query(r.ctx, sql, args...)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	got, err := pgx.CollectRows(rows, pgx.RowToMap)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if g, w := fmt.Sprint(got), fmt.Sprint(want); g != w {
		t.Errorf("%s:\n got %s\nwant %s", what, g, w)
	}
}

// showsFailure reports whether any row of res holds invalid_identifier.
func showsFailure(res []*pgconn.Result) bool {
	for _, r := range res {
		for _, row := range r.Rows {
			for _, v := range row {
				if string(v) == "invalid_identifier" {
					return true
				}
			}
		}
	}
	return false
}

// checkTemplates renders the campaigns' templates for their pending
// targets, within Unipile's 300 characters.
func (r *docRun) checkTemplates() {
	t := r.t
	t.Helper()
	rows, err := r.conn.Query(r.ctx, `SELECT c.message_template, t.identifier, t.vars FROM targets t
		JOIN campaigns c ON c.id = t.campaign_id WHERE t.status = 'pending' AND c.message_template <> ''`)
	if err != nil {
		t.Fatal(err)
	}
	type tmplRow struct {
		Template, Identifier string
		Vars                 map[string]any
	}
	trs, err := pgx.CollectRows(rows, pgx.RowToStructByPos[tmplRow])
	if err != nil {
		t.Fatal(err)
	}
	if len(trs) == 0 {
		t.Fatal("no target has a message template")
	}
	for _, r := range trs {
		tmpl, err := template.New("message").Option("missingkey=error").Parse(r.Template)
		if err != nil {
			t.Fatalf("the template does not parse: %v", err)
		}
		var buf bytes.Buffer
		d := scheduler.MessageData{FirstName: "Ann", LastName: "Lee", Identifier: r.Identifier, Vars: r.Vars}
		if err := tmpl.Execute(&buf, d); err != nil {
			t.Errorf("the template fails for %s: %v", r.Identifier, err)
			continue
		}
		if n := utf8.RuneCountInString(buf.String()); n > 300 {
			t.Errorf("the message for %s is %d characters, over Unipile's 300", r.Identifier, n)
		}
		t.Logf("%s: %q", r.Identifier, buf.String())
	}
}

// TestReadmeSQL runs the README's SQL blocks in order on a fresh database
// and checks the state they leave and what the progress queries show.
func TestReadmeSQL(t *testing.T) {
	t.Parallel()
	r := newDocRun(t)
	results := r.run(root + "/README.md")

	r.check("after the README's SQL, accounts", `SELECT name, provider, status FROM accounts ORDER BY name`, []map[string]any{
		{"name": "jane-linkedin", "provider": "unipile", "status": "active"},
	})
	r.check("after the README's SQL, limits", `SELECT a.name, l.action, l.max_count, l.per::text AS per FROM account_limits l
		JOIN accounts a ON a.id = l.account_id ORDER BY a.name, l.action, l.per`, []map[string]any{
		{"name": "jane-linkedin", "action": "invite", "max_count": 25, "per": "1 day"},
		{"name": "jane-linkedin", "action": "invite", "max_count": 100, "per": "7 days"},
		{"name": "jane-linkedin", "action": "lookup", "max_count": 80, "per": "1 day"},
	})
	r.check("after the README's SQL, targets per campaign and status", `SELECT c.name, c.status AS campaign_status, t.status, count(*) AS n
		FROM campaigns c JOIN targets t ON t.campaign_id = c.id GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`, []map[string]any{
		{"name": "cto-q3", "campaign_status": "active", "status": "failed", "n": 1},
		{"name": "cto-q3", "campaign_status": "active", "status": "pending", "n": 3},
	})
	// The README says URLs are normalised and targets take their
	// campaign's account.
	r.check("after the README's SQL, normalised identifiers", `SELECT t.normalized_identifier, a.name FROM targets t JOIN accounts a ON a.id = t.account_id
		WHERE t.status = 'pending' ORDER BY t.id`, []map[string]any{
		{"normalized_identifier": "jane-doe", "name": "jane-linkedin"},
		{"normalized_identifier": "john-smith", "name": "jane-linkedin"},
		{"normalized_identifier": "marie-curie-1867", "name": "jane-linkedin"},
	})

	// The progress queries show what the README says.
	progress := results["Reading progress"]
	if len(progress) < 2 {
		t.Fatalf(`README.md has %d SQL blocks under "### Reading progress", want the per-status counts then the failures; update this test`, len(progress))
	}
	if rows := progress[0][0].Rows; len(rows) != 2 {
		t.Errorf("the README's progress query returned %d rows, want 2 (a campaign and status each)", len(rows))
	}
	if !showsFailure(progress[1]) {
		t.Error("the README's failure queries do not show the company page's invalid_identifier")
	}
	r.checkTemplates()
}

// TestDocsSQL runs the SQL blocks of each docs/*.md page in order, on a
// fresh database where the README's have run first (so a page can use the
// README's example rows; a page holding standaloneMark runs on an empty
// one), and checks the state docs/sql.md leaves.
func TestDocsSQL(t *testing.T) {
	t.Parallel()
	pages, err := filepath.Glob(root + "/docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	var withSQL []string
	for _, p := range pages {
		if len(sqlBlocks(t, p)) > 0 {
			withSQL = append(withSQL, p)
		}
	}
	if !slices.Contains(withSQL, root+"/docs/sql.md") {
		t.Fatalf("docs/sql.md has no SQL blocks (pages with SQL: %v); update this test", withSQL)
	}
	for _, p := range withSQL {
		t.Run(filepath.Base(p), func(t *testing.T) {
			t.Parallel()
			r := newDocRun(t)
			if !standalone(t, p) {
				r.run(root + "/README.md")
			}
			results := r.run(p)
			if filepath.Base(p) == "sql.md" {
				checkSQLPage(r, results)
			}
		})
	}
}

// standaloneMark in a docs page makes its SQL run on an empty database,
// without the README's first.
const standaloneMark = "<!-- readmetest: standalone -->"

func standalone(t *testing.T, path string) bool {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Contains(data, []byte(standaloneMark))
}

// checkSQLPage checks the state that the README's SQL then docs/sql.md's
// leave, and what docs/sql.md's progress queries show.
func checkSQLPage(r *docRun, results map[string][][]*pgconn.Result) {
	t := r.t
	r.check("after docs/sql.md, accounts", `SELECT name, provider, status FROM accounts ORDER BY name`, []map[string]any{
		{"name": "jane-linkedin", "provider": "unipile", "status": "active"},
		{"name": "partoo-main", "provider": "partoo", "status": "active"},
		{"name": "salon-lyon", "provider": "altegio", "status": "active"},
	})
	r.check("after docs/sql.md, limits", `SELECT a.name, l.action, l.max_count, l.per::text AS per FROM account_limits l
		JOIN accounts a ON a.id = l.account_id ORDER BY a.name, l.action, l.per`, []map[string]any{
		{"name": "jane-linkedin", "action": "invite", "max_count": 15, "per": "1 day"},
		{"name": "jane-linkedin", "action": "invite", "max_count": 100, "per": "7 days"},
		{"name": "jane-linkedin", "action": "lookup", "max_count": 80, "per": "1 day"},
		{"name": "salon-lyon", "action": "invite", "max_count": 50, "per": "01:00:00"},
	})
	r.check("after docs/sql.md, targets per campaign and status", `SELECT c.name, c.status AS campaign_status, t.status, count(*) AS n
		FROM campaigns c JOIN targets t ON t.campaign_id = c.id GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`, []map[string]any{
		{"name": "cto-q3", "campaign_status": "active", "status": "failed", "n": 1},
		{"name": "cto-q3", "campaign_status": "active", "status": "pending", "n": 3},
		{"name": "partoo-onboarding", "campaign_status": "active", "status": "pending", "n": 1},
		{"name": "salon-staff", "campaign_status": "active", "status": "pending", "n": 2},
	})
	r.check("after docs/sql.md, normalised identifiers", `SELECT t.normalized_identifier, a.name FROM targets t JOIN accounts a ON a.id = t.account_id
		WHERE t.status = 'pending' ORDER BY t.id`, []map[string]any{
		{"normalized_identifier": "jane-doe", "name": "jane-linkedin"},
		{"normalized_identifier": "john-smith", "name": "jane-linkedin"},
		{"normalized_identifier": "marie-curie-1867", "name": "jane-linkedin"},
		{"normalized_identifier": "f7d2a1c9e0b4", "name": "partoo-main"},
		{"normalized_identifier": "anna.petit@example.com", "name": "salon-lyon"},
		{"normalized_identifier": "+33612345678", "name": "salon-lyon"},
	})

	// The latest failures, then the ledger queries (nothing to count yet,
	// but the limits one lists every limit) and the waiting ones (the
	// campaign's live targets, the accounts).
	progress := results["Reading progress"]
	if len(progress) < 3 {
		t.Fatalf(`docs/sql.md has %d SQL blocks under "## Reading progress", want 3 (latest failures, ledger, waiting); update this test`, len(progress))
	}
	if !showsFailure(progress[0]) {
		t.Error("docs/sql.md's latest failures do not show the company page's invalid_identifier")
	}
	for _, c := range []struct {
		block, stmt, rows int
		what              string
	}{
		{1, 1, 4, "limits in use"},
		{1, 2, 1, "7-day count"},
		{2, 0, 3, "waiting targets of cto-q3"},
		{2, 1, 3, "accounts"},
	} {
		if len(progress[c.block]) <= c.stmt {
			t.Errorf("progress block %d has %d statements, want the %s query at %d", c.block, len(progress[c.block]), c.what, c.stmt)
			continue
		}
		if got := len(progress[c.block][c.stmt].Rows); got != c.rows {
			t.Errorf("docs/sql.md's %s query returned %d rows, want %d", c.what, got, c.rows)
		}
	}
	r.checkTemplates()
}

// TestReadBlocks checks the fence parser on the markers the README uses.
func TestReadBlocks(t *testing.T) {
	t.Parallel()
	path := t.TempDir() + "/x.md"
	md := "# A\n```sql\nSELECT 1;\n```\ntext with ```sql inline\n## B\n```sql-no-test\nSELECT nope;\n```\n```sh\nls\n```\n"
	if err := os.WriteFile(path, []byte(md), 0o644); err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(readBlocks(t, path))
	want := fmt.Sprint([]block{
		{lang: "sql", line: 2, section: "A", text: "SELECT 1;\n"},
		{lang: "sql-no-test", line: 7, section: "B", text: "SELECT nope;\n"},
		{lang: "sh", line: 10, section: "B", text: "ls\n"},
	})
	if got != want {
		t.Errorf("readBlocks:\n got %s\nwant %s", got, want)
	}
}
