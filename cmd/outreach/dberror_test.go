package main

import (
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/outreach-dev/outreach/internal/testenv"
)

// TestBeforeMigrate: commands run on a database that `createdb` made but
// `outreach migrate` never touched say to run outreach migrate, rather
// than showing a missing relation alone.
func TestBeforeMigrate(t *testing.T) {
	t.Setenv("DATABASE_URL", testenv.EmptyDatabaseURL(t))
	t.Setenv("LOG_FORMAT", "text")
	for _, args := range [][]string{
		{"status"},
		{"status", "--json"},
		{"limits", "show", "jane"},
		{"pause", "campaign", "cto-q3"},
		{"account", "add", "jane", "--provider", "unipile", "--provider-account-id", "x"},
	} {
		code, _, errs := cli(t, args...)
		if code != exitError || !strings.Contains(errs, "run `outreach migrate` first") {
			t.Errorf("outreach %s before migrate: exit %d, stderr %q; want exit %d and \"run `outreach migrate` first\"",
				strings.Join(args, " "), code, errs, exitError)
		}
	}
	// Once migrated, status works.
	mustRun(t, "migrate")
	mustRun(t, "status")
}

// TestMissingDatabase: a DATABASE_URL naming a database that does not
// exist says how to create it.
func TestMissingDatabase(t *testing.T) {
	u, err := url.Parse(testenv.EmptyDatabaseURL(t))
	if err != nil {
		t.Fatal(err)
	}
	name := strings.TrimPrefix(u.Path, "/") + "_missing"
	u.Path = "/" + name
	t.Setenv("DATABASE_URL", u.String())
	t.Setenv("LOG_FORMAT", "text")
	csv := t.TempDir() + "/targets.csv"
	if err := os.WriteFile(csv, []byte("identifier\njane-doe\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"status"}, {"migrate"}, {"import", csv, "--campaign", "x"}} {
		code, _, errs := cli(t, args...)
		if code != exitError || !strings.Contains(errs, "createdb") || !strings.Contains(errs, " "+name+"`") ||
			!strings.Contains(errs, "does not exist") {
			t.Errorf("outreach %s without its database: exit %d, stderr %q; want exit %d and how to create %s with createdb",
				strings.Join(args, " "), code, errs, exitError, name)
		}
	}
}
