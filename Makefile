# AOF2 — common tasks. `make help` lists them.
GO        ?= go
TOOLS     := $(CURDIR)/.tools
BIN       := $(CURDIR)/bin
export GOBIN := $(TOOLS)/bin
export PATH  := $(GOBIN):$(PATH)

STATICCHECK_MODULE  := honnef.co/go/tools/cmd/staticcheck@v0.8.2

FUZZTIME  ?= 30s
BENCHTIME ?= 1x
TESTFLAGS ?=

.PHONY: help build test lint fuzz bench tidy-check demo vet staticcheck clean

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

build: ## compile everything
	$(GO) build ./...

test: ## run every test with -race, including the CI-sized crash and fuzz-seed runs
	$(GO) test -race -timeout 45m $(TESTFLAGS) ./...

demo: ## tier-0 demo through the real API
	$(GO) run ./cmd/aof2-host demo

vet:
	$(GO) vet ./...

$(GOBIN)/staticcheck:
	$(GO) install $(STATICCHECK_MODULE)

staticcheck: $(GOBIN)/staticcheck
	$(GOBIN)/staticcheck ./...

lint: vet staticcheck ## go vet + staticcheck (pinned) + gofmt
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '\.pb\.go$$')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

fuzz: ## run every fuzz target for FUZZTIME each
	FUZZTIME=$(FUZZTIME) bash scripts/fuzz.sh

bench: ## run the Go benchmarks (BENCHTIME=1x by default; try BENCHTIME=3s)
	$(GO) test -run '^$$' -bench . -benchtime $(BENCHTIME) -benchmem ./...

tidy-check: ## fail if go.mod/go.sum are not tidy
	$(GO) mod tidy -diff

clean:
	rm -rf $(BIN)
