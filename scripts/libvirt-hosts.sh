#!/usr/bin/env bash
# Runs two real libvirt hypervisors on one machine for Ballast's integration
# tests: two libvirtd daemons (qemu driver, guests under TCG software
# emulation) in two network namespaces joined by a veth pair, each with its
# own /run, /var/lib, /var/cache, /var/log and /etc libvirt directories under
# DIR. Live migration between them works (peer-to-peer over the veth link).
# Run as root; no systemd needed.
#
# Usage: scripts/libvirt-hosts.sh up|down|status DIR
#        scripts/libvirt-hosts.sh restart DIR hostA|hostB
#   up       start both hosts (hosts already answering are left alone) and
#            write DIR/env
#   down     destroy their guests, stop both daemons, remove the namespaces
#   status   print each host's libvirt version and running guests
#   restart  stop and start one host's libvirtd; running guests survive
#
# After up:  . DIR/env   exports, for each host X in A and B,
#   BALLAST_LIBVIRT_HOSTX_URI            local URI (unix socket under DIR)
#   BALLAST_LIBVIRT_HOSTX_ADDR           the host's address on the veth link
#   BALLAST_LIBVIRT_HOSTX_MIGRATION_URI  qemu+tcp URI the other host dials
#   BALLAST_LIBVIRT_HOSTS_DIR, BALLAST_LIBVIRT_HOSTS_SCRIPT
#
# Environment knobs: LIBVIRT_HOSTS_NET (10.231.0, the /24 of the link, only
# ever inside the two namespaces), LIBVIRT_HOSTS_PREFIX (ballast: names the
# namespaces <prefix>-hostA/B and the veth ends), LIBVIRT_HOSTS_WAIT (60 s).
#
# What it works around (each broke a bare libvirtd here):
#  - the qemu driver resolves its built-in user and group before reading
#    qemu.conf, so the libvirt-qemu user and the kvm and libvirt-qemu groups
#    must exist: they are created if absent;
#  - libvirt rejects host UUIDs of one repeated digit: a random one per host;
#  - two daemons need distinct pid files (-p) and sockets: private mounts;
#  - no cgroups, namespaces, security drivers or dnsmasq in a container:
#    qemu.conf turns them off and guests run as root.
set -euo pipefail

