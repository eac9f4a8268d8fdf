import type { NatsConnection } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { Registry, type DeviceView } from "../registry/devices.js";
import { backlog, type BacklogRow } from "../upstream/backlog.js";

export type CheckStatus = "ok" | "warn" | "fail";

export interface Check {
  /** `hub` or `device:<id>`. */
  scope: string;
  device?: string;
  check: string;
  status: CheckStatus;
  detail: string;
}

export interface DoctorReport {
  ok: boolean;
  problems: number;
  warnings: number;
  checks: Check[];
}

/** The engine floor (DESIGN.md): older servers do not check permissions on leaf-link messages. */
export const NATS_FLOOR = "2.14.0";
/** Device clock vs the hub's receive time, beyond which TTLs and "last seen" mislead. */
export const MAX_CLOCK_SKEW_MS = 30_000;
export const DISK_FAIL_FRACTION = 0.05;
export const DISK_WARN_FRACTION = 0.15;

export function versionAtLeast(v: string | undefined, floor: string): boolean {
  const parse = (s: string): number[] => s.replace(/^v/, "").split(/[.-]/).slice(0, 3).map((x) => Number.parseInt(x, 10) || 0);
  if (!v) return false;
  const [a, b] = [parse(v), parse(floor)];
  for (let i = 0; i < 3; i++) if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) > (b[i] ?? 0);
  return true;
}

const ms = (n: number): string => (Math.abs(n) >= 60_000 ? `${(n / 60_000).toFixed(1)} min` : Math.abs(n) >= 1000 ? `${(n / 1000).toFixed(1)} s` : `${Math.round(n)} ms`);
const mib = (n: number): string => `${(n / 2 ** 20).toFixed(n < 2 ** 30 ? 1 : 0)} MiB`;

/** Hub-side checks: engine, security, JetStream storage. */
export async function hubChecks(nc: NatsConnection): Promise<Check[]> {
  const info = nc.info;
  const out: Check[] = [];
  const add = (check: string, status: CheckStatus, detail: string): number => out.push({ scope: "hub", check, status, detail });
  const v = info?.version;
  add("engine", versionAtLeast(v, NATS_FLOOR) ? "ok" : "fail", `nats-server ${v ?? "?"} (floor ${NATS_FLOOR})`);
  add("auth", info?.auth_required ? "ok" : "warn", info?.auth_required ? "credentials required" : "off: any client that reaches the port is admitted");
  add("tls", info?.tls_required ? "ok" : "warn", info?.tls_required ? "required" : "off on the client port");
  const acct = await (await jetstreamManager(nc)).getAccountInfo();
  const max = acct.limits?.max_storage ?? -1;
  const used = acct.storage;
  const full = max > 0 ? used / max : 0;
  add("storage", full > 0.95 ? "fail" : full > 0.85 ? "warn" : "ok", `JetStream ${mib(used)} used${max > 0 ? ` of ${mib(max)}` : ""}, domain ${acct.domain ?? "-"}`);
  return out;
}

/** Device-side checks from the last status each device reported and the hub's view of its data. */
export function deviceChecks(v: DeviceView, b: BacklogRow | undefined, now = Date.now()): Check[] {
  const id = v.record.id;
  const out: Check[] = [];
  const add = (check: string, status: CheckStatus, detail: string): number => out.push({ scope: `device:${id}`, device: id, check, status, detail });
  const s = v.status;
  if (!s) {
    add("presence", "warn", "never reported (agent not started, or its leaf never reached the hub)");
    return out;
  }
  add("presence", v.online ? "ok" : "warn", v.online ? `online, heartbeat ${ms(s.heartbeatMs)}` : `offline, last seen ${ms(now - s.seenAt)} ago`);
  const engine = s.natsServer?.version;
  add("engine", versionAtLeast(engine, NATS_FLOOR) ? "ok" : "fail", `leaf nats-server ${engine ?? "?"}, agent ${s.agent.version}`);
  // The agent measures its clock against the hub's (status.clock.skewMs) and writes `at` in hub time;
  // an agent that has not measured yet is judged by `at` against the hub's receive time `seenAt`.
  const skew = s.clock?.skewMs ?? s.at - s.seenAt;
  add(
    "clock",
    Math.abs(skew) > MAX_CLOCK_SKEW_MS ? "fail" : "ok",
    Math.abs(skew) > MAX_CLOCK_SKEW_MS
      ? `device clock is ${ms(Math.abs(skew))} ${skew > 0 ? "ahead of" : "behind"} the hub: fix NTP (command TTLs and times will be wrong)`
      : `within ${ms(Math.abs(skew))} of the hub`,
  );
  const disk = s.facts?.disk;
  if (s.storage?.full) {
    add("disk", "fail", `data partition full (${s.storage.reason ?? "low space"}, ${mib(s.storage.freeBytes)} free): new data is refused until there is room`);
  } else if (disk?.total && disk.available !== undefined) {
    const free = disk.available / disk.total;
    add("disk", free < DISK_FAIL_FRACTION ? "fail" : free < DISK_WARN_FRACTION ? "warn" : "ok", `${mib(disk.available)} free of ${mib(disk.total)} (${(free * 100).toFixed(1)}%) on the data disk`);
  } else add("disk", "warn", "not reported");
  if (b) {
    const src = b.source;
    if (!src) add("link", "warn", "the hub is not sourcing this device's UP (no shard source)");
    else if (src.error) add("link", "fail", `hub source error: ${src.error}`);
    else if (src.activeAgoMs < 0 || (v.online && src.activeAgoMs > 60_000)) add("link", "warn", `hub source idle (${src.activeAgoMs < 0 ? "never active" : `active ${ms(src.activeAgoMs)} ago`}); ${linkSettings(s)}`);
    else add("link", "ok", `hub source active ${ms(src.activeAgoMs)} ago, lag ${src.lag}; ${linkSettings(s)}`);
    const pending = b.pending ?? 0;
    add(
      "backlog",
      b.discarded > 0 ? "fail" : pending > 10_000 ? "warn" : "ok",
      `${b.pending ?? "?"} pending${b.discarded > 0 ? `, ${b.discarded} DISCARDED (UP was full)` : ""}`,
    );
  }
  for (const m of s.mcus ?? []) {
    add(`mcu ${m.id}`, m.online ? "ok" : "warn", `${m.board} ${m.firmware} over ${m.link}: ${m.online ? "online" : `offline since ${new Date(m.lastSeen).toISOString()}`}`);
  }
  return out;
}

export async function runDoctor(nc: NatsConnection, opts: { device?: string } = {}): Promise<DoctorReport> {
  const now = Date.now();
  const [hub, views, rows] = [await hubChecks(nc), await (await Registry.open(nc)).view(now), await backlog(nc, now)];
  const byDevice = new Map(rows.map((r) => [r.device, r]));
  const devices = views.filter((v) => !opts.device || v.record.id === opts.device);
  const checks = [...hub, ...devices.flatMap((v) => deviceChecks(v, byDevice.get(v.record.id), now))];
  const problems = checks.filter((c) => c.status === "fail").length;
  return { ok: problems === 0, problems, warnings: checks.filter((c) => c.status === "warn").length, checks };
}

/** The leaf link's compression and the leaf's fsync interval, as the agent reports them. */
function linkSettings(s: { leaf?: { compression?: string | undefined; syncInterval?: string | undefined } | undefined }): string {
  const l = s.leaf;
  return `compression ${l?.compression ?? "not reported"}, sync ${l?.syncInterval ?? "not reported"}`;
}
