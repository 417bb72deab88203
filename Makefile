# outreach: the two commands a new user needs are `make demo` (run the
# whole system against throwaway Postgres and Redis) and `make test`.

GO ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
export PATH := $(dir $(GO)):$(PATH)

.PHONY: all build test vet demo bench deps clean

all: build

deps:
	@scripts/ensure-deps

build:
	$(GO) build -o bin/outreach ./cmd/outreach

vet:
	$(GO) vet ./...

## test: vet and run every test against real Postgres and Redis (throwaway
## servers are started when none is running).
test: deps vet
	@scripts/ensure-browser
	$(GO) test -count=1 -timeout 9m ./...

## demo: the simulator, scheduler, workers and dashboard together.
demo: deps build
	bin/outreach demo

## bench: the performance table of BENCHMARKS.md.
bench: deps build
	bin/outreach bench

clean:
	rm -rf bin
