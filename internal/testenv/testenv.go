// Package testenv gives each test its own Postgres database (migrated) and
// its own Redis server, and removes them when the test ends.
//
// Postgres comes from OUTREACH_TEST_DATABASE_URL when set, else from the local server on 127.0.0.1:5432 if it answers, else a
// throwaway server started for the test binary (see Main). Redis is always a
// throwaway redis-server per test.
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

	"github.com/outreach-dev/outreach/internal/throwaway"
	"github.com/outreach-dev/outreach/store"
)

var (
	adminOnce sync.Once
	adminURL  string
	adminErr  error
	ownPG     *throwaway.Server
)

// Main runs the tests of a package and stops any throwaway Postgres it
// started. Use it from TestMain: func TestMain(m *testing.M) { testenv.Main(m) }.
func Main(m *testing.M) {
	code := m.Run()
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

// DatabaseURL creates an empty database for the test, migrated to the
// latest schema, and returns its URL. The database is dropped when the
// test ends.
func DatabaseURL(t testing.TB) string {
	t.Helper()
	base, err := admin()
	if err != nil {
		t.Fatalf("no Postgres for tests (run `make test`, or set OUTREACH_TEST_DATABASE_URL): %v", err)
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("connect to test Postgres: %v", err)
	}
	defer conn.Close(ctx)
	name := "outreach_test_" + randomHex(6)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("drop test database: %v", err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop test database: %v", err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("parse test database URL: %v", err)
	}
	u.Path = "/" + name
	dsn := u.String()
	if _, err := store.Migrate(ctx, dsn); err != nil {
		t.Fatalf("migrate test database: %v", err)
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
