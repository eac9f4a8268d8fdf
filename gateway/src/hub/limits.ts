import type { KV } from "@nats-io/kv";
import { CanopyError, ErrorCode, parseBytes, parseDuration } from "@canopy/protocol";

const MIB = 2 ** 20;
const GIB = 2 ** 30;
const DAY_MS = 86_400_000;

/**
 * Bounds of the hub's streams: each `FLEET_UP_<n>` shard and `CMD` (limits retention, discard old).
 * nats-server reserves every stream's `max_bytes` against the hub's JetStream store limit when the
 * stream is created, so the byte defaults are shares of that limit: a shard gets 10 % (a hub of the
 * default 20 GiB store holds 9 shards, i.e. 18,000 devices at 2,000 per shard, next to CMD), CMD 5 %
 * (at most 1 GiB). Raise `--max-file-store` or lower `--up-max-bytes` for more shards.
 */
export interface HubStreamLimits {
  upMaxBytes: number;
  upMaxAgeMs: number;
  cmdMaxBytes: number;
  /** Also the longest command TTL. */
  cmdMaxAgeMs: number;
}

/** Key of the limits record in KV `shards` (next to the shard records, which all start `FLEET_UP_`). */
export const LIMITS_KEY = "limits";

export function defaultHubLimits(maxFileStore: number): HubStreamLimits {
  return {
    upMaxBytes: Math.max(64 * MIB, Math.floor(maxFileStore * 0.1)),
    upMaxAgeMs: 90 * DAY_MS,
    cmdMaxBytes: Math.max(16 * MIB, Math.min(GIB, Math.floor(maxFileStore * 0.05))),
    cmdMaxAgeMs: 30 * DAY_MS,
  };
}

export interface HubLimitFlags {
  upMaxBytes?: string;
  upMaxAge?: string;
  cmdMaxBytes?: string;
  cmdMaxAge?: string;
}

/**
 * Parses and checks the flags (exit 2 on a bad one); what is left out comes from `defaults`. A size
 * above `storeLimit` (the hub's JetStream store limit) could never be reserved: refused too.
 */
export function hubLimitsFromFlags(f: HubLimitFlags, defaults: HubStreamLimits, storeLimit = Infinity): HubStreamLimits {
  const size = (v: string | undefined, flag: string, dflt: number): number => {
    if (v === undefined) return dflt;
    const n = parseBytes(v, flag);
    if (n < MIB) throw new CanopyError(ErrorCode.InvalidInput, `${flag} must be at least 1MiB, got ${JSON.stringify(v)}`);
    if (n > storeLimit) {
      throw new CanopyError(ErrorCode.InvalidInput, `${flag} ${v} exceeds the hub's JetStream store limit (${storeLimit} bytes; see --max-file-store)`);
    }
    return n;
  };
  const age = (v: string | undefined, flag: string, dflt: number): number => {
    if (v === undefined) return dflt;
    const n = parseDuration(v, flag);
    if (n < 3_600_000) throw new CanopyError(ErrorCode.InvalidInput, `${flag} must be at least 1h, got ${JSON.stringify(v)}`);
    return n;
  };
  return {
    upMaxBytes: size(f.upMaxBytes, "--up-max-bytes", defaults.upMaxBytes),
    upMaxAgeMs: age(f.upMaxAge, "--up-max-age", defaults.upMaxAgeMs),
    cmdMaxBytes: size(f.cmdMaxBytes, "--cmd-max-bytes", defaults.cmdMaxBytes),
    cmdMaxAgeMs: age(f.cmdMaxAge, "--cmd-max-age", defaults.cmdMaxAgeMs),
  };
}

/** The limits the hub was started with, as `hub start` recorded them; undefined before that. */
export async function readHubLimits(shardsKv: KV): Promise<HubStreamLimits | undefined> {
  const e = await shardsKv.get(LIMITS_KEY).catch(() => null);
  if (!e || e.operation !== "PUT") return undefined;
  const v = e.json<Partial<HubStreamLimits>>();
  const ok = (n: unknown): n is number => typeof n === "number" && Number.isFinite(n) && n > 0;
  if (!ok(v.upMaxBytes) || !ok(v.upMaxAgeMs) || !ok(v.cmdMaxBytes) || !ok(v.cmdMaxAgeMs)) return undefined;
  return { upMaxBytes: v.upMaxBytes, upMaxAgeMs: v.upMaxAgeMs, cmdMaxBytes: v.cmdMaxBytes, cmdMaxAgeMs: v.cmdMaxAgeMs };
}
