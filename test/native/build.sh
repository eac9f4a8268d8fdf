#!/usr/bin/env bash
# Builds the native test fixtures from source into test/native/build/ (gitignored):
#   build.sh harness                      -> build/simavr-uart (simavr + uart_pty, Debian's libsimavr-dev)
#   build.sh app VERSION [PAD] [MCU_ID]   -> build/app-uno-VERSION[-padPAD].hex (gcc-avr + avr-libc); prints its path
#   build.sh optiboot                     -> prints the path of Debian's optiboot_atmega328.hex
# The Debian packages come from: CANOPY_WITH_AVR=1 bash deploy/scripts/ensure-deps.sh
# Concurrent calls (parallel tests) are serialised with flock.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${CANOPY_NATIVE_BUILD:-$here/build}
mkdir -p "$out"
exec 9>"$out/.lock"
flock 9

missing() { echo "test/native: $1 missing; run: CANOPY_WITH_AVR=1 bash deploy/scripts/ensure-deps.sh" >&2; exit 1; }

case "${1:-}" in
  harness)
    [ -f /usr/include/simavr/parts/uart_pty.h ] || missing "libsimavr-dev"
    make -s -C "$here/simavr-uart" OUT="$out" >&2
    echo "$out/simavr-uart"
    ;;
  app)
    version=${2:?usage: build.sh app VERSION [PAD] [MCU_ID]}
    pad=${3:-0}
    mcu_id=${4:-avr-1}
    [[ "$version" =~ ^[0-9A-Za-z._+-]{1,32}$ ]] || { echo "build.sh: bad version $version" >&2; exit 2; }
    [[ "$pad" =~ ^[0-9]{1,6}$ ]] || { echo "build.sh: bad pad $pad" >&2; exit 2; }
    [[ "$mcu_id" =~ ^[A-Za-z0-9_-]{1,64}$ ]] || { echo "build.sh: bad mcu id $mcu_id" >&2; exit 2; }
    command -v avr-gcc >/dev/null 2>&1 || missing "gcc-avr"
    name="app-$mcu_id-$version"
    [ "$pad" != 0 ] && name="$name-pad$pad"
    make -s -C "$here/avr-app" OUT="$out" VERSION="$version" PAD="$pad" MCU_ID="$mcu_id" NAME="$name" >&2
    echo "$out/$name.hex"
    ;;
  optiboot)
    hex=${CANOPY_OPTIBOOT_HEX:-/usr/share/arduino/hardware/arduino/avr/bootloaders/optiboot/optiboot_atmega328.hex}
    [ -f "$hex" ] || hex=$(dpkg -L arduino-core-avr 2>/dev/null | grep '/optiboot_atmega328\.hex$' | head -n1 || true)
    [ -n "$hex" ] && [ -f "$hex" ] || missing "arduino-core-avr (optiboot_atmega328.hex)"
    echo "$hex"
    ;;
  *)
    echo "usage: build.sh harness | app VERSION [PAD] [MCU_ID] | optiboot" >&2
    exit 2
    ;;
esac
