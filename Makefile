# AOF2 — common tasks. `make help` lists them.
GO        ?= go
TOOLS     := $(CURDIR)/.tools
BIN       := $(CURDIR)/bin
export GOBIN := $(TOOLS)/bin
export PATH  := $(GOBIN):$(PATH)

STATICCHECK_MODULE  := honnef.co/go/tools/cmd/staticcheck@v0.8.2

FUZZTIME  ?= 30s
TEST_FUZZTIME ?= 3s
BENCHTIME ?= 1x
TESTFLAGS ?=
# Every binary the tests launch (host, plugins, test plugins) is built once
# per run into TEST_BIN_DIR, and the tests take them from there
# (internal/testbin; plain `go test` builds them once per test process).
TEST_BIN_DIR ?= $(TOOLS)/testbin
# Binaries record the commit they were built from (aof2-host version)
# even where the environment turns VCS stamping off.
BUILDFLAGS ?= -buildvcs=auto
DIST_PLATFORMS ?= linux/amd64 linux/arm64

.PHONY: help docs dist dist-check image image-check build test test-short test-bins lint fuzz bench tidy-check run demo cluster vet staticcheck clean

help: ## list targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

build: ## compile everything
	$(GO) build ./...

# The exhaustive crash, kill -9 and fault runs: a quarter of their size
# under -race, then at full size without it (internal/testscale).
FULL_RUNS := ^(TestCrashAfterEveryOperation|TestFaultAtEveryOperation|TestPowerLoss|TestPowerLossNodeWAL|TestKill9|TestKill9NodeWAL|TestNodeWALBitFlipOnDisk|TestNodeWALStreamBitFlipAcceptLoss|TestTieringPowerLoss)$$

test: test-bins ## run every test with -race, then the crash, kill -9 and fault runs at full size without it, then every fuzz target for TEST_FUZZTIME
	AOF2_TEST_BIN_DIR=$(TEST_BIN_DIR) $(GO) test -race -timeout 45m $(TESTFLAGS) ./...
	AOF2_TEST_BIN_DIR=$(TEST_BIN_DIR) $(GO) test -timeout 30m -run '$(FULL_RUNS)' $(TESTFLAGS) ./core ./core/coordinator
	FUZZTIME=$(TEST_FUZZTIME) bash scripts/fuzz.sh

test-short: test-bins ## the edit-compile-test loop (~2 min): go test -short without -race, small crash/fault counts, no e2e, no emulators
	AOF2_TEST_BIN_DIR=$(TEST_BIN_DIR) $(GO) test -short -timeout 10m $(TESTFLAGS) ./...

test-bins: ## build every binary the tests launch into TEST_BIN_DIR (test and test-short do it first)
	$(GO) run ./internal/testbin/cmd/testbins $(TEST_BIN_DIR)

run: ## build host + fs plugin into bin/ and serve on the defaults: data in ./data, tier 2 in ./data/tier2, loopback
	@mkdir -p $(BIN)
	$(GO) build $(BUILDFLAGS) -o $(BIN)/aof2-host ./cmd/aof2-host
	$(GO) build $(BUILDFLAGS) -o $(BIN)/aof2-plugin-fs ./plugins/fs/cmd/aof2-plugin-fs
	$(BIN)/aof2-host serve

demo: ## start a host with tiny budgets, drive it through the client API, watch data move tier 0 → 1 → 2 and back
	@mkdir -p $(BIN)
	$(GO) build $(BUILDFLAGS) -o $(BIN)/aof2-host ./cmd/aof2-host
	$(GO) build $(BUILDFLAGS) -o $(BIN)/aof2-plugin-fs ./plugins/fs/cmd/aof2-plugin-fs
	$(BIN)/aof2-host demo

