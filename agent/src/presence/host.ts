import { readFile, readdir } from "node:fs/promises";
import os from "node:os";
import type { Facts } from "@canopy/protocol";

/**
 * The facts refreshed every interval, read straight from /proc, /sys and `os.*`: memory and load as
 * systeminformation's `mem()` and `currentLoad()` count them, interfaces as its Linux list, temperature
 * from the CPU's thermal zone. Not that library: loading it costs an idle agent ~5 MiB of RSS for
 * good, and its Linux sampling forks `cat`/`date`/`sensors` shells on every refresh.
 */

/** `used` is total minus available, like systeminformation's `active`. */
export async function memFacts(): Promise<Facts["mem"]> {
  const info = await readFile("/proc/meminfo", "utf8").catch(() => "");
  const bytes = (key: string): number | undefined => {
    const m = new RegExp(`^${key}:\\s+(\\d+)`, "m").exec(info);
    return m ? Number(m[1]) * 1024 : undefined;
  };
  const total = bytes("MemTotal") ?? os.totalmem();
  const available = bytes("MemAvailable") ?? os.freemem();
  return { total, available, used: total - available };
}

interface CpuTicks {
  busy: number;
  total: number;
}

/**
 * CPU load in percent since the previous sample (since boot on the first), from /proc/stat's `cpu`
 * line, counted as systeminformation counts it (libuv's user/nice/system/idle/irq plus steal and
 * guest; iowait and softirq in neither).
 */
export class LoadMeter {
  private last: CpuTicks = { busy: 0, total: 0 };

  async sample(): Promise<number | undefined> {
    const stat = await readFile("/proc/stat", "utf8").catch(() => undefined);
    const fields = stat ? /^cpu +([\d ]+)$/m.exec(stat)?.[1]?.trim().split(/\s+/).map(Number) : undefined;
    if (!fields || fields.length < 4) return undefined;
    const [user = 0, nice = 0, system = 0, idle = 0, , irq = 0, , steal = 0, guest = 0] = fields;
    const busy = user + nice + system + irq + steal + guest;
    const now = { busy, total: busy + idle };
    const dt = now.total - this.last.total;
    const load = dt > 0 ? ((now.busy - this.last.busy) / dt) * 100 : 0;
    this.last = now;
    return Math.round(load * 10) / 10;
  }
}

/** The CPU's thermal zone in °C (`cpu-thermal` on a Raspberry Pi, `x86_pkg_temp` on a PC), else the first zone. */
export async function cpuTemperature(): Promise<number | undefined> {
  const base = "/sys/class/thermal";
  const zones = (await readdir(base).catch(() => [] as string[])).filter((z) => z.startsWith("thermal_zone")).sort();
  let fallback: number | undefined;
  for (const z of zones) {
    const [type, temp] = await Promise.all([
      readFile(`${base}/${z}/type`, "utf8").catch(() => ""),
      readFile(`${base}/${z}/temp`, "utf8").catch(() => ""),
    ]);
    const milli = Number.parseInt(temp, 10);
    if (!Number.isFinite(milli)) continue;
    const celsius = Math.round(milli / 100) / 10;
    if (/cpu|soc|pkg/i.test(type)) return celsius;
    fallback ??= celsius;
  }
  return fallback;
}

/** Interfaces with an address, loopback left out (what systeminformation lists on Linux). */
export function netInterfaces(): Array<{ name: string; ip4: string; mac: string }> {
  return Object.entries(os.networkInterfaces()).flatMap(([name, addrs]) => {
    if (!addrs?.length || addrs.some((a) => a.internal)) return [];
    return [{ name, ip4: addrs.find((a) => a.family === "IPv4")?.address ?? "", mac: addrs[0]?.mac ?? "" }];
  });
}
