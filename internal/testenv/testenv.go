// Package testenv gives each test its own Postgres database (migrated) and
// its own Redis server, and removes them when the test ends.
//
// Postgres comes from OUTREACH_TEST_DATABASE_URL when set, else from the local server on 127.0.0.1:5432 if it answers, else a
// throwaway server started for the test binary (see Main). Redis is always a
// throwaway redis-server per test.
//
// Migrating a database takes far longer than copying one, so a test binary
// migrates once, into a template database of its own
// (outreach_tmpl_<pid>_<random>: several test binaries share one server),
// and each test's database is a copy of it (CREATE DATABASE … TEMPLATE).
// Main drops the template when the binary ends.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/outreach-dev/outreach/internal/throwaway"
	"github.com/outreach-dev/outreach/store"
)

var (
	adminOnce sync.Once
	adminURL  string
	adminErr  error
	ownPG     *throwaway.Server

	tmplOnce sync.Once
	tmplName string // set once the template database exists, so Main drops it
	tmplErr  error

	// Test databases are dropped in the background once their test ends
	// (DROP DATABASE waits for a checkpoint); Main waits for the drops
	// and reports the ones that failed.
	drops      sync.WaitGroup
	dropMu     sync.Mutex
	dropErrors []error
)

// Main runs the tests of a package, then drops the template database the
// tests were copied from and stops any throwaway Postgres it started. Use it
// from TestMain: func TestMain(m *testing.M) { testenv.Main(m) }.
func Main(m *testing.M) {
	code := m.Run()
	drops.Wait()
	errs := append(dropErrors, dropTemplate())
	for _, err := range errs {
		if err == nil {
			continue
		}
		fmt.Fprintf(os.Stderr, "testenv: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	if ownPG != nil {
		_ = ownPG.Stop()
	}
	os.Exit(code)
}

func admin() (string, error) {
	adminOnce.Do(func() {
		if u := os.Getenv("OUTREACH_TEST_DATABASE_URL"); u != "" {
			adminURL = u
			return
		}
		const local = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable&connect_timeout=2"
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		if c, err := pgx.Connect(ctx, local); err == nil {
			c.Close(ctx)
			adminURL = local
			return
		}
		ownPG, adminErr = throwaway.StartPostgres(context.Background())
		if adminErr == nil {
			adminURL = ownPG.URL
		}
	})
	return adminURL, adminErr
}

// databaseURL returns base with its database name replaced by name.
func databaseURL(base, name string) (string, error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", fmt.Errorf("parse test database URL: %w", err)
	}
	u.Path = "/" + name
	return u.String(), nil
}

// templateDB returns the name of this binary's migrated template database,
// creating and migrating it on the first call.
func templateDB(ctx context.Context, base string) (string, error) {
	tmplOnce.Do(func() {
		tmplErr = func() error {
			name := fmt.Sprintf("outreach_tmpl_%d_%s", os.Getpid(), randomHex(4))
			if err := store.CreateDatabase(ctx, base, name, ""); err != nil {
				return fmt.Errorf("create template database: %w", err)
			}
			tmplName = name
			dsn, err := databaseURL(base, name)
			if err != nil {
				return err
			}
			if _, err := store.Migrate(ctx, dsn); err != nil {
				return fmt.Errorf("migrate template database: %w", err)
			}
			if err := quietTemplate(ctx, dsn); err != nil {
				return err
			}
			// CREATE DATABASE … TEMPLATE refuses a template with sessions
			// on it. Migrate closed its own; refuse new ones, and end any
			// that has not gone yet.
			return store.CloseDatabase(ctx, base, name)
		}()
	})
	return tmplName, tmplErr
}

// dropTemplate drops the template database, if this binary made one.
func dropTemplate() error {
	if tmplName == "" {
		return nil
	}
	base, err := admin()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := store.DropDatabase(ctx, base, tmplName); err != nil {
		return fmt.Errorf("template: %w", err)
	}
	tmplName = ""
	return nil
}

// dropDatabase drops the database name in the background; Main waits for it.
func dropDatabase(base, name string) {
	drops.Add(1)
	go func() {
		defer drops.Done()
		err := func() error {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			return store.DropDatabase(ctx, base, name)
		}()
		if err != nil {
			dropMu.Lock()
			dropErrors = append(dropErrors, fmt.Errorf("test database: %w", err))
			dropMu.Unlock()
		}
	}()
}

// DatabaseURL creates a database for the test, migrated to the latest
// schema, and returns its URL. The database is dropped when the test ends
// (in the background). The package's TestMain must call Main, which waits
// for the drops and drops the template the database is copied from.
func DatabaseURL(t testing.TB) string {
	t.Helper()
	return newDatabase(t, true)
}

// EmptyDatabaseURL creates an empty database for the test, with no schema
// (as `createdb` leaves it), and returns its URL. The database is dropped
// when the test ends, as with DatabaseURL.
func EmptyDatabaseURL(t testing.TB) string {
	t.Helper()
	return newDatabase(t, false)
}

func newDatabase(t testing.TB, migrated bool) string {
	t.Helper()
	base, err := admin()
	if err != nil {
		t.Fatalf("no Postgres for tests (run `make test`, or set OUTREACH_TEST_DATABASE_URL): %v", err)
	}
	ctx := context.Background()
	name := "outreach_test_" + randomHex(6)
	tmpl := ""
	if migrated {
		if tmpl, err = templateDB(ctx, base); err != nil {
			t.Fatalf("template database for tests: %v", err)
		}
	}
	if err := store.CreateDatabase(ctx, base, name, tmpl); err != nil {
		t.Fatalf("test database: %v", err)
	}
	t.Cleanup(func() { dropDatabase(base, name) })
	dsn, err := databaseURL(base, name)
	if err != nil {
		t.Fatal(err)
	}
	return dsn
}

// Store opens a store on a fresh migrated database for the test.
func Store(t testing.TB) (*store.Store, string) {
	t.Helper()
	dsn := DatabaseURL(t)
	st, err := store.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	return st, dsn
}

// DB opens a pool of its own on the test database dsn, for the fixtures and
// checks of store/storetest (tests outside store hold no SQL; the store
// exports no pool). It is closed when the test ends.
func DB(t testing.TB, dsn string) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		t.Fatalf("test database URL: %v", err)
	}
	cfg.MaxConns = 4
	db, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatalf("open test database: %v", err)
	}
	t.Cleanup(db.Close)
	return db
}

// StoreDB opens a store on a fresh migrated database for the test, as
// Store does, and a pool of the test's own on the same database (DB).
func StoreDB(t testing.TB) (*store.Store, *pgxpool.Pool) {
	t.Helper()
	st, dsn := Store(t)
	return st, DB(t, dsn)
}

// Redis starts a redis-server for the test and returns it; it is stopped
// when the test ends.
func Redis(t testing.TB) *throwaway.Server {
	t.Helper()
	s, err := throwaway.StartRedis(context.Background())
	if err != nil {
		t.Fatalf("start redis-server for test (run `make test` to install it): %v", err)
	}
	t.Cleanup(func() { _ = s.Stop() })
	return s
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	return hex.EncodeToString(b)
}
