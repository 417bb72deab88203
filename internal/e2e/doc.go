// Package e2e holds the pipeline's end-to-end tests: real Postgres, real
// Redis, real asynq, and the provider simulator over HTTP, with the
// scheduler and workers in-process (harness_test.go) or as separate
// processes of the built binary (multiprocess_test.go).
package e2e
