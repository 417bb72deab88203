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
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT datname FROM pg_database WHERE starts_with(datname, $1) ORDER BY 1`, prefix)
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
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
		ca, err := pgx.Connect(ctx, a)
		if err != nil {
			t.Fatal(err)
		}
		defer ca.Close(ctx)
		if _, err := ca.Exec(ctx, `INSERT INTO accounts (name, provider, provider_account_id) VALUES ('only-in-a', 'partoo', 'x')`); err != nil {
			t.Fatal(err)
		}
		cb, err := pgx.Connect(ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		defer cb.Close(ctx)
		var n int
		if err := cb.QueryRow(ctx, `SELECT count(*) FROM accounts`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("the second copy sees %d accounts written to the first", n)
		}

		e := EmptyDatabaseURL(t)
		names = append(names, dbName(t, e))
		ce, err := pgx.Connect(ctx, e)
		if err != nil {
			t.Fatal(err)
		}
		defer ce.Close(ctx)
		if err := ce.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE schemaname = 'public'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("the empty database has %d tables", n)
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
