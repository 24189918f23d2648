# Thin wrapper over the go tool. `make test` is the test command CI runs.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: build dev test test-short lint bench bench-quick bench-dc bench-go fmt-check check-deploy screenshot chaos fuzz

build:
	go build -ldflags "-X main.version=$(VERSION)" -o bin/argent ./cmd/argent

# The whole tree in one process with demo data (see argent dev --help).
# It runs the built binary, not go run, so that Ctrl-C or a kill of its
# pid stops dev itself. DEV_ARGS passes flags, e.g. DEV_ARGS="--roots 3".
dev: build
	bin/argent dev $(DEV_ARGS)

# Every test, with the race detector: the product module, then the
# benchmarks' module in bench/ (its own go.mod; unit tests of a few seconds).
test:
	go test -race -count=1 -timeout 15m ./...
	cd bench && go test -race -count=1 -timeout 5m ./...

# Unit tests only (no multi-process tests): quick feedback while editing.
test-short:
	go test -short ./...
	cd bench && go test -short ./...

fmt-check:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# vet and staticcheck each module: the product's and bench/.
lint: fmt-check
	go vet ./...
	cd bench && go vet ./...
	go run $(STATICCHECK) ./...
	cd bench && go run $(STATICCHECK) ./...

# argent side by side with etcd and Redis: installs them from Debian when
# missing, about 15 minutes; results in docs/benchmarks.md and bench/results/.
bench:
	bench/run.sh $(BENCH_ARGS)

# The same in about two minutes, as a smoke test of the suite.
bench-quick:
	bench/run.sh -quick $(BENCH_ARGS)

# One data center of eight proxies on Zipf traces, v1.5 against the v2
# tier (relay and L2 shards), beside the offline optimum: a few minutes;
# results in docs/benchmarks.md and bench/results/dc-latest.json.
# BENCH_ARGS=-quick for a smoke run of well under a minute.
bench-dc:
	cd bench && go run ./dc $(BENCH_ARGS)

# Store and root micro-benchmarks (testing.B).
bench-go:
	go test -run '^$$' -bench . -benchtime 2s ./internal/kv/ ./internal/root/

# The alerting rules, with promtool (Debian package prometheus). The
# dashboard's JSON, and the metrics it and the rules query, are checked
# against running nodes by tests/topology_test.go.
check-deploy:
	promtool check rules deploy/prometheus/alerts.yml

# docs/img/status-page.png: the status page of the deployment topology
# under a light load, in headless Chromium (apt-get install chromium).
screenshot:
	ARGENT_UI_SCREENSHOT=$(CURDIR)/docs/img/status-page.png go test -count=1 -run '^TestUI_Screenshot$$' ./tests/

# Seeded random faults (kill -9, SIGSTOP, partitions, cut, stalled,
# delayed and bit-flipping links) across a whole tree under the
# consistency checker, for DURATION (default 10m). SEED=N repeats a
# schedule; `make test` runs the same test for 20 s.
DURATION ?= 10m
SEED ?= 0
chaos:
	go test -count=1 -timeout 0 -run '^TestChaos$$' -v ./tests/ -args -chaos $(DURATION) -seed $(SEED)

# Every fuzz target, one after the other, FUZZTIME each (default 30s; about
# 10 minutes in all). `go test` runs their seeds and stored crashers anyway.
FUZZTIME ?= 30s
fuzz:
	FUZZTIME=$(FUZZTIME) scripts/fuzz.sh
