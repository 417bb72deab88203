package readmetest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
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

const readme = "../../README.md"

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

// TestReadmeSQL runs the README's SQL blocks in order on a fresh database.
// Before the first block of "Reading progress" it lets the scheduler
// prepare the targets (normalise identifiers, fail bad ones), as a running
// system would have, so the progress queries have something to show.
func TestReadmeSQL(t *testing.T) {
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

	// results[section] holds, per SQL block of the section in order, the
	// results of its statements.
	results := map[string][][]*pgconn.Result{}
	prepared, ran := false, 0
	for _, b := range readBlocks(t, readme) {
		switch b.lang {
		case "sql":
		case "sql-no-test":
			continue
		default:
			if strings.HasPrefix(b.lang, "sql") {
				t.Errorf("README.md:%d: unknown fence %q; use sql (run by this test) or sql-no-test", b.line, b.lang)
			}
			continue
		}
		if b.section == "Reading progress" && !prepared {
			if _, err := st.PrepareTargets(ctx, 1000, scheduler.Normalize); err != nil {
				t.Fatalf("prepare the README's targets: %v", err)
			}
			prepared = true
		}
		res, err := conn.PgConn().Exec(ctx, b.text).ReadAll()
		if err != nil {
			t.Fatalf("README.md:%d: the SQL block under %q fails against the schema: %v\n%s", b.line, b.section, err, b.text)
		}
		results[b.section] = append(results[b.section], res)
		ran++
	}
	if !prepared {
		t.Fatal(`README.md has no SQL under "### Reading progress"; update this test`)
	}
	t.Logf("ran %d SQL blocks of README.md", ran)

	check := func(what, sql string, want any, args ...any) {
		t.Helper()
		rows, err := conn.Query(ctx, sql, args...)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		got, err := pgx.CollectRows(rows, pgx.RowToMap)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if g, w := fmt.Sprint(got), fmt.Sprint(want); g != w {
			t.Errorf("after the README's SQL, %s:\n got %s\nwant %s", what, g, w)
		}
	}
	check("accounts", `SELECT name, provider, status FROM accounts ORDER BY name`, []map[string]any{
		{"name": "jane-linkedin", "provider": "unipile", "status": "active"},
		{"name": "partoo-main", "provider": "partoo", "status": "active"},
		{"name": "salon-lyon", "provider": "altegio", "status": "active"},
	})
	check("limits", `SELECT a.name, l.action, l.max_count, l.per::text AS per FROM account_limits l
		JOIN accounts a ON a.id = l.account_id ORDER BY a.name, l.action, l.per`, []map[string]any{
		{"name": "jane-linkedin", "action": "invite", "max_count": 15, "per": "1 day"},
		{"name": "jane-linkedin", "action": "invite", "max_count": 100, "per": "7 days"},
		{"name": "jane-linkedin", "action": "lookup", "max_count": 80, "per": "1 day"},
		{"name": "salon-lyon", "action": "invite", "max_count": 50, "per": "01:00:00"},
	})
	check("targets per campaign and status", `SELECT c.name, c.status AS campaign_status, t.status, count(*) AS n
		FROM campaigns c JOIN targets t ON t.campaign_id = c.id GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`, []map[string]any{
		{"name": "cto-q3", "campaign_status": "active", "status": "failed", "n": 1},
		{"name": "cto-q3", "campaign_status": "active", "status": "pending", "n": 3},
		{"name": "partoo-onboarding", "campaign_status": "active", "status": "pending", "n": 1},
		{"name": "salon-staff", "campaign_status": "active", "status": "pending", "n": 2},
	})
	// The README says URLs are normalised and targets take their
	// campaign's account.
	check("normalised identifiers", `SELECT t.normalized_identifier, a.name FROM targets t JOIN accounts a ON a.id = t.account_id
		WHERE t.status = 'pending' ORDER BY t.id`, []map[string]any{
		{"normalized_identifier": "jane-doe", "name": "jane-linkedin"},
		{"normalized_identifier": "john-smith", "name": "jane-linkedin"},
		{"normalized_identifier": "marie-curie-1867", "name": "jane-linkedin"},
		{"normalized_identifier": "f7d2a1c9e0b4", "name": "partoo-main"},
		{"normalized_identifier": "anna.petit@example.com", "name": "salon-lyon"},
		{"normalized_identifier": "+33612345678", "name": "salon-lyon"},
	})

	// The progress queries show what the test expects.
	progress := results["Reading progress"]
	if len(progress) < 2 {
		t.Fatalf(`"Reading progress" has %d SQL blocks, want the per-status counts then the failures; update this test`, len(progress))
	}
	if rows := progress[0][0].Rows; len(rows) != 4 {
		t.Errorf("the README's progress query returned %d rows, want 4 (a campaign and status each)", len(rows))
	}
	var sawFailure bool
	for _, res := range progress[1] {
		for _, row := range res.Rows {
			for _, v := range row {
				sawFailure = sawFailure || string(v) == "invalid_identifier"
			}
		}
	}
	if !sawFailure {
		t.Error("the README's failure queries do not show the company page's invalid_identifier")
	}
	// The ledger queries have nothing to count yet, but the limits one
	// lists every limit, and the waiting one the campaign's live targets.
	if len(progress) < 4 {
		t.Fatalf(`"Reading progress" has %d SQL blocks, want 4 (status counts, failures, ledger, waiting); update this test`, len(progress))
	}
	for _, c := range []struct {
		block, stmt, rows int
		what              string
	}{
		{2, 1, 4, "limits in use"},
		{2, 2, 1, "7-day count"},
		{3, 0, 3, "waiting targets of cto-q3"},
		{3, 1, 3, "accounts"},
	} {
		if len(progress[c.block]) <= c.stmt {
			t.Errorf("progress block %d has %d statements, want the %s query at %d", c.block, len(progress[c.block]), c.what, c.stmt)
			continue
		}
		if got := len(progress[c.block][c.stmt].Rows); got != c.rows {
			t.Errorf("the README's %s query returned %d rows, want %d", c.what, got, c.rows)
		}
	}

	// The README's templates render for its targets, within Unipile's
	// 300 characters.
	rows, err := conn.Query(ctx, `SELECT c.message_template, t.identifier, t.vars FROM targets t
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
		t.Fatal("no README target has a message template")
	}
	for _, r := range trs {
		tmpl, err := template.New("message").Option("missingkey=error").Parse(r.Template)
		if err != nil {
			t.Fatalf("the README's template does not parse: %v", err)
		}
		var buf bytes.Buffer
		d := scheduler.MessageData{FirstName: "Ann", LastName: "Lee", Identifier: r.Identifier, Vars: r.Vars}
		if err := tmpl.Execute(&buf, d); err != nil {
			t.Errorf("the README's template fails for %s: %v", r.Identifier, err)
			continue
		}
		if n := utf8.RuneCountInString(buf.String()); n > 300 {
			t.Errorf("the README's message for %s is %d characters, over Unipile's 300", r.Identifier, n)
		}
		t.Logf("%s: %q", r.Identifier, buf.String())
	}
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
