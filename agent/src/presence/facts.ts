import { statfs } from "node:fs/promises";
import os from "node:os";
import type { Facts } from "@canopy/protocol";
import { LoadMeter, cpuTemperature, memFacts, netInterfaces } from "./host.js";
import { staticFacts } from "./static-facts.js";

/**
 * Inventory facts. Static facts are read once (systeminformation, in a short-lived child); the rest
 * is refreshed in the background from /proc and /sys, so heartbeats and queries read a cache, never wait.
 */
export class FactsSampler {
  private facts: Facts = { os: {}, cpu: {}, mem: {}, disk: {}, net: {} };
  private timer: NodeJS.Timeout | undefined;
  private refreshing: Promise<void> | undefined;
  private readonly load = new LoadMeter();

  constructor(private readonly dataDir: string, private readonly intervalMs = 15_000) {}

  get current(): Facts {
    return this.facts;
  }

  async start(): Promise<void> {
    const fixed = await staticFacts();
    this.facts.os = fixed.os;
    this.facts.cpu = fixed.cpu;
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
    const [mem, disk, interfaces, load, temperature] = await Promise.all([
      memFacts(),
      dataDisk(this.dataDir),
      netInterfaces(),
      this.load.sample(),
      cpuTemperature(),
    ]);
    this.facts = {
      ...this.facts,
      cpu: {
        ...this.facts.cpu,
        ...(load === undefined ? {} : { load }),
        ...(temperature === undefined ? {} : { temperature }),
      },
      mem,
      disk: disk ?? {},
      net: { interfaces },
      uptime: Math.round(os.uptime()),
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
