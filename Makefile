# The README's commands. `make test` is what CI runs (through .ci/run).
GO       ?= go
PKGS     := ./...
BENCHTIME ?= 1x

.PHONY: run test vet lint deploy-check bench microbench build clean

run:
	$(GO) run ./cmd/strata dev

build:
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/strata ./cmd/strata

## test: gofmt, vet, staticcheck, every test under the race detector, and the compose file check.
test: lint deploy-check
	$(GO) test -race -count=1 -timeout 15m $(PKGS)

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet $(PKGS)

lint: vet
	$(GO) tool staticcheck $(PKGS)

deploy-check:
	@if command -v docker-compose >/dev/null 2>&1; then \
		docker-compose -f docker-compose.yml config -q && echo "docker-compose.yml: valid"; \
	else echo "docker-compose not installed; skipping the compose check (.ci/run installs it)"; fi
	bash -n deploy/topics.sh

## microbench: the go test benchmarks, benchstat-friendly.
microbench:
	$(GO) test -run '^$$' -bench . -benchmem -count 5 ./aggregates/... ./commands/... ./projections/... | tee bench.out

## bench: every `strata bench` scenario at a size that takes about 3 minutes;
## tables on the terminal, one JSON object per scenario and line in bench/results.json.
BENCH_EVENTS   ?= 100000
BENCH_DURATION ?= 60s
BENCH_SCENARIOS ?= baseline relay projector e2e replay
# Writers of the closed-loop e2e: 128 keep the pipeline busy. At 64 a closed
# loop is half bound by each writer waiting for its answer, and its batches
# are smaller (0.59 Postgres transactions per command against 0.45; 128
# writers sent 11-17% more commands/s in alternating 60 s runs). The deposit
# runs keep 64.
BENCH_CONCURRENCY ?= 128
# Deposits end to end on one hot account, then spread over 1,000 accounts.
BENCH_DEPOSITS ?= 20s
bench: build
	@mkdir -p bench && : > bench/results.json
	@failed=""; for s in $(BENCH_SCENARIOS); do \
		bin/strata bench $$s --events $(BENCH_EVENTS) --duration $(BENCH_DURATION) --concurrency $(BENCH_CONCURRENCY) --json-out bench/results.json \
			|| failed="$$failed $$s"; echo; \
	done; \
	for a in 1 1000; do \
		bin/strata bench e2e --mix deposit=1 --accounts $$a --duration $(BENCH_DEPOSITS) --json-out bench/results.json \
			|| failed="$$failed deposits/$$a"; echo; \
	done; test -z "$$failed" || { echo "bench failed:$$failed"; exit 1; }
	@echo "results: bench/results.json"

clean:
	rm -rf bin .strata bench.out
