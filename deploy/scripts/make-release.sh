#!/usr/bin/env bash
# Builds the release tarball a device or hub installs from:
#   deploy/scripts/make-release.sh [--arch amd64|arm64|armhf] [--out DIR] [--version V]
# → DIR/canopy-<version>-linux-<arch>.tar.gz holding canopy-<version>/ with the compiled parts (no
# tests, no sources), production dependencies only (npm ci --omit=dev; the native modules lmdb and
# serialport ship prebuilt binaries, chosen for --arch with npm's --cpu, so no compiler is needed on
# the Pi), deploy/ (install.sh, units, udev rule, ensure-deps.sh) and ./install.sh at the top.
set -euo pipefail
root=$(cd "$(dirname "$(readlink -f "$0")")/../.." && pwd)
arch=$(dpkg --print-architecture 2>/dev/null || echo amd64)
out="$root/dist-release"
version=""
build=1
while [ $# -gt 0 ]; do
  case "$1" in
    --arch) arch=$2; shift ;;
    --out) out=$2; shift ;;
    --version) version=$2; shift ;;
    --no-build) build=0 ;;
    -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
    *) echo "make-release: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
case "$arch" in amd64) cpu=x64 ;; arm64) cpu=arm64 ;; armhf) cpu=arm ;; *) echo "make-release: --arch amd64|arm64|armhf" >&2; exit 2 ;; esac
[ -n "$version" ] || version=$(node -p "require('$root/package.json').version")
parts=(protocol agent gateway firmware-bridge)

[ "$build" = 1 ] && (cd "$root" && npm run build >&2)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
stage="$work/canopy-$version"
mkdir -p "$stage"
cp "$root/package.json" "$root/package-lock.json" "$stage/"
cp -a "$root/bin" "$stage/bin"
for p in "${parts[@]}"; do
  mkdir -p "$stage/$p"
  cp "$root/$p/package.json" "$stage/$p/"
  (cd "$root/$p" && find dist -type f -name '*.js' ! -name '*.test.js' -print0 | tar --null -T - -cf -) | tar -xf - -C "$stage/$p"
  [ -d "$root/$p/public" ] && cp -a "$root/$p/public" "$stage/$p/public"
done
# The other workspaces' manifests only, so the lockfile still matches; nothing of theirs is installed.
for p in test bench; do mkdir -p "$stage/$p" && cp "$root/$p/package.json" "$stage/$p/"; done
ws=(); for p in "${parts[@]}"; do ws+=(--workspace "$p"); done
(cd "$stage" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error --os=linux --cpu="$cpu" \
  "${ws[@]}" --include-workspace-root >&2)
# `canopy --version` reads the root manifest: make it say the release's version.
node -e 'const f=process.argv[1], p=JSON.parse(require("fs").readFileSync(f,"utf8")); p.version=process.argv[2]; require("fs").writeFileSync(f, JSON.stringify(p, null, 2)+"\n")' "$stage/package.json" "$version"
rm -rf "$stage/test" "$stage/bench" "$stage/node_modules/@canopy/test" "$stage/node_modules/@canopy/bench"
mkdir -p "$stage/deploy/scripts"
cp -a "$root/deploy/install.sh" "$root/deploy/install-hub.sh" "$root/deploy/lib" "$root/deploy/systemd" "$root/deploy/udev" "$stage/deploy/"
cp -a "$root/deploy/scripts/ensure-deps.sh" "$stage/deploy/scripts/"
ln -s deploy/install.sh "$stage/install.sh"
echo "$version" >"$stage/VERSION"
echo "$arch" >"$stage/ARCH"
mkdir -p "$out"
tarball="$out/canopy-$version-linux-$arch.tar.gz"
tar -czf "$tarball" -C "$work" "canopy-$version"
echo "$tarball"
