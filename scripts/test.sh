#!/usr/bin/env bash
# Runs every test against real components: it starts what the integration
# tests need (see deploy/testenv), runs `go test ./...`, and stops them.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH
export BALLAST_REQUIRE_INTEGRATION=1

work=$(mktemp -d /tmp/ballast-test.XXXXXX)
cleanup() {
  local rc=$?
  for stop in "$work"/stop-*; do [ -e "$stop" ] && bash "$stop" >/dev/null 2>&1 || true; done
  rm -rf "$work"
  exit $rc
}
trap cleanup EXIT

step() { printf '\n==> %s\n' "$*"; }

step "gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.git/*'))
if [ -n "$unformatted" ]; then echo "not gofmt'ed:"; echo "$unformatted"; exit 1; fi

step "go vet"
go vet ./...

step "go test (timeout 40m)"
go test -count=1 -timeout 40m ./...
