import { execFile } from "node:child_process";
import os from "node:os";
import { Facts } from "@canopy/protocol";

export type StaticFacts = Pick<Facts, "os" | "cpu">;

// Runs in a short-lived child: systeminformation's distro and CPU names (lscpu, the Raspberry Pi
// revision table) are worth keeping, but loading the library would stay in the agent's RSS for good.
const SCRIPT = `
const si = (await import(process.argv[1])).default;
const [o, c] = await Promise.all([si.osInfo(), si.cpu()]);
process.stdout.write(JSON.stringify({
  os: { platform: o.platform, distro: o.distro, release: o.release, arch: o.arch, kernel: o.kernel, hostname: o.hostname },
  cpu: { model: (c.manufacturer + " " + c.brand).trim(), cores: c.cores },
}));`;

/** OS and CPU facts, read once at start; what `os.*` knows if the child fails. */
export async function staticFacts(timeoutMs = 30_000): Promise<StaticFacts> {
  const fallback: StaticFacts = {
    os: { platform: process.platform, arch: os.arch(), kernel: os.release(), hostname: os.hostname() },
    cpu: { cores: os.cpus().length },
  };
  try {
    const out = await new Promise<string>((resolve, reject) => {
      execFile(
        process.execPath,
        ["--input-type=module", "-e", SCRIPT, import.meta.resolve("systeminformation")],
        { timeout: timeoutMs, maxBuffer: 64 * 1024 },
        (err, stdout) => (err ? reject(err) : resolve(stdout)),
      );
    });
    const parsed = Facts.pick({ os: true, cpu: true }).parse(JSON.parse(out));
    return { os: { ...fallback.os, ...parsed.os }, cpu: { ...fallback.cpu, ...parsed.cpu } };
  } catch {
    return fallback;
  }
}
