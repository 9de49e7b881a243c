#!/usr/bin/env bash
# Runs every test against real components. It starts what the integration
# tests need — a Ceph cluster (mon, mgr, 3 OSDs) and two libvirt hosts in
# network namespaces — while the code is vetted, exports their coordinates
# (see deploy/testenv), runs `go test ./...` with BALLAST_REQUIRE_INTEGRATION=1
# so a missing component fails instead of skipping, and stops them again.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH
export BALLAST_REQUIRE_INTEGRATION=1

work=$(mktemp -d /tmp/ballast-test.XXXXXX)
started=$(date +%s)
step() { printf '\n==> [%4ss] %s\n' "$(( $(date +%s) - started ))" "$*"; }

cleanup() {
  local rc=$?
  step "stopping components"
  scripts/libvirt-hosts.sh down "$work/libvirt" >/dev/null 2>&1 || true
  scripts/ceph.sh stop "$work/ceph" >/dev/null 2>&1 || true
  rm -rf "$work"
  exit $rc
}
trap cleanup EXIT

step "starting Ceph and two libvirt hosts in the background (logs in $work/*.log)"
scripts/ceph.sh start "$work/ceph" >"$work/ceph.log" 2>&1 &
ceph_pid=$!
scripts/libvirt-hosts.sh up "$work/libvirt" >"$work/libvirt.log" 2>&1 &
libvirt_pid=$!

step "gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.git/*'))
if [ -n "$unformatted" ]; then echo "not gofmt'ed:"; echo "$unformatted"; exit 1; fi

step "go vet"
go vet ./...

step "building test binaries"
go test -count=1 -run '^$' ./... >/dev/null

step "waiting for Ceph and libvirt"
if ! wait $ceph_pid; then echo "Ceph did not start:"; tail -50 "$work/ceph.log"; exit 1; fi
if ! wait $libvirt_pid; then echo "libvirt hosts did not start:"; tail -50 "$work/libvirt.log"; exit 1; fi
# shellcheck disable=SC1091
. "$work/ceph/env"
# shellcheck disable=SC1091
. "$work/libvirt/env"

step "go test ./... (timeout 40m)"
go test -count=1 -timeout 40m ./...
step "all tests passed"
