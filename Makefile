# outreach: the two commands a new user needs are `make demo` (run the
# whole system against throwaway Postgres and Redis) and `make test`.

GO ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
export PATH := $(dir $(GO)):$(PATH)

.PHONY: all build test vet tidy demo bench deps clean

all: build

deps:
	@scripts/ensure-deps

build:
	$(GO) build -o bin/outreach ./cmd/outreach

vet:
	$(GO) vet ./...

## tidy: fail when go.mod or go.sum differ from what `go mod tidy` writes.
tidy:
	@$(GO) mod tidy -diff || { \
		echo 'make: go.mod or go.sum is not tidy (the diff is above): run `go mod tidy` and commit the result' >&2; \
		exit 1; }

## test: check go.mod is tidy, vet, and run every test against real Postgres
## and Redis: one throwaway Postgres for the run (internal/cmd/withpg), a
## throwaway Redis per test. Tests mostly wait on time, not CPU, so several
## packages (-p) and several tests of a package (-parallel) run at once.
TESTFLAGS ?= -count=1 -p 4 -parallel 8 -timeout 9m
test: deps tidy vet
	@scripts/ensure-browser
	$(GO) run ./internal/cmd/withpg $(GO) test $(TESTFLAGS) ./...

## demo: the simulator, scheduler, workers and dashboard together.
demo: deps build
	bin/outreach demo

## bench: the performance table of BENCHMARKS.md.
bench: deps build
	bin/outreach bench

clean:
	rm -rf bin
