import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import type { NatsConnection } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { Assets, Subjects, type CommandEvent, type CommandRecord } from "@canopy/protocol";
import { provisionHub } from "@canopy/gateway/hub/provision";
import { CommandSender, CommandStore, LIVE_MAX, ResultFeed, newCommandId, recordFromEvent, untilRecorded, waitForCommands } from "@canopy/gateway/commands/index";
import { TestServer, tempDir } from "../harness/index.js";

// Issue 15, command latency: a wait for a few commands also folds the device's result events in as
// they cross the hub (core subscription on `up.<dev>.evt.cmd.*`), before the gateway's ingest has
// written them to KV `commands`. Here no ingest runs at all, so only the live path can end a wait; the
// whole path (CLI → hub → leaf → agent → result) is covered by the e2e command tests.

async function withHub(fn: (nc: NatsConnection, store: CommandStore) => Promise<void>): Promise<void> {
  const dir = await tempDir("canopy-cmd-live-");
  const server = await TestServer.hub(join(dir.path, "hub"));
  const nc = await server.connect();
  const device = await server.connect();
  try {
    await provisionHub(nc);
    await fn(device, await CommandStore.open(nc));
  } finally {
    await device.close();
    await nc.close();
    await server.stop();
    await dir.remove();
  }
}

async function queued(store: CommandStore, device: string): Promise<CommandRecord> {
  const now = Date.now();
  const rec: CommandRecord = { id: newCommandId(now), device, name: "ping", args: {}, createdAt: now, ttlMs: 60_000, state: "queued", times: { queued: now }, updatedAt: now };
  await store.create(rec);
  return rec;
}

const done = (rec: CommandRecord, extra: Partial<CommandEvent> = {}): CommandEvent => {
  const at = Date.now();
  return { id: rec.id, device: rec.device, state: "succeeded", at, deliveredAt: at, startedAt: at, finishedAt: at, result: { pong: true }, ...extra };
};

test("cmd live: a wait ends on the device's result event while KV commands still says queued", async () => {
  await withHub(async (device, store) => {
    const rec = await queued(store, "d1");
    const live = await ResultFeed.open(store, ["d1"]);
    const waiting = waitForCommands(store, [rec], 20_000, undefined, undefined, live);
    device.publish(Subjects.commandResult("d1", rec.id), JSON.stringify({ ...done(rec), state: "running", finishedAt: undefined, result: undefined }));
    device.publish(Subjects.commandResult("d1", rec.id), JSON.stringify(done(rec)));
    const { records, complete } = await waiting;
    live.close();
    assert.equal(complete, true);
    assert.equal(records.length, 1);
    assert.equal(records[0]?.state, "succeeded");
    assert.deepEqual(records[0]?.result, { pong: true });
    assert.deepEqual(Object.keys(records[0]?.times ?? {}).sort(), ["delivered", "queued", "running", "succeeded"]);
    assert.equal((await store.get("d1", rec.id))?.record.state, "queued", "the KV record is the ingest's to write");
  });
});

test("cmd live: an event that arrived before the wait started is folded in once the wait has read the record", async () => {
  await withHub(async (device, store) => {
    const rec = await queued(store, "d1");
    const live = await ResultFeed.open(store, ["d1"]);
    // The event arrives (and is kept) before any wait exists.
    const arrived = new Promise<void>((resolve) => {
      const off = live.follow((_key, rec) => rec === undefined && (off(), resolve()));
    });
    device.publish(Subjects.commandResult("d1", rec.id), JSON.stringify(done(rec)));
    await arrived;
    // Only the id: the wait reads the record, then folds the kept event into it.
    const { records, complete } = await waitForCommands(store, [{ device: rec.device, id: rec.id }], 20_000, undefined, undefined, live);
    live.close();
    assert.equal(complete, true);
    assert.equal(records[0]?.state, "succeeded");
  });
});

test("cmd live: events on the wrong subject or naming another device or command are ignored", async () => {
  await withHub(async (device, store) => {
    const rec = await queued(store, "d1");
    const other = await queued(store, "d1");
    const live = await ResultFeed.open(store, ["d1"]);
    const waiting = waitForCommands(store, [rec], 1_500, undefined, undefined, live);
    // Another device's subject naming d1 (the hub lets a device publish under its own up.<dev>. only).
    device.publish(Subjects.commandResult("d2", rec.id), JSON.stringify(done(rec)));
    // d1's subject for another command, with this command's id in the body.
    device.publish(Subjects.commandResult("d1", other.id), JSON.stringify(done(rec)));
    // Not an event at all.
    device.publish(Subjects.commandResult("d1", rec.id), "{not json");
    device.publish(Subjects.commandResult("d1", rec.id), JSON.stringify({ id: rec.id, device: "d1", state: "bogus", at: 1 }));
    const { records, complete } = await waiting;
    live.close();
    assert.equal(complete, false, "nothing valid ended the command");
    assert.equal(records[0]?.state, "queued");
  });
});

