import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { Kvm, type KV } from "@nats-io/kv";
import { jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { Assets } from "@canopy/protocol";
import { provisionHub } from "@canopy/gateway/hub/provision";
import { ConfigService } from "@canopy/gateway/config/operations";
import { readAll } from "@canopy/gateway/kv/read";
import { TestServer, tempDir } from "../harness/index.js";

// Issue 15, config rollout speed: a fleet or group change is rendered into every device's key of KV
// `cfg` as atomic batches (compare-and-set per key inside the batch), falling back to a write per key
// when a batch is refused. These tests run the renderer against a real hub and read back every key.

const N = 40;
const ids = Array.from({ length: N }, (_, i) => `r${String(i).padStart(3, "0")}`);

async function withHub(fn: (nc: NatsConnection, cfg: KV, svc: ConfigService) => Promise<void>, opts: { atomic?: boolean } = {}): Promise<void> {
  const dir = await tempDir("canopy-render-");
  const server = await TestServer.hub(join(dir.path, "hub"));
  const nc = await server.connect();
  try {
    await provisionHub(nc);
    if (opts.atomic === false) {
      const jsm = await jetstreamManager(nc);
      const c = (await jsm.streams.info(`KV_${Assets.kvConfig}`)).config;
      await jsm.streams.update(c.name, { ...c, allow_atomic: false });
    }
    const devices = await new Kvm(nc).open(Assets.kvDevices);
    await Promise.all(ids.map((id, i) => devices.put(id, JSON.stringify({ id, groups: i % 2 === 0 ? ["even"] : ["odd"], created: Date.now() }))));
    await fn(nc, await new Kvm(nc).open(Assets.kvConfig), await ConfigService.open(nc));
  } finally {
    await nc.close();
    await server.stop();
    await dir.remove();
  }
}

/** Every device's rendered `key` in KV `cfg`, by device (absent when not rendered or removed). */
async function rendered(cfg: KV, key: string): Promise<Map<string, { value: unknown; source: string; revision: number }>> {
  const out = new Map<string, { value: unknown; source: string; revision: number }>();
  for (const id of ids) {
    const e = await cfg.get(`${id}.${key}`);
    if (e && e.operation === "PUT") out.set(id, { ...(e.json() as { value: unknown; source: string }), revision: e.revision });
  }
  return out;
}

test("config render: a fleet set reaches every device in one batch, a group value overrides it, unset falls back to fleet", async () => {
  await withHub(async (nc, cfg, svc) => {
    const jsm = await jetstreamManager(nc);
    assert.equal((await jsm.streams.info(`KV_${Assets.kvConfig}`)).config.allow_atomic, true, "provisioning enables atomic batches on KV cfg");
    const before = (await jsm.streams.info(`KV_${Assets.kvConfig}`)).state.last_seq;
    const r1 = await svc.set({ kind: "fleet" }, "app.mode", "eco");
    assert.deepEqual(r1.render, { devices: N, written: N, removed: 0 });
    let all = await rendered(cfg, "app.mode");
    assert.equal(all.size, N);
    assert.ok([...all.values()].every((v) => v.value === "eco" && v.source === "fleet"));
    // One batch: consecutive sequences right after the ones before, each message carrying its id.
    assert.deepEqual([...all.values()].map((v) => v.revision).sort((a, b) => a - b), Array.from({ length: N }, (_, i) => before + 1 + i));
    const batchIds = new Set<string | undefined>();
    for (const id of ids) batchIds.add((await jsm.streams.getMessage(`KV_${Assets.kvConfig}`, { last_by_subj: `$KV.${Assets.kvConfig}.${id}.app.mode` }))?.header?.get("Nats-Batch-Id"));
    assert.equal(batchIds.size, 1);
    assert.ok([...batchIds][0], "written as an atomic batch");

    const r2 = await svc.set({ kind: "group", group: "even" }, "app.mode", "turbo");
    assert.deepEqual(r2.render, { devices: N / 2, written: N / 2, removed: 0 });
    all = await rendered(cfg, "app.mode");
    for (const [id, v] of all) assert.deepEqual([v.value, v.source], Number(id.slice(1)) % 2 === 0 ? ["turbo", "group:even"] : ["eco", "fleet"], id);

    // Setting the same value again writes nothing.
    assert.deepEqual((await svc.set({ kind: "fleet" }, "app.mode", "eco")).render, { devices: N, written: 0, removed: 0 });
    const r3 = await svc.unset({ kind: "group", group: "even" }, "app.mode");
    assert.deepEqual(r3.render, { devices: N / 2, written: N / 2, removed: 0 });
    all = await rendered(cfg, "app.mode");
    assert.ok([...all.values()].every((v) => v.value === "eco" && v.source === "fleet"));
  });
});

test("config render: removing a fleet key, then setting it again over the delete markers, renders every device", async () => {
  await withHub(async (_nc, cfg, svc) => {
    await svc.set({ kind: "fleet" }, "app.level", 1);
    const removed = await svc.unset({ kind: "fleet" }, "app.level");
    assert.deepEqual(removed.render, { devices: N, written: 0, removed: N });
    assert.equal((await rendered(cfg, "app.level")).size, 0);
    // Each key's last entry is now a delete marker: a batch expecting "no entry" is refused as a
    // whole, and the per-key path (create over a marker) renders them.
    const again = await svc.set({ kind: "fleet" }, "app.level", 2);
    assert.deepEqual(again.render, { devices: N, written: N, removed: 0 });
    const all = await rendered(cfg, "app.level");
    assert.equal(all.size, N);
    assert.ok([...all.values()].every((v) => v.value === 2));
  });
});

test("config render: a hub whose cfg stream refuses atomic batches is rendered key by key", async () => {
  await withHub(
    async (_nc, cfg, svc) => {
      const r = await svc.set({ kind: "fleet" }, "app.mode", "eco");
      assert.deepEqual(r.render, { devices: N, written: N, removed: 0 });
      const all = await rendered(cfg, "app.mode");
      assert.equal(all.size, N);
      assert.ok([...all.values()].every((v) => v.value === "eco"));
    },
    { atomic: false },
  );
});

test("config render: two renderers racing on the same keys leave the newest layer value everywhere", async () => {
  await withHub(async (nc, cfg, svc) => {
    const other = await ConfigService.open(nc);
    for (let round = 0; round < 5; round++) {
      await Promise.all([svc.set({ kind: "fleet" }, "app.race", `a${round}`), other.renderLayer({ kind: "fleet" }, "app.race")]);
      const all = await rendered(cfg, "app.race");
      assert.equal(all.size, N, `round ${round}`);
      assert.ok([...all.values()].every((v) => v.value === `a${round}`), `round ${round}: ${JSON.stringify([...new Set([...all.values()].map((v) => v.value))])}`);
    }
  });
});

test("readAll: the live entries matching a filter, none for an empty match, deleted keys left out", async () => {
  await withHub(async (_nc, cfg) => {
    assert.equal((await readAll(cfg, "nobody.>")).size, 0);
    await Promise.all(ids.map((id) => cfg.put(`${id}.k`, id)));
    await cfg.delete(`${ids[3]}.k`);
    const all = await readAll(cfg, "*.k");
    assert.equal(all.size, N - 1);
    assert.equal(all.has(`${ids[3]}.k`), false);
    assert.equal(all.get(`${ids[5]}.k`)?.string(), ids[5]);
    assert.equal((await readAll(cfg, `${ids[5]}.>`)).size, 1);
  });
});
