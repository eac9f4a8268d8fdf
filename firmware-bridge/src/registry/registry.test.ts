import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SeqAllocator } from "../nats/seq.js";
import { McuRegistry } from "./registry.js";
import { openBridgeStore } from "./store.js";

test("registry: online/offline, lastSeen batched, survives reopen with firstSeen kept", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "canopy-reg-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  let store = openBridgeStore(dir);
  let reg = new McuRegistry(store.mcus);
  await reg.online({ id: "m1", board: "uno", firmware: "1", link: "serial:/dev/x" }, 1000);
  reg.seen("m1", 2000);
  assert.equal(reg.get("m1")?.lastSeen, 2000);
  await reg.flush();
  await reg.offline("m1", 3000);
  await store.close();
  store = openBridgeStore(dir);
  reg = new McuRegistry(store.mcus);
  await reg.online({ id: "m1", board: "uno", firmware: "2", link: "mqtt:1.2.3.4:5" }, 4000);
  await reg.online({ id: "m0", board: "esp32", firmware: "1", link: "mqtt:x" }, 4000);
  await reg.markAllOffline();
  const list = reg.list();
  assert.deepEqual(list.map((m) => m.id), ["m0", "m1"]);
  assert.deepEqual(list[1], { id: "m1", board: "uno", firmware: "2", link: "mqtt:1.2.3.4:5", online: false, firstSeen: 1000, lastSeen: 4000 });
  await store.close();
});

test("sequence: handed out in order, never reused after a restart", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "canopy-seq-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  let store = openBridgeStore(dir);
  let seqs = await SeqAllocator.open(store.meta, 10);
  const first: number[] = [];
  for (let i = 0; i < 25; i++) first.push(await seqs.take());
  assert.deepEqual(first, Array.from({ length: 25 }, (_, i) => i + 1));
  await store.close();
  store = openBridgeStore(dir);
  seqs = await SeqAllocator.open(store.meta, 10);
  const next = await seqs.take();
  assert.ok(next > 25, `reused ${next}`);
  await store.close();
});

test("registry cap: an admitted id that never came online gives its place back (abandon)", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "canopy-reg-cap-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const store = openBridgeStore(dir);
  t.after(() => store.close());
  const reg = new McuRegistry(store.mcus, 2);
  await reg.online({ id: "m1", board: "b", firmware: "1", link: "mqtt:x" });
  // m2 is admitted, but its connection closes before it comes online.
  assert.equal(reg.admit("m2"), true);
  reg.abandon("m2");
  // m1 is online: only the place m2 gave back lets m3 in (nothing offline could be pruned for it).
  assert.equal(reg.admit("m3"), true);
  await reg.online({ id: "m3", board: "b", firmware: "1", link: "mqtt:y" });
  assert.equal(reg.admit("m4"), false);
  assert.deepEqual(reg.list().map((m) => m.id), ["m1", "m3"]);
});

test("registry: a flash record and a hello (or a lastSeen flush) in flight together both land; neither erases the other", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "canopy-reg-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const store = openBridgeStore(dir);
  t.after(() => store.close());
  const reg = new McuRegistry(store.mcus);
  const who = { id: "m1", board: "rp2040", firmware: "1.0.0", link: "serial:/dev/x" };
  await reg.online(who, 1000);
  reg.seen("m1", 1500);
  const flash = { state: "confirmed" as const, version: "2.0.0", sha256: "ab".repeat(32), at: 2000, detail: "ok" };
  // The flasher's record, the link's hello after it reopened the port and the lastSeen timer, all
  // issued before any of them commits (under load an LMDB commit takes a while).
  await Promise.all([reg.flashed("m1", flash, flash.sha256, "2.0.0"), reg.online({ ...who, firmware: "2.0.0" }, 2100), reg.flush()]);
  assert.deepEqual(reg.get("m1"), { ...who, firmware: "2.0.0", online: true, firstSeen: 1000, lastSeen: 2100, imageSha256: flash.sha256, lastFlash: flash });
  // And the other order: the hello first, the flash record while it is in flight.
  await reg.offline("m1", 3000);
  const again = { ...flash, version: "3.0.0", sha256: "cd".repeat(32), at: 3100 };
  await Promise.all([reg.online({ ...who, firmware: "3.0.0" }, 3200), reg.flashed("m1", again, again.sha256, "3.0.0")]);
  assert.deepEqual(reg.get("m1"), { ...who, firmware: "3.0.0", online: true, firstSeen: 1000, lastSeen: 3200, imageSha256: again.sha256, lastFlash: again });
});
