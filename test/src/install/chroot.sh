#!/usr/bin/env bash
# A throwaway Debian root for the install test: an overlay over the cached pristine root
# (rootfs.sh), so every run starts fresh and the cache is never written.
#   chroot.sh up DIR     → DIR/root is the root (proc, dev, resolv.conf, a copy of the host's
#                           nats-server apt cache so ensure-deps.sh finds fresh lists)
#   chroot.sh down DIR   → unmounts everything under DIR/root and removes DIR
set -euo pipefail
cmd=$1 dir=$2
root="$dir/root"
case "$cmd" in
  up)
    base=$(bash "$(dirname "$0")/rootfs.sh")
    mkdir -p "$dir/upper" "$dir/work" "$root"
    mount -t overlay overlay -o "lowerdir=$base,upperdir=$dir/upper,workdir=$dir/work" "$root"
    mount -t proc proc "$root/proc"
    mount --bind /dev "$root/dev"
    mount --bind /dev/pts "$root/dev/pts"
    cp /etc/resolv.conf "$root/etc/resolv.conf"
    # The host's mirror is the chroot's: when the host accepts its Release files past Valid-Until
    # (a frozen snapshot), so must apt inside.
    if [ "$(apt-config dump Acquire::Check-Valid-Until 2>/dev/null | sed -n 's/.*"\(.*\)";/\1/p')" = false ]; then
      echo 'Acquire::Check-Valid-Until "false";' >"$root/etc/apt/apt.conf.d/99canopy-test-valid-until"
    fi
    if [ -d /var/cache/canopy/apt/lists ]; then
      mkdir -p "$root/var/cache/canopy/apt"
      cp -a /var/cache/canopy/apt/. "$root/var/cache/canopy/apt/"
    fi
    echo "$root"
    ;;
  down)
    for m in dev/pts dev proc; do mountpoint -q "$root/$m" && umount -l "$root/$m"; done
    mountpoint -q "$root" && umount -l "$root"
    rm -rf "$dir"
    ;;
  *) echo "chroot.sh up|down DIR" >&2; exit 2 ;;
esac
