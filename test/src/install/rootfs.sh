#!/usr/bin/env bash
# Prints the path of a pristine Debian trixie root for the install test, building it once with
# debootstrap (minbase + what a Raspberry Pi OS image already has: systemd, udev, Debian's Node 20).
# The root is cached under /var/cache/canopy/rootfs (outside the repo); each test copies it.
set -euo pipefail
SUITE=${CANOPY_ROOTFS_SUITE:-trixie}
CACHE=${CANOPY_ROOTFS_CACHE:-/var/cache/canopy/rootfs}
MIRROR=${CANOPY_DEBIAN_MIRROR:-http://deb.debian.org/debian}
root="$CACHE/$SUITE-minbase"
if [ -f "$root/.canopy-ready" ]; then echo "$root"; exit 0; fi
command -v debootstrap >/dev/null || { echo "debootstrap missing: CANOPY_WITH_DEBOOTSTRAP=1 bash deploy/scripts/ensure-deps.sh" >&2; exit 1; }
mkdir -p "$CACHE"
rm -rf "$root.partial"
debootstrap --variant=minbase \
  --include=nodejs,systemd,udev,debian-archive-keyring,ca-certificates \
  "$SUITE" "$root.partial" "$MIRROR" >&2
rm -rf "$root"
mv "$root.partial" "$root"
touch "$root/.canopy-ready"
echo "$root"
