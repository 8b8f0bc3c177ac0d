# iamc: two commands do everything on a fresh Debian machine.
#   make demo   an ephemeral PostgreSQL, the example compiled and applied, a walk-through
#   make test   every test, against a real ephemeral PostgreSQL (policies/*.iamtest first)
# PostgreSQL server binaries are located, or installed, by scripts/ensure-postgres.sh,
# pgbouncer (for the pooling tests) by scripts/ensure-pgbouncer.sh, pg_partman
# (for the partition tests) by scripts/ensure-partman.sh.

SHELL := /bin/bash
GO ?= go
export PATH := $(PATH):/usr/local/go/bin

PG_BIN_CMD = scripts/ensure-postgres.sh | tail -n 1
# pgbouncer for the pooling tests; without one they skip, saying why.
PGBOUNCER_CMD = scripts/ensure-pgbouncer.sh | tail -n 1
# pg_partman for the partition tests, in the server's extension directory;
# without it they skip, saying why.
PARTMAN_CMD = scripts/ensure-partman.sh | tail -n 1

.PHONY: demo test policy-test test-matrix build vet fmt-check golden clean bench bench-100m

demo:
	@PG_BIN="$$($(PG_BIN_CMD))" && export PG_BIN && $(GO) run ./cmd/iamc-demo

test: vet fmt-check policy-test
	@PG_BIN="$$($(PG_BIN_CMD))" && export PG_BIN && echo "PostgreSQL: $$PG_BIN" && \
		PGBOUNCER="$$($(PGBOUNCER_CMD))" && { [[ -z $$PGBOUNCER ]] || export PGBOUNCER; } && \
		echo "pgbouncer: $${PGBOUNCER:-none found (the pooling tests skip)}" && \
		{ PARTMAN="$$($(PARTMAN_CMD))" || true; } && \
		echo "pg_partman: $${PARTMAN:-not available (the pg_partman tests skip)}" && \
		$(GO) test -count=1 ./...

# make policy-test: `iamc test policies/`, the example's access tests (policies/*.iamtest)
# on a throwaway PostgreSQL, as a user runs them. go test runs them too (policytest).
policy-test:
	@PG_BIN="$$($(PG_BIN_CMD))" && export PG_BIN && $(GO) run ./cmd/iamc test policies/

# make test-matrix: the tests against PostgreSQL 14 to 18, one major at a time
# (scripts/test-matrix.sh; binaries from scripts/ensure-pg-version.sh), then a
# summary table. PG_VERSIONS="14 18" picks majors. Not run by CI (too long).
PG_VERSIONS ?= 14 15 16 17 18

test-matrix:
	@PG_VERSIONS="$(PG_VERSIONS)" GO="$(GO)" scripts/test-matrix.sh

# make bench: an ephemeral PostgreSQL, policies/ applied, the data set built,
# every request timed with RLS against its hand-written floor (README, Benchmark),
# then the compile-time benchmark. ROWS may list several sizes (ROWS=100000,1000000).
ROWS ?= 1000000
CLIENTS ?= 1,2
DURATION ?= 10s
BENCH_FLAGS ?=

bench:
	@PG_BIN="$$($(PG_BIN_CMD))" && export PG_BIN && mkdir -p out && \
		$(GO) run ./cmd/iamc bench --ephemeral --rows $(ROWS) --clients $(CLIENTS) --duration $(DURATION) \
			--json out/bench.json --svg out/bench.svg $(BENCH_FLAGS) && \
		$(GO) test -run '^$$' -bench BenchmarkBuild1000Resources -benchtime 3x ./bench/

# make bench-100m: one run at 1M and 100M todos (issue 20 §3; not in CI): the
# page functions, read, update, insert and delete, and the scale check (each
# RLS median at 100M within 1.3 times its median at 1M). Chats, notes, products
# and the insert floors' copy tables hold 1M rows at both sizes (--other-rows).
# The 100M build took 8 minutes here and needs ~25 GiB free (checked before
# it starts).
bench-100m:
	@PG_BIN="$$($(PG_BIN_CMD))" && export PG_BIN && mkdir -p out && \
		$(GO) run ./cmd/iamc bench --ephemeral --rows 1000000,100000000 --other-rows 1000000 --clients 1,2 \
			--duration 5s --plans=false --queries q1-todos-page,q1-chats-page,q2-read,q3-update,q5-todo,q6-delete \
			--json out/bench-100m.json $(BENCH_FLAGS)

build:
	$(GO) build -o bin/iamc ./cmd/iamc

vet:
	$(GO) vet ./...

fmt-check:
	@out="$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))"; \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# Rewrite golden files after an intended change; review the diff before committing.
golden:
	@PG_BIN="$$($(PG_BIN_CMD))" && export PG_BIN && $(GO) test ./... -update

clean:
	rm -rf bin out
