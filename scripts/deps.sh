#!/usr/bin/env bash
# Installs the Debian packages Ballast's build and tests need. Idempotent: it does
# nothing when every package is already installed.
#
# Usage: scripts/deps.sh [core|all]
#   core  cgo headers for the build (libvirt, librados) and the peers the
#         foundation tests use (prometheus, promtool, alertmanager, python3-watcherclient)
#   all   core plus the daemons for integration tests (libvirtd + qemu, ceph mon/mgr/osd)
#
# The image's apt hook "docker-clean" deletes downloaded .deb files between dpkg
# runs, which breaks large installs ("cannot access archive"); we run apt with a
# copy of apt.conf.d that lacks it.
set -euo pipefail

set_name=${1:-all}
core=(
  pkg-config libvirt-dev librados-dev
  prometheus prometheus-alertmanager
  python3-watcherclient
)
daemons=(
  libvirt-daemon libvirt-clients libvirt-daemon-driver-qemu qemu-system-x86 iproute2
  ceph-mon ceph-mgr ceph-osd ceph-common
)
case $set_name in
  core) pkgs=("${core[@]}") ;;
  all)  pkgs=("${core[@]}" "${daemons[@]}") ;;
  *) echo "deps.sh: unknown set '$set_name' (want core or all)" >&2; exit 2 ;;
esac

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all ${#pkgs[@]} packages present"
  exit 0
fi

SUDO=
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; fi

parts=$(mktemp -d)
trap 'rm -rf "$parts"' EXIT
for f in /etc/apt/apt.conf.d/*; do
  case $(basename "$f") in docker-clean) ;; *) cp "$f" "$parts/" ;; esac
done
export DEBIAN_FRONTEND=noninteractive
echo "deps: installing ${missing[*]}"
apt_opts=(-o "Dir::Etc::parts=$parts" -o Dpkg::Use-Pty=0 -o APT::Install-Recommends=false -q)
# An index older than a day (or none) is refreshed first.
if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mmin -1440 2>/dev/null | head -1)" ]; then
  $SUDO apt-get "${apt_opts[@]}" update
fi
# Daemons must not start at install time: no systemd here, and the tests start their own.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e $policy ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee $policy >/dev/null && $SUDO chmod +x $policy && created_policy=1
fi
$SUDO apt-get "${apt_opts[@]}" install -y "${missing[@]}"
if [ $created_policy = 1 ]; then $SUDO rm -f $policy; fi
echo "deps: done"
