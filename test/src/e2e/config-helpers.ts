import assert from "node:assert/strict";
import type { NatsConnection } from "@nats-io/transport-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { ConfigEvent, waitFor, type ConfigKeyState } from "@canopy/protocol";
import { Fleet, freePort } from "../harness/index.js";

export interface ShowKey {
  key: string;
  value: unknown;
  source: string;
  /** The source layer's revision (what `config set` printed). */
  revision: number | null;
  renderedRevision: number;
  status: "applied" | "failed" | "pending";
  applied: ConfigKeyState | null;
  inSync: boolean;
}

export interface ShowJson {
  device: string;
  online: boolean;
  revision: number;
  appliedRevision: number | null;
  failed: number;
  pending: number;
  keys: ShowKey[];
}

export async function cliOk(fleet: Fleet, args: string[]): Promise<string> {
  const r = await fleet.cli(args);
  assert.equal(r.code, 0, `canopy ${args.join(" ")} → exit ${r.code}\n${r.stderr}`);
  return r.stdout;
}

export async function show(fleet: Fleet, device: string): Promise<ShowJson> {
  return JSON.parse(await cliOk(fleet, ["config", "show", "--device", device, "--json"])) as ShowJson;
}

/** Waits until the device runs `value` for `key` (rendered, applied, reported) and returns the row. */
export async function waitApplied(fleet: Fleet, device: string, key: string, value: unknown, timeoutMs = 20_000): Promise<ShowKey> {
  let last: ShowJson | undefined;
  try {
    return await waitFor(
      async () => {
        last = await show(fleet, device);
        const k = last.keys.find((x) => x.key === key);
        return k && k.inSync && JSON.stringify(k.value) === JSON.stringify(value) ? k : undefined;
      },
      { timeoutMs, intervalMs: 250, what: `${device} to apply ${key}=${JSON.stringify(value)}` },
    );
  } catch (err) {
    throw new Error(`${(err as Error).message}\nlast show: ${JSON.stringify(last)}`);
  }
}

/** Every config event a device's UP delivered to the hub shards, in order. */
export async function configEvents(nc: NatsConnection, device: string): Promise<ConfigEvent[]> {
  const jsm = await jetstreamManager(nc);
  const js = jetstream(nc);
  const subject = `up.${device}.evt.config`;
  const out: ConfigEvent[] = [];
  for await (const si of jsm.streams.list()) {
    if (!si.config.name.startsWith("FLEET_UP_")) continue;
    const info = await jsm.streams.info(si.config.name, { subjects_filter: subject });
    const count = info.state.subjects?.[subject] ?? 0;
    if (count === 0) continue;
    const c = await js.consumers.get(si.config.name, { filter_subjects: subject });
    const iter = await c.fetch({ max_messages: count, expires: 5_000 });
    for await (const m of iter) out.push(ConfigEvent.parse(m.json()));
  }
  return out;
}

/**
 * A fleet whose `link.cut()` is a real outage. The hub gossips its leafnode address to leaves, and a
 * leaf that learned the real one reconnects around the LinkProxy; so the hub advertises a dead
 * address (which needs a fixed leaf port), and the proxies target the real port. (`hub-ready` reports
 * the advertised address, hence the override of `leafPort`.)
 */
export async function startIsolatedFleet(hubArgs: string[] = []): Promise<Fleet> {
  const [leaf, dead] = [await freePort(), await freePort()];
  const fleet = await Fleet.start({ hubArgs: [...hubArgs, "--leaf-port", String(leaf), "--advertise", `127.0.0.1:${dead}`] });
  fleet.hub.leafPort = leaf;
  return fleet;
}
