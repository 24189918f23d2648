# Thin wrapper over the go tool. `make test` is the test command CI runs.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: build test test-short lint bench fmt-check

build:
	go build -ldflags "-X main.version=$(VERSION)" -o bin/argent ./cmd/argent

# Every test, with the race detector.
test:
	go test -race -count=1 -timeout 15m ./...

# Unit tests only (no multi-process tests): quick feedback while editing.
test-short:
	go test -short ./...

fmt-check:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

lint: fmt-check
	go vet ./...
	go run $(STATICCHECK) ./...

bench:
	go test -run '^$$' -bench . -benchtime 2s ./internal/kv/ ./internal/root/
