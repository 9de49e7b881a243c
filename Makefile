# Ballast: `make run` sets up and runs the server on its embedded default;
# `make test` sets up and runs every test. Both install what they need.

GO      ?= go
export PATH := /usr/local/go/bin:$(PATH)
export CGO_ENABLED := 1
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.buildVersion=$(VERSION) \
	-X github.com/prometheus/common/version.Revision=$(shell git rev-parse --short HEAD 2>/dev/null) \
	-X github.com/prometheus/common/version.Branch=$(shell git rev-parse --abbrev-ref HEAD 2>/dev/null) \
	-X github.com/prometheus/common/version.BuildDate=$(shell date -u +%Y%m%d-%H:%M:%S)
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: all deps build run test bench lint fmt clean

all: build

## deps: install the Debian packages the build and tests need (idempotent)
deps:
	@scripts/deps.sh all

## build: build bin/ballast
build: deps
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/ballast ./cmd/ballast

## run: build and run the server on the embedded default (data in ./data, UI and APIs on :9322)
run: build
	./bin/ballast server --storage.tsdb.path data/

## test: install dependencies, start the real components and run every test
test: deps
	@scripts/test.sh

## bench: run the benchmarks and print each figure beside its baseline
bench: build
	@scripts/bench.sh

## lint: go vet and staticcheck
lint:
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin/
