import { test } from "node:test";
import assert from "node:assert/strict";
import type { DeviceStatus } from "@canopy/protocol";
import { CompactPolicy, beatOf, signature } from "./compact.js";

const base: DeviceStatus = {
  id: "d1",
  at: 1_000,
  heartbeatMs: 5_000,
  startedAt: 1,
  state: "online",
  groups: ["lab"],
  agent: { version: "1.0.0" },
  natsServer: {},
  facts: { os: { distro: "debian" }, cpu: { cores: 4, load: 3 }, mem: { total: 8, available: 4 }, disk: {}, net: {} },
  up: { messages: 10, bytes: 100, firstSeq: 1, lastSeq: 10, discarded: 0 },
  mcus: [{ id: "m1", board: "rp2040", firmware: "1", link: "serial", online: true, firstSeen: 1, lastSeen: 2 }],
};

test("content changes are written at once; gauges at most once a minute; beats carry liveness and the backlog", () => {
  const p = new CompactPolicy(60_000, 600_000);
  const sig = signature(base);
  assert.equal(p.full(sig, 0), true, "first report is a full record");
  p.wroteFull(sig, 0);
  // Time and backlog move on every beat: not a change of content.
  const later = { ...base, at: 6_000, up: { ...base.up, lastSeq: 99, messages: 99 } } as DeviceStatus;
  assert.equal(p.full(signature(later), 5_000), false);
  assert.deepEqual(beatOf(later), { at: 6_000, heartbeatMs: 5_000, up: later.up });
  // A gauge (load, an MCU's last-seen) waits for the gauge refresh.
  const gauge = { ...base, facts: { ...base.facts, cpu: { cores: 4, load: 80 } }, mcus: [{ ...base.mcus![0]!, lastSeen: 50 }] } as DeviceStatus;
  assert.equal(p.full(signature(gauge), 30_000), false);
  assert.equal(p.full(signature(gauge), 60_000), true);
  // Content: groups, an MCU going offline, the state, the heartbeat interval, a clock skew measured.
  for (const changed of [
    { ...base, groups: ["lab", "field"] },
    { ...base, mcus: [{ ...base.mcus![0]!, online: false }] },
    { ...base, state: "stopping" },
    { ...base, heartbeatMs: 1_000 },
    { ...base, clock: { skewMs: 3_600_000, rttMs: 2 } },
  ] as DeviceStatus[]) assert.equal(p.full(signature(changed), 1_000), true, JSON.stringify(changed));
  // Nothing changed for 10 minutes: written anyway; and after reset() (hub was unreachable).
  assert.equal(p.full(sig, 600_000), true);
  p.reset();
  assert.equal(p.full(sig, 1_000), true);
});
