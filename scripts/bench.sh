#!/usr/bin/env bash
# Runs Ballast's benchmarks one suite after another (never concurrently: they
# share 2 cores) and prints each figure beside its baseline as a ratio.
# Results and the commands behind them are recorded in docs/benchmarks.md.
#
#   BENCH_SUITES="ingest kafka"  scripts/bench.sh   # a subset
#   BENCH_ROADEF_TIME=300s       scripts/bench.sh   # the published ROADEF figure (slow)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH
suites=${BENCH_SUITES:-"ingest kafka exporters decision watcher applier"}
roadef_time=${BENCH_ROADEF_TIME:-20s}
[ -x bin/ballast ] || go build -o bin/ballast ./cmd/ballast

for s in $suites; do
  printf '\n######## %s  (%s, load average %s)\n' "$s" "$(date -u +%FT%TZ)" "$(cut -d' ' -f1-3 /proc/loadavg)"
  case $s in
    ingest)    go run ./bench/ingest -ballast bin/ballast ;;
    kafka)     go run ./bench/kafka -reps 3 -paths raw,inproc,kafka,kafka-consume ;;
    exporters) go run ./bench/exporters -agent bin/ballast ;;
    decision)  go run ./bench/decision -suite all -roadef-time "$roadef_time" ;;
    watcher)   go run ./bench/watcher ;;
    applier)   go run ./bench/applier ;;
    *) echo "unknown suite $s (known: ingest kafka exporters decision watcher applier)" >&2; exit 2 ;;
  esac
done
