import type { Facts, McuSummary, QueryFacts } from "@canopy/protocol";

/** mulberry32: a small, fast, seedable PRNG; the same seed gives the same fleet on every run. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function pick<T>(r: () => number, items: readonly (readonly [T, number])[]): T {
  const total = items.reduce((s, [, w]) => s + w, 0);
  let x = r() * total;
  for (const [v, w] of items) if ((x -= w) < 0) return v;
  return (items[items.length - 1] as readonly [T, number])[0];
}

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;
export const SIM_BOARDS = ["rp2040", "esp32", "atmega328p", "stm32f4"] as const;

export interface SimProfile {
  /** What queries see. */
  facts: QueryFacts;
  /** What presence reports in KV `status` (the inventory part of the same facts). */
  statusFacts: Facts;
  mcus: McuSummary[];
}

/**
 * Seeded, varied facts for simulated device `index`: mostly Raspberry Pi-like ARM boards with a few
 * x86 gateways, memory from 512 MiB to 8 GiB, CPU load uniform over 0–100 % (so `cpu.load < 10.0`
 * selects about 10 % of a fleet), zero to three MCUs of four board types.
 */
export function simProfile(device: string, index: number, seed: number, groups: string[], version: string, now = Date.now()): SimProfile {
  const r = prng((seed * 2_654_435_761 + index * 40_503) >>> 0);
  const arch = pick(r, [["arm64", 6], ["armv7l", 3], ["x64", 1]] as const);
  const [distro, release] = pick(r, [[["Raspbian GNU/Linux", "12"], 5], [["Debian GNU/Linux", "12"], 3], [["Ubuntu", "22.04"], 2]] as const);
  const memTotal = pick(r, [[512 * MiB, 1], [GiB, 2], [2 * GiB, 3], [4 * GiB, 3], [8 * GiB, 1]] as const);
  const memAvailable = Math.round(memTotal * (0.05 + 0.85 * r()));
  const diskTotal = pick(r, [[8 * GiB, 1], [16 * GiB, 2], [32 * GiB, 4], [64 * GiB, 2]] as const);
  const diskAvailable = Math.round(diskTotal * (0.02 + 0.9 * r()));
  const cores = memTotal === 512 * MiB ? 1 : 4;
  const load = Math.round(r() * 1000) / 10;
  const temperature = Math.round((38 + r() * 40) * 10) / 10;
  const mcuCount = pick(r, [[0, 4], [1, 3], [2, 2], [3, 1]] as const);
  const mcus: McuSummary[] = Array.from({ length: mcuCount }, (_, i) => ({
    id: `mcu${i}`,
    board: SIM_BOARDS[Math.floor(r() * SIM_BOARDS.length)] as string,
    firmware: `1.${Math.floor(r() * 4)}.${Math.floor(r() * 10)}`,
    link: i % 2 === 0 ? "serial" : "mqtt",
    online: r() < 0.9,
    firstSeen: now,
    lastSeen: now,
  }));
  const octet = (n: number): number => Math.floor(n) % 250 + 1;
  const facts: QueryFacts = {
    device,
    os: { platform: "linux", distro, release, arch, kernel: arch === "x64" ? "6.1.0-18-amd64" : "6.6.20-v8+", hostname: device, uptime: Math.round(r() * 30 * 86_400) },
    cpu: { model: arch === "x64" ? "Intel Celeron N5105" : "ARM Cortex-A72", cores, load, temperature },
    mem: { total: memTotal, available: memAvailable, used: memTotal - memAvailable },
    disk: { total: diskTotal, available: diskAvailable, used: diskTotal - diskAvailable },
    net: { interfaces: [{ name: "eth0", ip4: `198.${18 + (Math.floor(index / 62_500) % 2)}.${octet(index / 250)}.${octet(index)}`, mac: mac(r) }] },
    agent: { version, uptime: 0 },
    labels: groups,
    config: { "log.level": r() < 0.8 ? "info" : "debug" },
    mcus: mcus.map(({ id, board, firmware, online }) => ({ id, board, firmware, online })),
    up: { messages: Math.floor(r() * 500), bytes: Math.floor(r() * 200_000), pending: 0, full: false },
  };
  const { uptime, ...os } = facts.os;
  const statusFacts: Facts = {
    os: os as Facts["os"],
    cpu: { model: facts.cpu.model as string, cores, load, temperature },
    mem: { total: memTotal, available: memAvailable, used: memTotal - memAvailable },
    disk: { total: diskTotal, available: diskAvailable, used: diskTotal - diskAvailable },
    net: { interfaces: facts.net.interfaces ?? [] },
    ...(typeof uptime === "number" ? { uptime } : {}),
  };
  return { facts, statusFacts, mcus };
}

function mac(r: () => number): string {
  return ["dc", "a6", "32", ...Array.from({ length: 3 }, () => Math.floor(r() * 256).toString(16).padStart(2, "0"))].join(":");
}

/** Groups of device `index`: one of `groups` round-robin, and a second one for about one in five. */
export function simGroups(index: number, seed: number, groups: string[]): string[] {
  if (groups.length === 0) return [];
  const first = groups[index % groups.length] as string;
  const r = prng((seed ^ 0x5bd1e995) + index);
  const second = groups.length > 1 && r() < 0.2 ? groups[(index + 1 + Math.floor(r() * (groups.length - 1))) % groups.length] : undefined;
  return second && second !== first ? [first, second] : [first];
}