cluster: ## build the host and the fs plugin and run a three-node cluster on loopback over one fs tier 2 (examples/cluster, data in ./cluster-data; Ctrl-C stops it)
	@mkdir -p $(BIN)
	$(GO) build $(BUILDFLAGS) -o $(BIN)/aof2-host ./cmd/aof2-host
	$(GO) build $(BUILDFLAGS) -o $(BIN)/aof2-plugin-fs ./plugins/fs/cmd/aof2-plugin-fs
	BIN=$(BIN) bash scripts/cluster.sh

dist: ## release archives (host + plugins, docs, examples, systemd unit) for DIST_PLATFORMS (linux/amd64 linux/arm64) and SHA256SUMS in dist/
	DIST_PLATFORMS="$(DIST_PLATFORMS)" bash scripts/dist.sh

dist-check: ## build the release archives twice and require identical SHA256SUMS (reproducible builds)
	DIST_PLATFORMS="$(DIST_PLATFORMS)" DIST_DIR=dist bash scripts/dist.sh
	DIST_PLATFORMS="$(DIST_PLATFORMS)" DIST_DIR=dist/again bash scripts/dist.sh
	cmp dist/SHA256SUMS dist/again/SHA256SUMS
	rm -rf dist/again

image: ## container image (FROM scratch, non-root, /data volume) from dist's linux/amd64 archive, built with buildah
	bash scripts/image.sh

image-check: image ## inspect the image and run it (buildah): /readyz and one append
	bash scripts/image-check.sh

docs: ## regenerate docs/config.md from the configuration table (the tests fail when it is stale)
	$(GO) run ./cmd/aof2-host config reference -format markdown > docs/config.md

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

# ---- plugins: contract code generation, plugin binaries, conformance ----
# protoc comes from Debian's protobuf-compiler; its version is written into the
# generated headers, so proto/verify-proto insist on exactly this one.
PROTOC                 ?= protoc
PROTOC_VERSION         := 3.21.12
PROTOC_GEN_GO          := google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
PROTOC_GEN_GO_GRPC     := google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2
# Each tree is an include root whose generated code sits next to its .proto
# files: the plugin contract and the client API (aof2.v1).
PROTO_DIRS             := pluginapi/proto api/proto

.PHONY: proto verify-proto proto-tools protoc-check plugins conformance

$(GOBIN)/protoc-gen-go:
	$(GO) install $(PROTOC_GEN_GO)

$(GOBIN)/protoc-gen-go-grpc:
	$(GO) install $(PROTOC_GEN_GO_GRPC)

proto-tools: $(GOBIN)/protoc-gen-go $(GOBIN)/protoc-gen-go-grpc

protoc-check:
	@v=$$($(PROTOC) --version 2>/dev/null | awk '{print $$2}'); \
	if [ "$$v" != "$(PROTOC_VERSION)" ]; then \
	  echo "protoc $(PROTOC_VERSION) required (found '$$v'); apt-get install protobuf-compiler"; exit 1; fi

# gen_proto SRCDIR,OUTDIR: regenerate every .proto under SRCDIR into OUTDIR.
define gen_proto
	$(PROTOC) -I $(1) \
	  --plugin=protoc-gen-go=$(GOBIN)/protoc-gen-go \
	  --plugin=protoc-gen-go-grpc=$(GOBIN)/protoc-gen-go-grpc \
	  --go_out=$(2) --go_opt=paths=source_relative \
	  --go-grpc_out=$(2) --go-grpc_opt=paths=source_relative \
	  $$(cd $(1) && find . -name '*.proto' | sed 's|^\./||' | sort)
endef

proto: proto-tools protoc-check ## regenerate the Go code of every proto tree (plugin contract, client API)
	set -e; for d in $(PROTO_DIRS); do $(call gen_proto,$$d,$$d); done

