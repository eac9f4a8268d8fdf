#!/usr/bin/env bash
# Installs what Canopy needs on a Debian / Raspberry Pi OS machine (bookworm or trixie), from Debian's
# packages only, idempotently:
#   - nats-server >= 2.14.0 (the first line that enforces permissions on messages arriving over a leaf
#     link, has JetStream sync_interval and survives a full disk). bookworm ships 2.9.10 and trixie
#     2.10.27, so when the nats-server on PATH is older (or missing) the package is fetched from
#     Debian's *testing* suite through a private apt state directory (the machine's own apt sources,
#     lists and pinning are never touched) and its static binary is unpacked to
#     /usr/local/lib/canopy/nats-server-<version>/ with /usr/local/bin/nats-server pointing at it.
#     The package is unpacked, not installed, so it does not enable a system nats-server service.
#   - socat (serial tests and demo MCUs over pty pairs); faketime for the fault tests, mosquitto-clients
#     and python3-paho-mqtt (MQTT profile fixtures replayed by real clients), python3 for the sd_notify
#     test's fake service manager (node has no unix datagram sockets). All are for tests and the demo:
#     CANOPY_FOR_TESTS=0 skips them, as the device installer (deploy/install.sh) does.
#     python3-fusepy (with libfuse2) for the power-cut test: a FUSE layer under the leaf's
#     store that undoes every write not yet fsynced (test/native/volatilefs.py).
#   - mosquitto, only for the MQTT benchmark: CANOPY_WITH_MOSQUITTO=1.
#   - debootstrap, only for the install test (a fresh Debian root): CANOPY_WITH_DEBOOTSTRAP=1.
#   - the AVR flashing test kit, CANOPY_WITH_AVR=1 (npm's pretest sets it): avrdude, simavr with its
#     library and headers, gcc-avr + avr-libc, arduino-core-avr (optiboot), make and gcc.
#   - chromium (and openssl, for a test certificate), only for the web console's browser tests and bench:
#     CANOPY_WITH_CHROMIUM=1 (npm's pretest sets it).
#   - extra packages named in CANOPY_EXTRA_PACKAGES (space separated; e.g. "chromium simavr").
# A nats-server already on PATH that is new enough is used as it is.
set -euo pipefail
MIN_NATS=2.14.0
STATE=${CANOPY_APT_STATE:-/var/cache/canopy/apt}
PREFIX=${CANOPY_NATS_PREFIX:-/usr/local}

log() { echo "canopy: $*" >&2; }

# version_ge A B: A >= B for x.y.z
version_ge() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" = "$2" ]; }

nats_version() { "$1" --version 2>/dev/null | sed -n 's/.*v\([0-9][0-9.]*\).*/\1/p' | head -n1; }

if [ "$(id -u)" -eq 0 ]; then SUDO=""; elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo"; else SUDO="!"; fi
need_root() {
  if [ "$SUDO" = "!" ]; then
    log "$1 needs root: run  sudo bash $0"
    exit 1
  fi
  command -v apt-get >/dev/null 2>&1 || { log "no apt-get here; $1 by hand (nats-server >= $MIN_NATS, socat)"; exit 1; }
}

need=()
# the hub's leaf-link CA and certificates (hub and device install)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
if [ "${CANOPY_FOR_TESTS:-1}" = 1 ]; then
  # socat: serial tests and the demo's MCUs (pty pairs); a device's bridge opens real ports.
  command -v socat >/dev/null 2>&1 || need+=(socat)
  # libfaketime: the fault tests run agents with a clock hours off, as a Pi without RTC has it.
  command -v faketime >/dev/null 2>&1 || need+=(faketime)
  command -v python3 >/dev/null 2>&1 || need+=(python3-minimal)
  # MQTT test clients: the profile fixtures are replayed with mosquitto_pub and Python's paho-mqtt.
  command -v mosquitto_pub >/dev/null 2>&1 || need+=(mosquitto-clients)
  python3 -c 'import paho.mqtt.client' >/dev/null 2>&1 || need+=(python3-paho-mqtt)
  # The power-cut test: test/native/volatilefs.py runs on Debian's python3 with fusepy.
  [ -f /usr/lib/python3/dist-packages/fusepy.py ] || need+=(python3-fusepy)
