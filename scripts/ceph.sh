#!/usr/bin/env bash
# Brings up, inspects and tears down a throwaway Ceph cluster for Ballast's
# integration tests: one monitor, one manager (prometheus module on) and three
# OSDs, all on 127.0.0.1, memstore-backed, cephx off, no systemd. Everything
# (config, data, logs, pid files, admin sockets) lives under DIR.
#
# Usage: scripts/ceph.sh start|stop|status DIR
#   start   create and start the cluster (a cluster already running in DIR is
#           left as it is); waits for HEALTH_OK and writes DIR/env
#   stop    stop the daemons started from DIR and remove their state
#   status  print `ceph status` and exit non-zero when the cluster is down
#
# After start:  . DIR/env   exports CEPH_CONF and BALLAST_CEPH_* for go test.
#
# Environment knobs: CEPH_OSDS (3), CEPH_OSD_MB (512, memstore size per OSD),
# CEPH_MON_PORT (3300; msgr1 listens on CEPH_MON_PORT+3489), CEPH_PROM_PORT
# (9283, the mgr prometheus module), CEPH_WAIT (180 seconds per step).
set -euo pipefail

usage() { sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
[ $# -eq 2 ] || usage
cmd=$1
dir=$(realpath -m "$2")
osds=${CEPH_OSDS:-3}
osd_mb=${CEPH_OSD_MB:-512}
mon_port=${CEPH_MON_PORT:-3300}
mon_v1_port=$((mon_port + 3489))
prom_port=${CEPH_PROM_PORT:-9283}
wait_s=${CEPH_WAIT:-180}
conf=$dir/ceph.conf

say() { echo "ceph.sh [$(date +%T)] $*" >&2; }

# wipe DIR, but only when it is ours: absent, empty, or holding a ceph.conf.
wipe() {
  if [ -e "$dir" ] && [ -n "$(ls -A "$dir")" ] && [ ! -f "$conf" ]; then
    say "$dir is not empty and holds no ceph.conf: refusing to delete it"
    exit 1
  fi
  rm -rf "$dir"
}
ceph_() { timeout 30 ceph --conf "$conf" --connect-timeout 10 "$@"; }

# retry DESCRIPTION CMD...: runs CMD every second until it succeeds or CEPH_WAIT passes.
retry() {
  local what=$1 start=$SECONDS
  shift
  say "waiting for $what"
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS - start > wait_s)); then
      say "gave up waiting for $what after ${wait_s}s; logs are in $dir/log"
      return 1
    fi
    sleep 1
  done
}