test(`cmd live: a fan-out of more than ${LIVE_MAX} commands waits on KV commands alone`, async () => {
  await withHub(async (device, store) => {
    const recs = await Promise.all(Array.from({ length: LIVE_MAX + 1 }, (_, i) => queued(store, `f${i}`)));
    // Results are published all through the wait; none may end it.
    let over = false;
    const waiting = waitForCommands(store, recs, 1_500).finally(() => (over = true));
    let rounds = 0;
    while (!over) {
      for (const rec of recs) device.publish(Subjects.commandResult(rec.device, rec.id), JSON.stringify(done(rec)));
      await device.flush();
      rounds++;
      await new Promise((r) => setTimeout(r, 50));
    }
    const { records, complete } = await waiting;
    assert.ok(rounds >= 5, `published ${rounds} rounds during the wait`);
    assert.equal(complete, false);
    assert.equal(records.filter((r) => r.state === "queued").length, LIVE_MAX + 1);
  });
});

test("cmd live: untilRecorded waits for KV commands to hold the terminal record, bounded", async () => {
  await withHub(async (_device, store) => {
    const rec = await queued(store, "d1");
    assert.equal(await untilRecorded(store, [rec], 800), false, "still queued in KV: the bound ends the wait");
    const waiting = untilRecorded(store, [rec], 20_000);
    const cur = await store.get("d1", rec.id);
    assert.ok(cur);
    const now = Date.now();
    await store.update({ ...cur.record, state: "succeeded", times: { ...cur.record.times, succeeded: now }, updatedAt: now }, cur.revision);
    assert.equal(await waiting, true);
    assert.equal(await untilRecorded(store, [], 10), true);
  });
});

test("cmd live: untilRecorded on the wait's own feed ignores its live events and ends on the KV record", async () => {
  await withHub(async (device, store) => {
    const rec = await queued(store, "d1");
    const feed = await ResultFeed.open(store, ["d1"]);
    try {
      device.publish(Subjects.commandResult("d1", rec.id), JSON.stringify(done(rec)));
      const live = await waitForCommands(store, [rec], 10_000, undefined, undefined, feed);
      assert.equal(live.records[0]?.state, "succeeded", "the wait ended on the live event");
      assert.equal(await untilRecorded(store, [rec], 800, undefined, feed), false, "KV still says queued: the live event does not count");
      const waiting = untilRecorded(store, [rec], 20_000, undefined, feed);
      const cur = await store.get("d1", rec.id);
      assert.ok(cur);
      const now = Date.now();
      await store.update({ ...cur.record, state: "succeeded", times: { ...cur.record.times, succeeded: now }, updatedAt: now }, cur.revision);
      assert.equal(await waiting, true, "the feed's KV watch saw the record");
    } finally {
      feed.close();
    }
  });
});

// The sender writes a fresh command's record and publishes its request together (one round trip).
// If the record's write fails while the request was queued, the record must still exist afterwards.
test("send: a failed record write after the request was queued is redone; one the ingest made first gets the name and arguments; one that cannot be written is reported as queued", async () => {
  await withHub(async (_device, store) => {
    const sender = await CommandSender.open(store.nc);
    const jsm = await jetstreamManager(store.nc);
    const realCreate = store.create.bind(store);
    const queuedInCmd = async (rec: CommandRecord): Promise<boolean> =>
      (await jsm.streams.getMessage(Assets.cmdStream, { last_by_subj: `cmd.${rec.device}.ping` }).catch(() => null))?.json<{ id: string }>().id === rec.id;

    // 1. The write fails once (a hub hiccup): the record is written again.
    let calls = 0;
    sender.store.create = async (r) => (++calls === 1 ? Promise.reject(new Error("injected: write failed")) : realCreate(r));
    const a = await sender.send({ device: "d1", name: "ping", args: { n: 1 } });
    assert.equal(calls, 2);
    const storedA = await store.get("d1", a.id);
    assert.deepEqual([storedA?.record.state, storedA?.record.name, storedA?.record.args], ["queued", "ping", { n: 1 }]);
    assert.equal(await queuedInCmd(a), true);

    // 2. The ingest created the record from the device's result first (the race the pipelining opens).
    calls = 0;
    sender.store.create = async (r) => {
      if (++calls > 1) return realCreate(r);
      const at = Date.now();
      await realCreate(recordFromEvent({ id: r.id, device: r.device, state: "succeeded", at, deliveredAt: at, startedAt: at, finishedAt: at, result: { pong: true } }));
      throw new Error("injected: wrong last sequence");
    };
    const b = await sender.send({ device: "d1", name: "ping", args: { n: 2 }, by: "test" });
    const storedB = (await store.get("d1", b.id))?.record;
    assert.deepEqual([storedB?.state, storedB?.name, storedB?.args, storedB?.by, storedB?.ttlMs], ["succeeded", "ping", { n: 2 }, "test", b.ttlMs]);
    assert.ok(storedB?.times.queued && storedB.times.succeeded, JSON.stringify(storedB?.times));
    assert.equal(await queuedInCmd(b), true);

    // 3. The record cannot be written at all while the request was queued: the caller is told so.
    sender.store.create = () => Promise.reject(new Error("injected: KV refused"));
    await assert.rejects(sender.send({ device: "d2", name: "ping" }), /was queued for d2, but its record could not be written \(injected: KV refused\); it will run/);
    sender.store.create = realCreate;
  });
});
