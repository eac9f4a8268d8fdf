import { statfs } from "node:fs/promises";
import si from "systeminformation";
import type { Facts } from "@canopy/protocol";

/**
 * Inventory facts from systeminformation. Static facts are read once; the rest is refreshed in the
 * background (currentLoad alone takes ~0.5 s), so heartbeats and queries read a cache, never wait.
 */
export class FactsSampler {
  private facts: Facts = { os: {}, cpu: {}, mem: {}, disk: {}, net: {} };
  private timer: NodeJS.Timeout | undefined;
  private refreshing: Promise<void> | undefined;

  constructor(private readonly dataDir: string, private readonly intervalMs = 15_000) {}

  get current(): Facts {
    return this.facts;
  }

  async start(): Promise<void> {
    const [os, cpu] = await Promise.all([si.osInfo(), si.cpu()]);
    this.facts.os = {
      platform: os.platform,
      distro: os.distro,
      release: os.release,
      arch: os.arch,
      kernel: os.kernel,
      hostname: os.hostname,
    };
    this.facts.cpu = { model: `${cpu.manufacturer} ${cpu.brand}`.trim(), cores: cpu.cores };
    await this.refresh();
    this.timer = setInterval(() => void this.refresh(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  refresh(): Promise<void> {
    this.refreshing ??= this.sample().finally(() => (this.refreshing = undefined));
    return this.refreshing;
  }

  private async sample(): Promise<void> {
    const [mem, disk, ifaces, load, temp] = await Promise.all([
      si.mem(),
      dataDisk(this.dataDir),
      si.networkInterfaces().catch(() => []),
      si.currentLoad().catch(() => undefined),
      si.cpuTemperature().catch(() => undefined),
    ]);
    this.facts = {
      ...this.facts,
      cpu: {
        ...this.facts.cpu,
        ...(load ? { load: round(load.currentLoad) } : {}),
        ...(temp && typeof temp.main === "number" ? { temperature: temp.main } : {}),
      },
      mem: { total: mem.total, available: mem.available, used: mem.active },
      disk: disk ?? {},
      net: {
        interfaces: (Array.isArray(ifaces) ? ifaces : [ifaces])
          .filter((i) => !i.internal)
          .map((i) => ({ name: i.iface, ip4: i.ip4, mac: i.mac })),
      },
      uptime: Math.round(si.time().uptime),
    };
  }
}

/**
 * The filesystem holding the data dir, from statfs(2) on the dir itself: right for any mount (tmpfs,
 * overlay, a USB disk) where systeminformation's df-based list skips some types.
 */
async function dataDisk(dir: string): Promise<{ total: number; available: number; used: number } | undefined> {
  try {
    const s = await statfs(dir);
    return { total: s.blocks * s.bsize, available: s.bavail * s.bsize, used: (s.blocks - s.bfree) * s.bsize };
  } catch {
    return undefined;
  }
}

function round(n: number): number {
  return Math.round(n * 10) / 10;
}
