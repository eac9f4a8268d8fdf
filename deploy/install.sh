#!/usr/bin/env bash
# Installs Canopy on a Debian / Raspberry Pi OS machine (bookworm or trixie; arm64, armhf, amd64) from
# a release tree (deploy/scripts/make-release.sh), in one command:
#   sudo ./install.sh --join TOKEN            a device, enrolled with the join token from `canopy device add`
#   sudo ./install.sh --bundle FILE           the same from a bundle file
#   sudo ./install.sh --hub [--hub-args "…"]  a hub node (also: install-hub.sh)
#   sudo ./install.sh --upgrade               replace the installed version with this tree's; keeps config and data
#   sudo ./install.sh --uninstall [--purge]   remove units, user and files; /var/lib/canopy stays unless --purge
# It checks OS, architecture and Node (>= 20; Debian's nodejs on trixie), installs nats-server >= 2.14
# (scripts/ensure-deps.sh), puts Canopy under /opt/canopy (production dependencies only) with
# /usr/bin/canopy, creates the `canopy` system user (groups dialout, gpio, i2c where they exist),
# writes /etc/canopy/agent.json (0600, owner canopy), installs the udev rule and the systemd unit and
# enables it. Running it again changes nothing. Exit codes: 0 ok, 1 failure, 2 bad usage or input.
set -euo pipefail
PREFIX=/opt/canopy
ETC=/etc/canopy
DATA=/var/lib/canopy
UNITS=/etc/systemd/system
UDEV=/etc/udev/rules.d/99-canopy-serial.rules
BIN=/usr/bin/canopy
USER_NAME=canopy
TREE=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)

log() { echo "canopy install: $*" >&2; }
die() { log "$1"; exit "${2:-1}"; }
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit "${1:-0}"; }

mode=install role=device join="" bundle="" purge=0 hub_args="" bridge=1
while [ $# -gt 0 ]; do
  case "$1" in
    --join) join=${2:?--join needs a token}; shift ;;
    --bundle) bundle=${2:?--bundle needs a file}; shift ;;
    --hub) role=hub ;;
    --hub-args) hub_args=${2?--hub-args needs a value}; shift ;;
    --no-bridge) bridge=0 ;;
    --upgrade) mode=upgrade ;;
    --uninstall) mode=uninstall ;;
    --purge) purge=1 ;;
    -h|--help) usage 0 ;;
    *) log "unknown argument: $1"; usage 2 ;;
  esac
  shift
done
[ "$(id -u)" -eq 0 ] || die "run as root: sudo $0 $*" 2
[ -n "$join" ] && [ -n "$bundle" ] && die "give --join or --bundle, not both" 2
[ "$purge" = 1 ] && [ "$mode" != uninstall ] && die "--purge goes with --uninstall" 2

systemd_running() { [ -d /run/systemd/system ]; }
unit_name() { echo "canopy-$1.service"; }

uninstall() {
  for role in agent hub; do
    local unit; unit=$(unit_name "$role")
    if [ -f "$UNITS/$unit" ]; then
      systemd_running && systemctl stop "$unit" 2>/dev/null || true
      systemctl disable "$unit" >/dev/null 2>&1 || true
      rm -f "$UNITS/$unit"
      log "removed $unit"
    fi
  done
  systemd_running && systemctl daemon-reload || true
  rm -f "$UDEV" "$BIN"
  rm -rf "$PREFIX" "$PREFIX.new" "$PREFIX.old" "$ETC"
  # nats-server as ensure-deps.sh unpacked it (a package-managed one is left alone).
  if [ -L /usr/local/bin/nats-server ] && readlink /usr/local/bin/nats-server | grep -q '^/usr/local/lib/canopy/'; then
    rm -f /usr/local/bin/nats-server
  fi
  rm -rf /usr/local/lib/canopy /var/cache/canopy/apt
  rmdir /var/cache/canopy 2>/dev/null || true
  if getent passwd "$USER_NAME" >/dev/null; then userdel "$USER_NAME"; log "removed user $USER_NAME"; fi
  if getent group "$USER_NAME" >/dev/null; then groupdel "$USER_NAME"; fi
  if [ "$purge" = 1 ]; then rm -rf "$DATA"; log "removed $DATA"; else [ -d "$DATA" ] && log "kept data in $DATA (remove with --uninstall --purge)"; fi
  log "uninstalled"
}

