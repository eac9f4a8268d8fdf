import { test } from "node:test";
import assert from "node:assert/strict";
import { pino } from "pino";
import type { ConfigEvent, ConfigValue } from "@canopy/protocol";
import { ConfigEngine, type ConfigChange } from "./engine.js";
import { MemoryConfigStore } from "./store.js";
import { createLogger, setLogLevel } from "../logging.js";

function harness(store = new MemoryConfigStore()) {
  const events: ConfigEvent[] = [];
  const live: Array<[string, unknown]> = [];
  const delivered: Array<Record<string, ConfigValue>> = [];
  const engine = new ConfigEngine({
    store,
    applyLive: async (k, v) => void live.push([k, v]),
    deliver: async (s) => void delivered.push(s),
    report: (e) => events.push(e),
    changed: () => {},
    log: pino({ level: "silent" }),
  });
  return { engine, events, live, delivered, store };
}

const put = (key: string, revision: number, value: unknown, source = "fleet"): ConfigChange => ({
  key,
  revision,
  operation: "PUT",
  data: Buffer.from(JSON.stringify({ value, source })),
});

test("valid agent keys apply live, app keys are delivered, each revision is reported once", async () => {
  const h = harness();
  await h.engine.handle(put("log.level", 3, "debug"));
  await h.engine.handle(put("app.x", 4, { a: 1 }));
  await h.engine.handle(put("log.level", 3, "debug")); // re-delivered (re-watch, restart)
  assert.deepEqual(h.live, [["log.level", "debug"]]);
  assert.deepEqual(h.delivered.at(-1), { "app.x": { a: 1 } });
  assert.deepEqual(h.events.map((e) => `${e.key}@${e.revision}:${e.status}`), ["log.level@3:applied", "app.x@4:applied"]);
  assert.deepEqual(h.store.load().effective, { "log.level": "debug", "app.x": { a: 1 } });
  assert.equal(h.store.load().revision, 4);
});

test("a value failing its schema is not applied, keeps the previous one, and names the problem", async () => {
  const h = harness();
  await h.engine.handle(put("heartbeat.interval", 1, "2s"));
  await h.engine.handle(put("heartbeat.interval", 2, "-5"));
  await h.engine.handle(put("log.levle", 3, "debug"));
  assert.deepEqual(h.live, [["heartbeat.interval", 2000]]);
  const [, bad, typo] = h.events;
  assert.equal(bad?.status, "failed");
  assert.match(bad?.error ?? "", /heartbeat\.interval: .*invalid duration "-5"/);
  assert.match(typo?.error ?? "", /log\.levle: unknown Canopy setting; did you mean log\.level\?/);
  assert.equal(h.store.load().effective["heartbeat.interval"], "2s");
  assert.equal(h.store.load().keys["heartbeat.interval"]?.status, "failed");
  // What runs is revision 1: the refused revisions 2 and 3 are reported, never shown as applied.
  assert.equal(h.store.load().revision, 1);
  assert.equal(h.store.load().keys["heartbeat.interval"]?.appliedRevision, 1);
  assert.equal(h.store.load().keys["log.levle"]?.appliedRevision, undefined);
  await h.engine.handle(put("heartbeat.interval", 4, "3s"));
  assert.equal(h.store.load().revision, 4);
  assert.equal(h.store.load().keys["heartbeat.interval"]?.appliedRevision, 4);
});

test("removal reverts live keys to their default; a restart boots from the store without reporting", async () => {
  const h = harness();
  await h.engine.handle(put("up.maxAge", 1, "2h"));
  await h.engine.handle(put("app.y", 2, 5));
  await h.engine.handle({ key: "up.maxAge", revision: 3, operation: "DEL" });
  assert.deepEqual(h.live, [["up.maxAge", 7_200_000], ["up.maxAge", undefined]]);
  assert.equal(h.events.at(-1)?.removed, true);

  const again = harness(h.store);
  await again.engine.boot();
  assert.deepEqual(again.delivered.at(-1), { "app.y": 5 });
  await again.engine.handle(put("app.y", 2, 5));
  assert.equal(again.events.length, 0, "revisions processed before the restart are not reported again");
  const r = await again.engine.reconcile([put("app.y", 2, 5)]);
  assert.deepEqual(r.failed, []);
  assert.equal(again.events.length, 0, "a forced reload re-applies without re-reporting");
});

test("setLogLevel reaches children created before the change", () => {
  const root = createLogger("info", "t");
  const child = root.child({ c: 1 }).child({ d: 2 });
  setLogLevel(child, "debug");
  assert.equal(root.level, "debug");
  assert.equal(child.level, "debug");
});
