# The one place that knows how isis is built and tested.
# CGO off and these tags let the Podman bindings build as a static remote client.
TAGS    := remote exclude_graphdriver_btrfs btrfs_noversion exclude_graphdriver_devicemapper containers_image_openpgp
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X github.com/isis-project/isis/api.Version=$(VERSION)
GO      := CGO_ENABLED=0 go
# Every compile with -trimpath, as the release build's: the tests (and the
# binaries they build) reuse the packages `make build` compiled instead of
# compiling all of them again with other paths (minutes on a fresh machine).
export GOFLAGS := $(strip $(GOFLAGS) -trimpath)
FUZZTIME ?= 5s

# The end-to-end tests against a real Podman service, and every other package.
# Those deploying under the shared names take turns, the others run beside
# them: -parallel lets all of them start (cmd/isisctl/e2e_test.go, takeTurn).
E2E_PKGS := ./cmd/isisctl

.PHONY: build test test-e2e test-other test-kube race vet fuzz bench clean

build:
	$(GO) build -trimpath -tags '$(TAGS)' -ldflags '$(LDFLAGS)' -o bin/isis ./cmd/isis
	$(GO) build -trimpath -tags '$(TAGS)' -ldflags '$(LDFLAGS)' -o bin/isisctl ./cmd/isisctl

vet:
	$(GO) vet -tags '$(TAGS)' ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }

test: vet
	$(GO) test -tags '$(TAGS)' -count=1 -timeout 20m ./...

# `make test` in halves that share nothing but the CPU (scripts/test.sh runs
# them side by side): the Podman end-to-end package; and vet, the packages
# outside the server (test-other) and the server's under the race detector
# (race), which is then their only run: `make test-other race`.
test-e2e:
	$(GO) test -tags '$(TAGS)' -count=1 -timeout 20m -parallel 16 $(E2E_PKGS)

test-other: vet
	$(GO) test -tags '$(TAGS)' -count=1 -timeout 20m $$($(GO) list -tags '$(TAGS)' ./... | grep -vxF "$$($(GO) list -tags '$(TAGS)' $(E2E_PKGS) ./api/...)")
	$(GO) test -tags '$(TAGS)' -count=1 -timeout 20m -run '^($(RACE_SKIPS))$$' $(RACE_SKIP_PKGS)

# The server's tests that skip under the race detector (they measure memory or
# stacks, which its instrumentation inflates: testenv.Race), and their
# packages: test-other runs them without it. internal/doctest checks the lists.
RACE_SKIPS     := TestConcurrentLoginsMemory|TestConnStackSmall|TestImportStreams
RACE_SKIP_PKGS := ./api/auth ./api/djangoimport ./api/http

# The rendered Kubernetes manifests applied to a real kube-apiserver:
# ISIS_KUBE_APISERVER, else the one scripts/kube-apiserver.sh builds (once).
test-kube:
	ISIS_KUBE_APISERVER="$${ISIS_KUBE_APISERVER:-$$(scripts/kube-apiserver.sh | tail -n1)}" && test -x "$$ISIS_KUBE_APISERVER" && \
	ISIS_KUBE_APISERVER="$$ISIS_KUBE_APISERVER" $(GO) test -tags '$(TAGS)' -count=1 -timeout 5m -run '^TestKubeAPIServer$$' -v ./ops/kube

# The server's packages again under the race detector: its caches, token
# memory and shared header values are read by every request at once.
race:
	CGO_ENABLED=1 go test -race -count=1 -timeout 20m ./api/...

# Each fuzz target runs for FUZZTIME; crashers land in testdata/fuzz and stay as regression cases.
fuzz:
	@scripts/fuzz.sh $(FUZZTIME)

bench:
	$(GO) test -tags '$(TAGS)' -run '^$$' -bench . -benchmem ./api/...

clean:
	rm -rf bin