verify-proto: proto-tools protoc-check ## fail if the committed generated code is stale
	@set -e; tmp=$$(mktemp -d); trap 'rm -rf $$tmp' EXIT; \
	for d in $(PROTO_DIRS); do \
	  mkdir -p $$tmp/$$d; \
	  $(call gen_proto,$$d,$$tmp/$$d); \
	  for f in $$(cd $$tmp/$$d && find . -name '*.go' | sed 's|^\./||' | sort); do \
	    diff -u $$d/$$f $$tmp/$$d/$$f || { echo "stale generated code: $$d/$$f (run make proto)"; exit 1; }; \
	  done; \
	  for f in $$(cd $$d && find . -name '*.pb.go' | sed 's|^\./||' | sort); do \
	    [ -f $$tmp/$$d/$$f ] || { echo "generated file without a .proto: $$d/$$f"; exit 1; }; \
	  done; \
	done; echo "generated code is up to date"

plugins: ## build the plugin binaries into bin/
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/aof2-plugin-fs ./plugins/fs/cmd/aof2-plugin-fs
	$(GO) build -o $(BIN)/aof2-plugin-s3 ./plugins/s3/cmd/aof2-plugin-s3
	$(GO) build -o $(BIN)/aof2-plugin-gcs ./plugins/gcs/cmd/aof2-plugin-gcs
	$(GO) build -o $(BIN)/aof2-plugin-azure ./plugins/azure/cmd/aof2-plugin-azure
	$(GO) build -o $(BIN)/aof2-plugin-fake ./conformance/fake/cmd/aof2-plugin-fake
	$(GO) build -o $(BIN)/aof2-conformance ./cmd/aof2-conformance

conformance: plugins ## certify the fs plugin binary with the conformance command (JSON in bin/)
	@root=$$(mktemp -d); trap 'rm -rf $$root' EXIT; \
	$(BIN)/aof2-conformance --plugin $(BIN)/aof2-plugin-fs --config root=$$root --json $(BIN)/conformance-fs.json

# ---- cloud backends: local S3/GCS/Azure servers for the plugins' tests ----
# Versions are pinned in scripts/emulators.sh; everything installs under
# .tools. `make emulators-up` writes the endpoints to $(EMULATORS_ENV), which
# every later make invocation exports, so `make test` finds them.
EMULATORS_ENV := $(TOOLS)/emulators/env.mk
-include $(EMULATORS_ENV)

.PHONY: emulators-install emulators-up emulators-down emulators-status test-cloud bench-cloud

emulators-install: ## install versitygw, gofakes3, fake-gcs-server and Azurite (pinned) into .tools
	bash scripts/emulators.sh install

emulators-up: ## start the local S3 (two)/GCS/Azure servers on free loopback ports and print the endpoints
	bash scripts/emulators.sh up

emulators-down: ## stop the servers emulators-up started (by PID)
	bash scripts/emulators.sh down

emulators-status: ## print the endpoints of the running servers
	bash scripts/emulators.sh status

test-cloud: ## the s3/gcs/azure plugin tests only (needs emulators-up)
	$(GO) test -race $(TESTFLAGS) ./plugins/s3/... ./plugins/gcs/... ./plugins/azure/...

bench-cloud: ## PutFile/GetFile through each cloud plugin vs its SDK in-process, interleaved (needs emulators-up)
	$(GO) test -run '^$$' -bench . -benchtime 10x ./plugins/s3/ ./plugins/gcs/ ./plugins/azure/

# ---- deploy/: promtool (pinned) checks the alert rules and dashboard queries ----
PROMTOOL_MODULE := github.com/prometheus/prometheus/cmd/promtool@v0.316.0

.PHONY: check-deploy

$(GOBIN)/promtool:
	$(GO) install $(PROMTOOL_MODULE)

check-deploy: $(GOBIN)/promtool ## promtool check + unit tests of deploy/prometheus rules, promtool parse of every dashboard query, deploy/ tests
	$(GOBIN)/promtool check rules deploy/prometheus/aof2-alerts.yml
	$(GOBIN)/promtool test rules deploy/prometheus/aof2-alerts_test.yml
	AOF2_PROMTOOL=$(GOBIN)/promtool AOF2_REQUIRE_PROMTOOL=1 $(GO) test -count=1 ./deploy/