usage() { sed -n '2,35p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
[ $# -ge 2 ] || usage
cmd=$1
dir=$(realpath -m "$2")
net=${LIBVIRT_HOSTS_NET:-10.231.0}
prefix=${LIBVIRT_HOSTS_PREFIX:-ballast}
wait_s=${LIBVIRT_HOSTS_WAIT:-60}
self=$(realpath "$0")
hosts=(hostA hostB)

say() { echo "libvirt-hosts.sh [$(date +%T)] $*" >&2; }
ns() { echo "$prefix-$1"; }
addr() { if [ "$1" = hostA ]; then echo "$net.1"; else echo "$net.2"; fi; }
uri() { echo "qemu+unix:///system?socket=$dir/$1/run/libvirt-sock"; }
answers() { timeout 10 virsh -c "$(uri "$1")" version >/dev/null 2>&1; }
pid_of() { [ -f "$dir/$1/libvirtd.pid" ] && cat "$dir/$1/libvirtd.pid" || true; }

ensure_users() {
  local g
  for g in kvm libvirt-qemu; do
    getent group "$g" >/dev/null || { groupadd -r "$g"; say "created group $g"; }
  done
  getent passwd libvirt-qemu >/dev/null || {
    useradd -r -g kvm -d /var/lib/libvirt -s /usr/sbin/nologin libvirt-qemu
    say "created user libvirt-qemu"
  }
}

ensure_link() {
  local a b
  a=$(ns hostA) b=$(ns hostB)
  ip netns list | grep -qw "$a" || ip netns add "$a"
  ip netns list | grep -qw "$b" || ip netns add "$b"
  if ! ip -n "$a" link show "$prefix-vA" >/dev/null 2>&1; then
    ip link add "$prefix-vA" type veth peer name "$prefix-vB"
    ip link set "$prefix-vA" netns "$a"
    ip link set "$prefix-vB" netns "$b"
    ip -n "$a" addr add "$(addr hostA)/24" dev "$prefix-vA"
    ip -n "$b" addr add "$(addr hostB)/24" dev "$prefix-vB"
  fi
  for n in "$a" "$b"; do ip -n "$n" link set lo up; done
  ip -n "$a" link set "$prefix-vA" up
  ip -n "$b" link set "$prefix-vB" up
}

write_config() {
  local h=$1 root=$dir/$1 ip
  ip=$(addr "$h")
  mkdir -p "$root"/{run,lib,cache,log,etc,images}
  [ -f "$root/host-uuid" ] || cat /proc/sys/kernel/random/uuid >"$root/host-uuid"
  cat >"$root/etc/libvirtd.conf" <<CONF
listen_tls = 0
listen_tcp = 1
listen_addr = "$ip"
auth_tcp = "none"
auth_unix_ro = "none"
auth_unix_rw = "none"
unix_sock_rw_perms = "0770"
host_uuid = "$(cat "$root/host-uuid")"
log_outputs = "3:file:$root/log/libvirtd.log"
CONF
  cat >"$root/etc/qemu.conf" <<CONF
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
namespaces = [ ]
cgroup_controllers = [ ]
stdio_handler = "file"
migration_address = "$ip"
migration_host = "$ip"
CONF
}

# clear_stale stops what an earlier run left in the host's namespace (its
# libvirtd and guests, e.g. after that run was killed before its `down`):
# a stale daemon holds the TCP port, and a new one would exit at once.
clear_stale() {
  local h=$1 pids start
  pids=$(ip netns pids "$(ns "$h")" 2>/dev/null | tr '\n' ' ')
  [ -n "${pids// /}" ] || return 0
  say "$h: stopping processes an earlier run left in netns $(ns "$h"): $pids"
  # shellcheck disable=SC2086
  kill $pids 2>/dev/null || true
  start=$SECONDS
  while [ -n "$(ip netns pids "$(ns "$h")" 2>/dev/null)" ]; do
    if ((SECONDS - start > 20)); then
      # shellcheck disable=SC2046
      kill -9 $(ip netns pids "$(ns "$h")" 2>/dev/null) 2>/dev/null || true
    fi
    sleep 0.2
  done
}

start_host() {
  local h=$1 root=$dir/$1
  if answers "$h"; then
    say "$h already answers on $(uri "$h")"
    return 0
  fi
  write_config "$h"
  say "starting libvirtd for $h ($(addr "$h")) in netns $(ns "$h")"
  rm -f "$root/libvirtd.pid"
  # A private mount namespace gives the daemon its own libvirt directories;
  # the pid written is the libvirtd process itself (exec).
  ip netns exec "$(ns "$h")" unshare --mount --uts --propagation private bash -c "
    hostname $h
    for d in run:/run/libvirt lib:/var/lib/libvirt cache:/var/cache/libvirt log:/var/log/libvirt etc:/etc/libvirt; do
      mkdir -p \${d#*:}
      mount --bind $root/\${d%%:*} \${d#*:}
    done
    echo \$\$ > $root/libvirtd.pid
    exec libvirtd --listen -f /etc/libvirt/libvirtd.conf -p /run/libvirt/libvirtd.pid
  " >>"$root/log/stdout.log" 2>&1 &
  local start=$SECONDS
  until answers "$h"; do
    if [ -f "$root/libvirtd.pid" ] && ! kill -0 "$(cat "$root/libvirtd.pid")" 2>/dev/null; then
      say "libvirtd of $h exited; last lines of $root/log/stdout.log:"
      tail -3 "$root/log/stdout.log" >&2
      return 1
    fi
    if ((SECONDS - start > wait_s)); then
      say "$h did not answer within ${wait_s}s; see $root/log/libvirtd.log and $root/log/stdout.log"
      return 1
    fi
    sleep 0.5
  done
  say "$h ready after $((SECONDS - start))s"
}

stop_host() {
  local h=$1 pid d
  if answers "$h"; then
    for d in $(timeout 20 virsh -c "$(uri "$h")" list --name 2>/dev/null); do
      timeout 20 virsh -c "$(uri "$h")" destroy "$d" >/dev/null 2>&1 || true
    done
  fi
  stop_daemon "$h"
}

stop_daemon() {
  local h=$1 pid
  pid=$(pid_of "$h")
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
  kill "$pid"
  local start=$SECONDS
  while kill -0 "$pid" 2>/dev/null; do
    if ((SECONDS - start > 20)); then kill -9 "$pid" 2>/dev/null || true; fi
    sleep 0.2
  done
  rm -f "$dir/$h/libvirtd.pid"
  say "stopped libvirtd of $h"
}

write_env() {
  {
    for h in "${hosts[@]}"; do
      local x=${h^^}
      echo "export BALLAST_LIBVIRT_${x}_URI='$(uri "$h")'"
      echo "export BALLAST_LIBVIRT_${x}_ADDR=$(addr "$h")"
      echo "export BALLAST_LIBVIRT_${x}_MIGRATION_URI=qemu+tcp://$(addr "$h")/system"
    done
    echo "export BALLAST_LIBVIRT_HOSTS_DIR=$dir"
    echo "export BALLAST_LIBVIRT_HOSTS_SCRIPT=$self"
  } >"$dir/env"
}

case $cmd in
  up)
    mkdir -p "$dir"
    ensure_users
    ensure_link
    # Not on restart: there the host's own guests run in its namespace.
    for h in "${hosts[@]}"; do answers "$h" || clear_stale "$h"; start_host "$h"; done
    write_env
    say "ready: . $dir/env"
    ;;
  down)
    for h in "${hosts[@]}"; do stop_host "$h"; done
    for h in "${hosts[@]}"; do ip netns del "$(ns "$h")" 2>/dev/null || true; done
    rm -f "$dir/env"
    say "both hosts down"
    ;;
  status)
    rc=0
    for h in "${hosts[@]}"; do
      if answers "$h"; then
        echo "$h: $(virsh -c "$(uri "$h")" version --daemon 2>/dev/null | grep -i 'running hypervisor' || true)"
        virsh -c "$(uri "$h")" list
      else
        echo "$h: not answering"; rc=1
      fi
    done
    exit $rc
    ;;
  restart)
    [ $# -eq 3 ] && [[ " ${hosts[*]} " == *" $3 "* ]] || usage
    stop_daemon "$3"
    start_host "$3"
    ;;
  *) usage ;;
esac
