import { test } from "node:test";
import assert from "node:assert/strict";
import type { NatsConnection } from "@nats-io/transport-node";
import type { JetStreamManager, StreamInfo } from "@nats-io/jetstream";
import { pino } from "pino";
import { MirrorWatch, MIRROR_WATCH_DEFAULTS } from "./mirror-watch.js";

/** A leaf with one mirror whose last contact is `activeMs` ago, and a hub that answers or not. */
function rig(): { watch: MirrorWatch; set: (activeMs: number, hubUp: boolean) => void; restarts: () => number } {
  let activeMs = 0;
  let hubUp = true;
  let restarts = 0;
  const jsm = {
    streams: {
      list: () =>
        (async function* () {
          yield { config: { name: "CMD" }, mirror: { name: "CMD", lag: 0, active: activeMs * 1e6 } } as unknown as StreamInfo;
          yield { config: { name: "UP" } } as unknown as StreamInfo;
        })(),
    },
  } as unknown as JetStreamManager;
  const nc = { request: async () => (hubUp ? {} : Promise.reject(new Error("no responders"))) } as unknown as NatsConnection;
  const watch = new MirrorWatch("d1", nc, jsm, { restart: () => void restarts++ }, pino({ level: "silent" }));
  return { watch, set: (a, h) => ((activeMs = a), (hubUp = h)), restarts: () => restarts };
}

test("a healthy mirror (heartbeat every second) never restarts the leaf", async () => {
  const r = rig();
  r.set(900, true);
  for (let t = 0; t < 120_000; t += 2_000) assert.equal(await r.watch.check(t), "healthy");
  assert.equal(r.restarts(), 0);
});

test("a stalled mirror with the link down waits: the hub must answer first", async () => {
  const r = rig();
  r.set(60_000, false);
  for (let t = 0; t < 60_000; t += 2_000) assert.equal(await r.watch.check(t), "link-down");
  assert.equal(r.restarts(), 0);
});

test("stalled while the hub answers: one restart after the grace time, then a cooldown that doubles while it does not help", async () => {
  const r = rig();
  r.set(40_000, true);
  const { graceMs, cooldownMs } = MIRROR_WATCH_DEFAULTS;
  assert.equal(await r.watch.check(0), "waiting");
  assert.equal(await r.watch.check(graceMs - 1), "waiting");
  assert.equal(await r.watch.check(graceMs), "restarted");
  assert.equal(r.restarts(), 1);
  // Still stalled: a new grace period, then nothing until the cooldown has passed.
  assert.equal(await r.watch.check(graceMs + 1_000), "waiting");
  assert.equal(await r.watch.check(graceMs + 1_000 + graceMs), "cooling-down");
  const second = graceMs + cooldownMs;
  assert.equal(await r.watch.check(second), "restarted");
  assert.equal(r.restarts(), 2);
  // That one did not help either: the next one waits twice as long.
  await r.watch.check(second + 1_000);
  assert.equal(await r.watch.check(second + cooldownMs + 1), "cooling-down");
  assert.equal(await r.watch.check(second + 2 * cooldownMs), "restarted");
  assert.equal(r.restarts(), 3);
  // Healthy again: the cooldown resets.
  r.set(500, true);
  assert.equal(await r.watch.check(second + 3 * cooldownMs), "healthy");
  r.set(40_000, true);
  await r.watch.check(second + 4 * cooldownMs);
  assert.equal(await r.watch.check(second + 4 * cooldownMs + graceMs), "restarted", "after a healthy spell the usual cooldown applies");
});

test("a full data partition holds the watch: no restart while the guard says full", async () => {
  let full = true;
  let restarts = 0;
  const jsm = {
    streams: { list: () => (async function* () { yield { config: { name: "CMD" }, mirror: { name: "CMD", lag: 0, active: 60e9 } } as unknown as StreamInfo; })() },
  } as unknown as JetStreamManager;
  const nc = { request: async () => ({}) } as unknown as NatsConnection;
  const watch = new MirrorWatch("d1", nc, jsm, { restart: () => void restarts++ }, pino({ level: "silent" }), MIRROR_WATCH_DEFAULTS, () => full);
  for (let t = 0; t < 60_000; t += 2_000) assert.equal(await watch.check(t), "held");
  assert.equal(restarts, 0);
  full = false;
  await watch.check(60_000);
  assert.equal(await watch.check(60_000 + MIRROR_WATCH_DEFAULTS.graceMs), "restarted");
});
