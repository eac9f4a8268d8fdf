import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";

/**
 * Env that runs a process with its wall clock shifted (Debian's libfaketime, LD_PRELOAD), as a Pi
 * without RTC after a power cut would have it. `offset` in libfaketime's syntax: "-1h", "+10m".
 * Only the node process is affected: nats-server is a static Go binary and ignores LD_PRELOAD.
 */
export function skewedClockEnv(offset: string): NodeJS.ProcessEnv {
  return { LD_PRELOAD: faketimeLib(), FAKETIME: offset, FAKETIME_DONT_FAKE_MONOTONIC: "1" };
}

let lib: string | undefined;
function faketimeLib(): string {
  if (lib) return lib;
  let arch = "x86_64-linux-gnu";
  try {
    arch = execFileSync("dpkg-architecture", ["-qDEB_HOST_MULTIARCH"], { encoding: "utf8" }).trim() || arch;
  } catch {
    // dpkg-dev absent: fall back to gcc's view or the default.
    try {
      arch = execFileSync("gcc", ["-print-multiarch"], { encoding: "utf8" }).trim() || arch;
    } catch {
      /* keep the default */
    }
  }
  const p = `/usr/lib/${arch}/faketime/libfaketime.so.1`;
  if (!existsSync(p)) throw new Error(`libfaketime not found at ${p}: run deploy/scripts/ensure-deps.sh (package faketime)`);
  return (lib = p);
}