if [ "$mode" = uninstall ]; then uninstall; exit 0; fi

# --- checks: OS, architecture, the tree, Node ---------------------------------------------------
[ -r /etc/os-release ] || die "cannot read /etc/os-release: Canopy installs on Debian or Raspberry Pi OS (bookworm, trixie)"
# shellcheck disable=SC1091
. /etc/os-release
case " ${ID:-} ${ID_LIKE:-} " in *" debian "*|*" raspbian "*) ;; *) die "unsupported OS '${PRETTY_NAME:-unknown}': Canopy installs on Debian or Raspberry Pi OS (bookworm, trixie)" ;; esac
case "${VERSION_CODENAME:-}" in bookworm|trixie) ;; *) die "unsupported release '${VERSION_CODENAME:-unknown}' (${PRETTY_NAME:-}): Canopy needs bookworm or trixie" ;; esac
arch=$(dpkg --print-architecture)
case "$arch" in arm64|armhf|amd64) ;; *) die "unsupported architecture $arch: Canopy runs on arm64, armhf and amd64" ;; esac
[ -f "$TREE/VERSION" ] && [ -f "$TREE/bin/canopy.js" ] || die "$TREE is not a Canopy release tree (make one with deploy/scripts/make-release.sh)"
version=$(cat "$TREE/VERSION")
tree_arch=$(cat "$TREE/ARCH" 2>/dev/null || echo "$arch")
[ "$tree_arch" = "$arch" ] || die "this release is for $tree_arch, the machine is $arch: use canopy-$version-linux-$arch.tar.gz"

node_major() { node -e 'process.stdout.write(process.versions.node.split(".")[0])' 2>/dev/null || echo 0; }
if ! command -v node >/dev/null 2>&1; then
  cand=$(apt-cache policy nodejs 2>/dev/null | sed -n 's/^ *Candidate: \([0-9]*\).*/\1/p')
  if [ -n "$cand" ] && [ "$cand" -ge 20 ] 2>/dev/null; then
    log "installing Node from Debian's nodejs package"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs >&2
  else
    die "Node >= 20 is missing and this release's nodejs package is ${cand:-absent}: on bookworm install Node 20 (e.g. nodejs.org / NodeSource), then run again"
  fi
fi
[ "$(node_major)" -ge 20 ] || die "Node $(node --version) is too old: Canopy needs Node >= 20 (trixie's nodejs package is 20)"

installed=""
[ -f "$PREFIX/VERSION" ] && installed=$(cat "$PREFIX/VERSION")
unit=$(unit_name "$([ "$role" = hub ] && echo hub || echo agent)")

if [ -n "$installed" ] && [ "$mode" = install ]; then
  if [ "$installed" = "$version" ] && [ -f "$UNITS/$unit" ]; then
    log "already installed, version $installed (nothing changed; --upgrade to replace, --uninstall to remove)"
    exit 0
  fi
  [ "$installed" = "$version" ] || die "version $installed is installed; run with --upgrade to install $version"
fi
[ "$mode" = upgrade ] && [ -z "$installed" ] && die "nothing to upgrade: Canopy is not installed (run without --upgrade)" 2
if [ "$role" = device ] && [ ! -f "$ETC/agent.json" ] && [ -z "$join$bundle" ]; then
  die "a device needs its enrollment: --join TOKEN or --bundle FILE (from 'canopy device add')" 2
fi

enroll_args=()
[ -n "$join" ] && enroll_args+=(--join "$join")
[ -n "$bundle" ] && enroll_args+=(--bundle "$bundle")
if [ "$role" = device ] && [ -n "$join$bundle" ]; then
  node "$TREE/deploy/lib/agent-config.mjs" --check "${enroll_args[@]}" || exit $?
