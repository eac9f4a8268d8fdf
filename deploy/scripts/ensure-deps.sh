#!/usr/bin/env bash
# Installs what Canopy needs on a Debian / Raspberry Pi OS machine, from Debian's packages only:
# nats-server (2.9.10 on bookworm) and socat (serial tests and demo MCUs over pty pairs).
# mosquitto is only for the MQTT benchmark: CANOPY_WITH_MOSQUITTO=1 adds it.
set -euo pipefail
need=()
command -v nats-server >/dev/null 2>&1 || need+=(nats-server)
command -v socat >/dev/null 2>&1 || need+=(socat)
if [ "${CANOPY_WITH_MOSQUITTO:-0}" = 1 ] && ! command -v mosquitto >/dev/null 2>&1 && [ ! -x /usr/sbin/mosquitto ]; then
  need+=(mosquitto)
fi
[ ${#need[@]} -eq 0 ] && exit 0

echo "canopy: installing ${need[*]} from Debian's packages" >&2
if [ "$(id -u)" -eq 0 ]; then SUDO=""; elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo"; else
  echo "canopy: missing ${need[*]}. Install with: sudo apt-get install -y ${need[*]}" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "canopy: no apt-get here; install ${need[*]} with your package manager" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >&2
# mosquitto's package enables a system service; Canopy starts its own instances when it needs one.
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
command -v nats-server >/dev/null && echo "canopy: $(nats-server --version)" >&2
