package testenv

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/outreach-dev/outreach/store"
)

func TestMain(m *testing.M) { Main(m) }

// databases returns the names of the server's databases that start with
// prefix.
func databases(t *testing.T, prefix string) []string {
	t.Helper()
	base, err := admin()
	if err != nil {
		t.Fatal(err)
	}
	names, err := store.Databases(context.Background(), base, prefix)
	if err != nil {
		t.Fatal(err)
	}
	return names
}

func dbName(t *testing.T, dsn string) string {
	t.Helper()
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	return cfg.Database
}

// TestDatabasesAreMigratedCopies checks that each test gets its own
// database at the latest schema, that an empty one has no schema, and that
// both are dropped once the test has ended.
func TestDatabasesAreMigratedCopies(t *testing.T) {
	ctx := context.Background()
	var names []string
	t.Run("copies", func(t *testing.T) {
		a, b := DatabaseURL(t), DatabaseURL(t)
		names = append(names, dbName(t, a), dbName(t, b))
		if a == b {
			t.Fatalf("two tests share the database %s", a)
		}
		for _, dsn := range []string{a, b} {
			cur, latest, err := store.SchemaVersion(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			if cur != latest || latest == 0 {
				t.Errorf("%s: schema version %d, want the latest %d", dbName(t, dsn), cur, latest)
			}
		}
		// A write to one copy is not seen in the other.
		sa, err := store.Open(ctx, a)
		if err != nil {
			t.Fatal(err)
		}
		defer sa.Close()
		if _, err := sa.CreateAccount(ctx, store.NewAccount{Name: "only-in-a", Provider: "partoo", ProviderAccountID: "x"}); err != nil {
			t.Fatal(err)
		}
		sb, err := store.Open(ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		defer sb.Close()
		accounts, err := sb.Accounts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(accounts); n != 0 {
			t.Errorf("the second copy sees %d accounts written to the first", n)
		}

		e := EmptyDatabaseURL(t)
		names = append(names, dbName(t, e))
		tables, err := store.Tables(ctx, e)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(tables); n != 0 {
			t.Errorf("the empty database has %d tables: %v", n, tables)
		}
	})
	drops.Wait() // the drops run in the background
	for _, n := range names {
		if left := databases(t, n); len(left) != 0 {
			t.Errorf("database %s is still there after its test ended", n)
		}
	}
}

// TestMainDropsTheTemplate runs this test binary again as a child that
// creates a database, and checks that the child's template database
// existed while it ran and is gone once it exited.
func TestMainDropsTheTemplate(t *testing.T) {
	if os.Getenv("TESTENV_CHILD") != "" {
		dsn := DatabaseURL(t)
		fmt.Printf("template=%s database=%s\n", tmplName, dbName(t, dsn))
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestMainDropsTheTemplate$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), "TESTENV_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child test binary: %v\n%s", err, out)
	}
	prefix := fmt.Sprintf("outreach_tmpl_%d_", cmd.Process.Pid)
	if !strings.Contains(string(out), "template="+prefix) {
		t.Fatalf("the child did not report a template named %s…:\n%s", prefix, out)
	}
	if left := databases(t, prefix); len(left) != 0 {
		t.Errorf("the child's template %v is still there after it exited", left)
	}
}

// TestEveryUserCallsMain checks that every package whose tests use testenv
// has a TestMain calling testenv.Main: without it the template database
// and the databases still being dropped would outlive the test binary.
func TestEveryUserCallsMain(t *testing.T) {
	const root = "../.."
	users := map[string]bool{} // directory -> calls Main
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") && path != root || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if !strings.Contains(string(src), `"github.com/outreach-dev/outreach/internal/testenv"`) {
			return nil
		}
		dir := filepath.Dir(path)
		users[dir] = users[dir] || strings.Contains(string(src), "testenv.Main(")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(users) == 0 {
		t.Fatal("found no package using testenv; is root right?")
	}
	for dir, ok := range users {
		if !ok {
			t.Errorf("%s uses testenv but no test file calls testenv.Main: add func TestMain(m *testing.M) { testenv.Main(m) }", dir)
		}
	}
}