fi

# --- nats-server >= 2.14 (no test tools on a device) ----------------------------------------------
CANOPY_FOR_TESTS=0 bash "$TREE/deploy/scripts/ensure-deps.sh"

# --- the canopy user ------------------------------------------------------------------------------
if ! getent passwd "$USER_NAME" >/dev/null; then
  useradd --system --user-group --home-dir "$DATA" --no-create-home --shell /usr/sbin/nologin --comment "Canopy" "$USER_NAME"
  log "created system user $USER_NAME"
fi
for g in dialout gpio i2c spi; do
  if getent group "$g" >/dev/null && ! id -nG "$USER_NAME" | tr ' ' '\n' | grep -qx "$g"; then
    usermod -a -G "$g" "$USER_NAME"
  fi
done

# --- the tree: /opt/canopy (replaced whole on upgrade) -------------------------------------------
if [ "$installed" != "$version" ]; then
  rm -rf "$PREFIX.new" "$PREFIX.old"
  mkdir -p "$PREFIX.new"
  cp -a "$TREE/." "$PREFIX.new/"
  chown -R root:root "$PREFIX.new"
  [ -d "$PREFIX" ] && mv "$PREFIX" "$PREFIX.old"
  mv "$PREFIX.new" "$PREFIX"
  rm -rf "$PREFIX.old"
  log "installed Canopy $version in $PREFIX${installed:+ (was $installed)}"
fi
ln -sfn "$PREFIX/bin/canopy.js" "$BIN"

# --- config and data ------------------------------------------------------------------------------
install -d -m 0750 -o "$USER_NAME" -g "$USER_NAME" "$DATA"
install -d -m 0750 -o root -g "$USER_NAME" "$ETC"
if [ "$role" = device ]; then
  if [ -n "$join$bundle" ] && [ ! -f "$ETC/agent.json" ]; then
    args=(--out "$ETC" --data "$DATA" "${enroll_args[@]}")
    [ "$bridge" = 0 ] && args+=(--no-bridge)
    node "$PREFIX/deploy/lib/agent-config.mjs" "${args[@]}" >/dev/null || exit $?
    log "wrote $ETC/agent.json"
  elif [ -n "$join$bundle" ]; then
    log "kept the existing $ETC/agent.json (--uninstall first to enroll again)"
  fi
  for f in "$ETC"/agent.json "$ETC"/*.creds "$ETC"/*.pem; do
    [ -f "$f" ] && chown "$USER_NAME:$USER_NAME" "$f" && chmod 0600 "$f"
  done
  install -m 0644 "$PREFIX/deploy/udev/99-canopy-serial.rules" "$UDEV"
  if command -v udevadm >/dev/null 2>&1 && systemd_running; then udevadm control --reload-rules && udevadm trigger --subsystem-match=tty || true; fi
elif [ ! -f "$ETC/hub.env" ]; then
  printf 'CANOPY_HUB_ARGS=%s\n' "$hub_args" >"$ETC/hub.env"
  chmod 0640 "$ETC/hub.env"
  chown "root:$USER_NAME" "$ETC/hub.env"
fi
chown -R "$USER_NAME:$USER_NAME" "$DATA"

# --- the unit -------------------------------------------------------------------------------------
if ! cmp -s "$PREFIX/deploy/systemd/$unit" "$UNITS/$unit"; then
  install -m 0644 "$PREFIX/deploy/systemd/$unit" "$UNITS/$unit"
  systemd_running && systemctl daemon-reload
fi
systemctl enable "$unit" >/dev/null 2>&1 || die "systemctl enable $unit failed"
if systemd_running; then
  if [ "$mode" = upgrade ]; then systemctl restart "$unit"; else systemctl start "$unit"; fi
  log "$unit enabled and running"
else
  log "$unit enabled (systemd is not running here: it starts at the next boot)"
fi
log "done: Canopy $version ($role)"