fi
if [ "${CANOPY_WITH_DEBOOTSTRAP:-0}" = 1 ] && ! command -v debootstrap >/dev/null 2>&1 && [ ! -x /usr/sbin/debootstrap ]; then
  need+=(debootstrap)
fi
if [ "${CANOPY_WITH_MOSQUITTO:-0}" = 1 ] && ! command -v mosquitto >/dev/null 2>&1 && [ ! -x /usr/sbin/mosquitto ]; then
  need+=(mosquitto)
fi
if [ "${CANOPY_WITH_CHROMIUM:-0}" = 1 ]; then
  [ -x /usr/bin/chromium ] || need+=(chromium)
  command -v openssl >/dev/null 2>&1 || need+=(openssl)
fi
avr_packages=""
if [ "${CANOPY_WITH_AVR:-0}" = 1 ]; then
  avr_packages="avrdude simavr libsimavr-dev libsimavrparts1 gcc-avr avr-libc arduino-core-avr make gcc libc6-dev"
fi
for p in ${CANOPY_EXTRA_PACKAGES:-} $avr_packages; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  need_root "installing ${need[*]}"
  log "installing ${need[*]} from Debian's packages"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq >&2
  # mosquitto's package enables a system service; Canopy starts its own instances when it needs one.
  $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
fi

have=""
if command -v nats-server >/dev/null 2>&1; then have=$(nats_version nats-server); fi
if [ -n "$have" ] && version_ge "$have" "$MIN_NATS"; then
  exit 0
fi
[ -n "$have" ] && log "nats-server $have on PATH is older than $MIN_NATS; fetching Debian testing's package"
need_root "installing nats-server >= $MIN_NATS"

# A private apt state dir: its own sources (Debian testing, signed by the Debian archive keyring the
# machine already trusts), lists and cache. Nothing under /etc/apt changes.
mirror=${CANOPY_DEBIAN_MIRROR:-http://deb.debian.org/debian}
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
[ -f "$keyring" ] || { log "missing $keyring (package debian-archive-keyring)"; exit 1; }
$SUDO mkdir -p "$STATE/etc/sources.list.d" "$STATE/etc/preferences.d" "$STATE/lists/partial" "$STATE/archives/partial"
printf 'Types: deb\nURIs: %s\nSuites: testing\nComponents: main\nSigned-By: %s\n' "$mirror" "$keyring" |
  $SUDO tee "$STATE/etc/sources.list.d/canopy-testing.sources" >/dev/null
apt_private=(-o "Dir::Etc::SourceList=/dev/null" -o "Dir::Etc::SourceParts=$STATE/etc/sources.list.d"
  -o "Dir::Etc::Preferences=/dev/null" -o "Dir::Etc::PreferencesParts=$STATE/etc/preferences.d"
  -o "Dir::State::Lists=$STATE/lists" -o "Dir::Cache::Archives=$STATE/archives" -o "Acquire::Languages=none"
  -o "APT::Sandbox::User=root")
$SUDO apt-get "${apt_private[@]}" update -qq >&2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && $SUDO apt-get "${apt_private[@]}" download nats-server >&2)
deb=$(ls "$work"/nats-server_*.deb | head -n1)
ver=$(dpkg-deb -f "$deb" Version | sed 's/-[^-]*$//; s/^[0-9]*://')
version_ge "$ver" "$MIN_NATS" || { log "Debian testing has nats-server $ver, older than $MIN_NATS"; exit 1; }
dest="$PREFIX/lib/canopy/nats-server-$ver"
$SUDO mkdir -p "$dest" "$PREFIX/bin"
dpkg-deb --fsys-tarfile "$deb" | $SUDO tar -x -C "$work" ./usr/sbin/nats-server
$SUDO install -m 0755 "$work/usr/sbin/nats-server" "$dest/nats-server"
$SUDO ln -sfn "$dest/nats-server" "$PREFIX/bin/nats-server"
got=$(nats_version "$PREFIX/bin/nats-server")
log "nats-server $got installed at $dest (linked from $PREFIX/bin/nats-server)"
resolved=$(command -v nats-server || true)
if [ "$resolved" != "$PREFIX/bin/nats-server" ]; then
  log "note: 'nats-server' on PATH resolves to ${resolved:-nothing}; put $PREFIX/bin first or set CANOPY_NATS_SERVER=$PREFIX/bin/nats-server"
fi
