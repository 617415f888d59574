SHELL := /bin/bash
# pgha: `make up` builds pgha and brings the default cluster up; `make test` runs every test.
GO      ?= go
BIN     := bin/pgha
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X github.com/pgha/pgha/internal/cli.version=$(VERSION)
# Root needs no sudo (CI runs as root); others get it when they have it.
SUDO    := $(shell [ "$$(id -u)" = 0 ] || command -v sudo)

.PHONY: build deps up down status test unit e2e lint bench clean

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/pgha

# mmdebstrap makes the offline Debian base image when no registry can be reached;
# psql is what the README's hand checks and the e2e tests use; tmux is the
# terminal the e2e tests read pgha's tables in; headless chromium renders
# failover-test's HTML report to a PNG in the e2e tests.
deps:
	@missing=""; \
	command -v mmdebstrap >/dev/null 2>&1 || missing="$$missing mmdebstrap"; \
	command -v psql >/dev/null 2>&1 || missing="$$missing postgresql-client"; \
	command -v tmux >/dev/null 2>&1 || missing="$$missing tmux"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
		echo "installing$$missing"; \
		$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq $$missing >/dev/null; \
	fi

up: build deps
	$(BIN) up

down: build
	$(BIN) down

status: build
	$(BIN) status

# staticcheck comes from the Go module proxy, installed once into GOPATH/bin.
STATICCHECK := $(shell $(GO) env GOPATH)/bin/staticcheck
STATICCHECK_VERSION := v0.8.2

$(STATICCHECK):
	$(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

# gotestsum runs the e2e tests with go test's own -v output and, at the end, repeats
# the whole output of every test that failed: the last lines of a long run say why.
GOTESTSUM := $(shell $(GO) env GOPATH)/bin/gotestsum
GOTESTSUM_VERSION := v1.13.0

$(GOTESTSUM):
	$(GO) install gotest.tools/gotestsum@$(GOTESTSUM_VERSION)

lint: $(STATICCHECK)
	@out=$$(gofmt -l cmd internal pkg images test bench 2>/dev/null); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...

unit:
	$(GO) test -count=1 ./pkg/... ./internal/...

# e2e builds the images once (content-hashed, so a second run reuses them), then
# runs each test on its own uniquely named cluster and ports, E2E_SLOTS tests at
# a time, the longest first (test/e2e/schedule_test.go); -parallel only has to
# let them all wait for a slot.
E2E_SLOTS ?= 3
e2e: build deps $(GOTESTSUM)
	PGHA_E2E_SLOTS=$(E2E_SLOTS) $(GOTESTSUM) --format standard-verbose -- -count=1 -timeout 40m -parallel 64 ./test/e2e/

# The images (minutes on a clean machine: apt, versitygw's Go build) are built
# while lint and the unit tests run; e2e then finds them by their hashes.
test: build deps
	@echo "building pgha's images in the background (log: bin/images-build.log)"
	@$(BIN) images build > bin/images-build.log 2>&1 & images=$$!; \
	$(MAKE) --no-print-directory lint unit; rc=$$?; \
	wait $$images; irc=$$?; \
	if [ $$irc != 0 ]; then cat bin/images-build.log; echo "pgha images build failed"; exit 1; fi; \
	tail -n 7 bin/images-build.log; \
	[ $$rc = 0 ] && $(MAKE) --no-print-directory e2e

bench: build deps
	$(GO) run ./bench $(BENCH_ARGS)

clean:
	rm -rf bin dist
