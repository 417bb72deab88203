package storetest_test

import (
	"go/scanner"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// sqlStatement matches the start of an SQL statement in a Go string
// literal: the queries and the DDL the store runs.
var sqlStatement = regexp.MustCompile(`\b(SELECT|INSERT\s+INTO|UPDATE\s+[a-z_]+\s+SET|DELETE\s+FROM|` +
	`ALTER\s+(TABLE|DATABASE)|CREATE\s+(DATABASE|TABLE|INDEX|VIEW)|DROP\s+(DATABASE|TABLE)|TRUNCATE|COPY\s+[a-z_]+)\b`)

// sqlAllowed are the directories whose Go files may hold SQL: the store
// (and its test support, here), the migrations, the test that runs the
// README's and docs' SQL blocks verbatim, and the throwaway servers'
// own checks (a server answers SELECT 1).
var sqlAllowed = []string{"store", "migrations", "internal/readmetest", "internal/throwaway"}

// sqlIn returns the lines of src (a Go file) whose string literals hold
// SQL. Comments may name SQL; only literals can run it.
func sqlIn(name string, src []byte) []string {
	fset := token.NewFileSet()
	file := fset.AddFile(name, -1, len(src))
	var s scanner.Scanner
	s.Init(file, src, nil, 0)
	var found []string
	for {
		pos, tok, lit := s.Scan()
		if tok == token.EOF {
			return found
		}
		if tok == token.STRING && sqlStatement.MatchString(lit) {
			found = append(found, fset.Position(pos).String()+": "+strings.SplitN(sqlStatement.FindString(lit), "\n", 2)[0])
		}
	}
}

// TestNoSQLOutsideStore keeps SQL in one place (issue 11): no Go file,
// production or test, outside store, migrations, internal/readmetest and
// internal/throwaway holds SQL. Tests of other packages set up and check
// rows with storetest.
func TestNoSQLOutsideStore(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root: %v", err)
	}
	files := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if rel != "." && (strings.HasPrefix(d.Name(), ".") || d.Name() == "vendor" || d.Name() == "node_modules") {
				return filepath.SkipDir
			}
			for _, a := range sqlAllowed {
				if rel == a {
					return filepath.SkipDir
				}
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		for _, f := range sqlIn(rel, src) {
			t.Errorf("SQL outside store: %s (move it into store, or into store/storetest for a test)", f)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 50 {
		t.Fatalf("checked %d Go files under %s; the walk missed the repository", files, root)
	}
}

// TestSQLInFindsStatements: the check sees SQL in raw and interpreted
// literals, over several lines and built from pieces, and not in comments.
func TestSQLInFindsStatements(t *testing.T) {
	src := "package x\n\n" +
		"// SELECT in a comment is documentation.\n" +
		"var a = `UPDATE targets\n\tSET status = 'sent'`\n" +
		"var b = \"SELECT count(*) FROM sends\"\n" +
		"var c = \"CREATE DATABASE \" + name\n" +
		"var d = `INSERT INTO accounts (name) VALUES ($1)`\n" +
		"var e = \"DELETE FROM people\"\n" +
		"var f = \"ALTER TABLE do_not_contact DISABLE TRIGGER x\"\n" +
		"var g = \"select the account\"\n" +
		"var h = \"Update settings\"\n"
	got := sqlIn("x.go", []byte(src))
	want := []string{"x.go:4:9: UPDATE targets", "x.go:6:9: SELECT", "x.go:7:9: CREATE DATABASE", "x.go:8:9: INSERT INTO",
		"x.go:9:9: DELETE FROM", "x.go:10:9: ALTER TABLE"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("found:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
