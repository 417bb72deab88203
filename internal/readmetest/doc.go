// Package readmetest holds the tests that keep the documentation honest:
// they run every ```sql block of the top-level README.md, in order, on a
// freshly migrated database, and every ```sql block of each docs/*.md page,
// in order, on a fresh database where the README's blocks have run first
// (so a page may use the README's example rows; a page that holds the line
// <!-- readmetest: standalone --> runs on an empty database instead), and
// check the state they leave. A block fenced ```sql-no-test is shown to
// readers but not run.
package readmetest
