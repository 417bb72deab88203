// Package readmetest holds the test that keeps the top-level README.md
// honest: it runs every ```sql block of the README, in order, against a
// freshly migrated database and checks the state they leave. A block fenced
// ```sql-no-test is shown to readers but not run.
package readmetest