# pids of the daemons started from DIR that are still alive
live_pids() {
  local f pid
  for f in "$dir"/run/*.pid; do
    [ -e "$f" ] || continue
    pid=$(cat "$f" 2>/dev/null || true)
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && echo "$pid"
  done
  return 0
}

json_field() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1], {}, {"d": d}))' "$1"; }
healthy() { [ "$(ceph_ health -f json | json_field 'd["status"]')" = HEALTH_OK ]; }
mgr_up() { [ "$(ceph_ mgr stat -f json | json_field 'd["available"]')" = True ]; }
osds_up() { [ "$(ceph_ osd stat -f json | json_field 'd["num_up_osds"]')" = "$osds" ]; }
prom_up() { python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$prom_port/metrics', timeout=5).read()"; }
pool_clean() {
  ceph_ pg ls-by-pool ballast-selftest -f json | json_field \
    '0 if (lambda s: s and all(p["state"] == "active+clean" for p in s))(d["pg_stats"] if isinstance(d, dict) else d) else 1/0'
}

write_conf() {
  cat >"$conf" <<CONF
[global]
fsid = $1
mon initial members = a
mon host = [v2:127.0.0.1:$mon_port,v1:127.0.0.1:$mon_v1_port]
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind ipv6 = false
auth cluster required = none
auth service required = none
auth client required = none
run dir = $dir/run
pid file = $dir/run/\$name.pid
admin socket = $dir/run/\$name.asok
log file = $dir/log/\$name.log
crash dir = $dir/crash
# one host: place replicas on distinct OSDs rather than distinct hosts
osd crush chooseleaf type = 0
osd pool default size = $((osds < 3 ? osds : 3))
osd pool default min size = 1
osd pool default pg autoscale mode = off
mon allow pool delete = true
mon allow pool size one = true
# a test box's small or busy disk must not turn health yellow
mon data avail warn = 1
mon data avail crit = 0
mon warn on pool no redundancy = false
mon warn on insecure global id reclaim allowed = false
mon warn on osd down out interval zero = false

[mon]
mon data = $dir/mon/\$id

[mgr]
mgr data = $dir/mgr/\$id

[osd]
osd data = $dir/osd/\$id
osd objectstore = memstore
memstore device bytes = $((osd_mb * 1024 * 1024))
osd op num shards = 1
osd op num threads per shard = 2
CONF
}

start() {
  if [ -f "$dir/env" ] && [ -n "$(live_pids)" ] && healthy; then
    say "cluster in $dir is already running"
    return 0
  fi
  # Leftovers of a cluster that is not running: memstore kept its data in
  # RAM, so nothing is worth keeping.
  stop_daemons
  wipe
  mkdir -p "$dir"/{mon/a,mgr/x,osd,log,run,crash}
  local fsid
  fsid=$(cat /proc/sys/kernel/random/uuid)
  write_conf "$fsid"

  say "creating monitor a on 127.0.0.1:$mon_port"
  monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$mon_port,v1:127.0.0.1:$mon_v1_port]" "$dir/monmap" >/dev/null
  ceph-authtool --create-keyring "$dir/mon.keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
  ceph-mon --conf "$conf" -i a --mkfs --monmap "$dir/monmap" --keyring "$dir/mon.keyring"
  ceph-mon --conf "$conf" -i a
  retry "monitor quorum" ceph_ mon stat

  say "starting manager x"
  ceph-mgr --conf "$conf" -i x
  retry "an available manager" mgr_up

  local i uuid id
  for ((i = 0; i < osds; i++)); do
    uuid=$(cat /proc/sys/kernel/random/uuid)
    id=$(ceph_ osd new "$uuid")
    say "starting osd.$id (memstore, ${osd_mb} MiB)"
    mkdir -p "$dir/osd/$id"
    ceph-osd --conf "$conf" -i "$id" --mkfs --osd-uuid "$uuid" >>"$dir/log/osd.$id.mkfs.log" 2>&1
    ceph-osd --conf "$conf" -i "$id"
  done
  retry "$osds OSDs up" osds_up

  say "enabling the mgr prometheus module on 127.0.0.1:$prom_port"
  ceph_ config set mgr mgr/prometheus/server_addr 127.0.0.1
  ceph_ config set mgr mgr/prometheus/server_port "$prom_port"
  ceph_ mgr module enable prometheus
  retry "the mgr prometheus module" prom_up

  say "self-test: write and read an object"
  ceph_ osd pool create ballast-selftest 8 8 >/dev/null
  retry "self-test pool active+clean" pool_clean
  echo ballast | rados --conf "$conf" -p ballast-selftest put probe -
  [ "$(rados --conf "$conf" -p ballast-selftest get probe -)" = ballast ]
  ceph_ osd pool rm ballast-selftest ballast-selftest --yes-i-really-really-mean-it >/dev/null
  retry "HEALTH_OK" healthy

  cat >"$dir/env" <<ENV
export CEPH_CONF=$conf
export BALLAST_CEPH_DIR=$dir
export BALLAST_CEPH_MGR_PROMETHEUS_URL=http://127.0.0.1:$prom_port/metrics
ENV
  say "ready: . $dir/env"
}

stop_daemons() {
  local pids pid n=0
  pids=$(live_pids)
  for pid in $pids; do
    kill "$pid" 2>/dev/null && n=$((n + 1)) || true
  done
  local start=$SECONDS
  for pid in $pids; do
    while kill -0 "$pid" 2>/dev/null && ((SECONDS - start < 30)); do sleep 0.2; done
    kill -9 "$pid" 2>/dev/null || true
  done
  [ "$n" = 0 ] || say "stopped $n daemons"
}

case $cmd in
  start) start ;;
  stop)
    stop_daemons
    wipe
    say "cluster in $dir removed"
    ;;
  status)
    [ -f "$conf" ] || { say "no cluster in $dir"; exit 1; }
    ceph_ status
    ;;
  *) usage ;;
esac
