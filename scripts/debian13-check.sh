#!/usr/bin/env bash
# Runs the CI job (.ci/run: set-up, lint, the whole suite) in a Debian 13
# (trixie) chroot made with debootstrap, to exercise the Debian 13 set-up
# path (PostgreSQL 17, pg_cron and pgvector as binary packages) from a
# Debian 12 machine. Needs root and the Debian and PyPI registries; the
# host's CA bundle is copied in, so a TLS-inspecting proxy works too.
#
#   sudo scripts/debian13-check.sh [CHROOT_DIR]   (default /var/tmp/otel_db-trixie)
#
# The chroot is kept for the next run; its PostgreSQL uses port 54329, so
# stop the project cluster first (make stop).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
root=${1:-/var/tmp/otel_db-trixie}

say() { printf 'debian13-check: %s\n' "$*"; }
[ "$(id -u)" -eq 0 ] || { say "run as root"; exit 1; }

if [ ! -x "$root/usr/bin/apt-get" ]; then
    command -v debootstrap >/dev/null || apt-get install -y -qq debootstrap >/dev/null
    say "making a trixie chroot in $root"
    debootstrap --variant=minbase trixie "$root" http://deb.debian.org/debian >/dev/null
fi
cp /etc/resolv.conf "$root/etc/resolv.conf"
mount -t proc proc "$root/proc"
mount --rbind /sys "$root/sys"
mount --rbind /dev "$root/dev"
# Slaves, so that unmounting them on exit never propagates back to the host;
# the clean-up is armed only once they are.
mount --make-rslave "$root/sys"
mount --make-rslave "$root/dev"
cleanup() { umount -R "$root/proc" "$root/sys" "$root/dev" 2>/dev/null || true; }
trap cleanup EXIT
chroot "$root" /bin/bash -c 'DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    make python3 python3-venv git ca-certificates npm >/dev/null'
cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"

# A fresh clone of the current commit, with ../shared beside it as in CI.
rm -rf "$root/opt/work"
mkdir -p "$root/opt/work"
git clone -q "$repo" "$root/opt/work/main"
[ -d "$repo/../shared" ] && cp -r "$repo/../shared" "$root/opt/work/shared"
say "running .ci/run in the chroot"
chroot "$root" /bin/bash -c 'cd /opt/work/main && CI=true bash .ci/run; status=$?; make stop >/dev/null 2>&1; exit $status'
