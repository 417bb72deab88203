package csvimport_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/outreach-dev/outreach/csvimport"
	"github.com/outreach-dev/outreach/internal/testenv"
	"github.com/outreach-dev/outreach/store"
	"github.com/outreach-dev/outreach/store/storetest"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// setup makes an account and a campaign; it returns the store, a pool of
// the test's own on its database (for checks) and the campaign.
func setup(t *testing.T) (*store.Store, *pgxpool.Pool, int64) {
	t.Helper()
	st, db := testenv.StoreDB(t)
	ctx := context.Background()
	acc, err := st.CreateAccount(ctx, store.NewAccount{Name: "li", Provider: "unipile", ProviderAccountID: "a1"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := st.CreateCampaign(ctx, store.Campaign{Name: "spring", AccountID: acc})
	if err != nil {
		t.Fatal(err)
	}
	return st, db, c
}

type row struct {
	Identifier string
	Vars       map[string]string
}

func targets(t *testing.T, db *pgxpool.Pool, campaign int64) []row {
	t.Helper()
	var out []row
	for _, r := range storetest.CampaignVars(t, db, campaign) {
		out = append(out, row(r))
	}
	return out
}

func TestBadRowsSkippedWithLineNumbers(t *testing.T) {
	t.Parallel()
	st, db, c := setup(t)
	in := "\ufeffidentifier,first_name,company\n" + // line 1, with a spreadsheet BOM
		"https://www.linkedin.com/in/jane-doe/,Jane,Acme\n" + // 2 good
		"john-smith,John\n" + // 3 too few fields
		",Nobody,Acme\n" + // 4 empty identifier
		"bad-utf8,\xff\xfe,Acme\n" + // 5 invalid UTF-8
		"\"multi\nline\",Multi,\"Line, Inc\"\n" + // 6-7 good, quoted newline
		"amelie-dubois,Amélie,Société Générale,extra\n" + // 8 too many fields
		"john-smith,John,Initech\n" + // 9 good
		"john-smith,John,Initech again\n" + // 10 duplicate in file
		"a\"b,Quote,Acme\n" // 11 bare quote
	res, err := csvimport.Import(context.Background(), st, strings.NewReader(in), csvimport.Options{CampaignID: c})
	if err != nil {
		t.Fatal(err)
	}
	wantBad := []csvimport.BadRow{
		{Line: 3, Reason: "2 fields, want 3"},
		{Line: 4, Reason: "empty identifier"},
		{Line: 5, Reason: `column "first_name" is not valid UTF-8`},
		{Line: 8, Reason: "4 fields, want 3"},
		{Line: 11, Reason: `bare " in non-quoted-field`},
	}
	if d := cmp.Diff(wantBad, res.BadRows); d != "" {
		t.Errorf("bad rows (-want +got):\n%s", d)
	}
	if res.Rows != 9 || res.Good != 4 || res.Bad != 5 || res.Inserted != 3 || res.Duplicates != 1 {
		t.Errorf("result = %+v, want 9 rows, 4 good, 5 bad, 3 inserted, 1 duplicate", res)
	}
	want := []row{
		{"https://www.linkedin.com/in/jane-doe/", map[string]string{"first_name": "Jane", "company": "Acme"}},
		{"multi\nline", map[string]string{"first_name": "Multi", "company": "Line, Inc"}},
		{"john-smith", map[string]string{"first_name": "John", "company": "Initech"}},
	}
	got := targets(t, db, c)
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("targets (-want +got):\n%s", d)
	}

	// Importing again adds nothing and reports duplicates.
	res, err = csvimport.Import(context.Background(), st, strings.NewReader(in), csvimport.Options{CampaignID: c})
	if err != nil {
		t.Fatal(err)
	}
	if res.Inserted != 0 || res.Duplicates != 4 {
		t.Errorf("second import: %+v, want 0 inserted, 4 duplicates", res)
	}
}

func TestHeaderErrors(t *testing.T) {
	t.Parallel()
	st, _, c := setup(t)
	for _, tc := range []struct{ name, in, col string }{
		{"empty file", "", ""},
		{"no identifier column", "email,name\na@b.c,A\n", ""},
		{"repeated column", "identifier,name,name\nx,a,b\n", ""},
		{"empty column name", "identifier,,name\nx,a,b\n", ""},
	} {
		_, err := csvimport.Import(context.Background(), st, strings.NewReader(tc.in), csvimport.Options{CampaignID: c, IdentifierColumn: tc.col})
		if !errors.Is(err, csvimport.ErrHeader) {
			t.Errorf("%s: err = %v, want ErrHeader", tc.name, err)
		}
	}
	// A custom identifier column.
	res, err := csvimport.Import(context.Background(), st, strings.NewReader("email,name\na@b.c,A\n"),
		csvimport.Options{CampaignID: c, IdentifierColumn: "email"})
	if err != nil || res.Inserted != 1 {
		t.Errorf("--identifier-column email: %+v, %v", res, err)
	}
}

// genCSV streams n rows without holding them in memory.
func genCSV(n int, every int) io.Reader {
	pr, pw := io.Pipe()
	go func() {
		fmt.Fprintln(pw, "identifier,first_name,n")
		for i := 1; i <= n; i++ {
			if every > 0 && i%every == 0 {
				fmt.Fprintln(pw, ",missing")
				continue
			}
			fmt.Fprintf(pw, "person-%d,First%d,%d\n", i, i, i)
		}
		pw.Close()
	}()
	return pr
}

func TestLargeImportStreams(t *testing.T) {
	t.Parallel()
	st, _, c := setup(t)
	n := 100000
	if testing.Short() {
		n = 20000
	}
	var calls int
	res, err := csvimport.Import(context.Background(), st, genCSV(n, 50000), csvimport.Options{CampaignID: c,
		Progress: func(csvimport.Progress) { calls++ }})
	if err != nil {
		t.Fatal(err)
	}
	bad := int64(n / 50000)
	if res.Rows != int64(n) || res.Bad != bad || res.Inserted != int64(n)-bad {
		t.Errorf("result = %+v", res)
	}
	if calls < n/10000 {
		t.Errorf("progress called %d times, want at least %d", calls, n/10000)
	}
	for _, b := range res.BadRows {
		if (b.Line-1)%50000 != 0 {
			t.Errorf("bad row at line %d, want a multiple of 50000 plus the header", b.Line)
		}
	}
}
