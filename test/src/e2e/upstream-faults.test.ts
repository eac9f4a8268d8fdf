import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import { waitFor } from "@canopy/protocol";
import { Fleet, natsServerChild, publishSeries, readShard, waitForCount } from "../harness/index.js";

let fleet: Fleet;
before(async () => {
  fleet = await Fleet.start();
});
after(async () => {
  await fleet?.stop();
});

test("leaf nats-server SIGKILLed mid-publish: every acked message reaches the hub exactly once", async () => {
  const agent = await fleet.startAgent("k1");
  const leafPid = await natsServerChild(agent.proc.pid);
  assert.ok(leafPid, "agent runs its leaf nats-server as a child");
  const leaf = await fleet.leafConnection("k1");
  const filter = "up.k1.tlm.loop";
  let killed = false;
  const acked = await publishSeries(leaf, {
    device: "k1",
    subject: filter,
    count: 6_000,
    window: 100,
    retryUntil: Date.now() + 60_000,
    onAck: (i) => {
      if (!killed && i >= 2_000) {
        killed = true;
        process.kill(leafPid, "SIGKILL");
      }
    },
  });
  assert.ok(killed, "the leaf was killed during the loop");
  // The agent's supervisor restarts the leaf on the same port; the loop's retries then land.
  const restarted = await natsServerChild(agent.proc.pid);
  assert.ok(restarted && restarted !== leafPid, "leaf restarted by the agent");
  const hub = await fleet.hubConnection();
  const shard = "FLEET_UP_0";
  await waitForCount(hub, shard, filter, acked.size, 60_000);
  const got = (await readShard(hub, shard, filter)).map(Number);
  const seen = new Set<number>();
  for (const i of got) {
    assert.ok(!seen.has(i), `duplicate ${i}`);
    seen.add(i);
  }
  const missing = [...acked].filter((i) => !seen.has(i));
  assert.deepEqual(missing, [], "acked but not in the hub");
  console.log(`# leaf kill: ${acked.size} acked of 6000, ${got.length} in hub, 0 duplicates`);
});

test("shard size 2 and 3 devices → 2 shards; canopy tail --device finds each device's data", async () => {
  for (const d of ["s1", "s2", "s3"]) {
    const r = await fleet.cli(["device", "add", d, "--shard-size", "2", "--json"]);
    assert.equal(r.code, 0, r.stderr);
  }
  const shards = new Map<string, string>();
  for (const d of ["s1", "s2", "s3"]) {
    const r = await fleet.cli(["devices", "--json"]);
    const row = (JSON.parse(r.stdout) as Array<{ id: string; shard: string }>).find((x) => x.id === d);
    shards.set(d, row?.shard ?? "");
  }
  // k1 from the previous test already sits in FLEET_UP_0: s1 fills it, s2 and s3 open FLEET_UP_1.
  assert.deepEqual(new Set(shards.values()), new Set(["FLEET_UP_0", "FLEET_UP_1"]));
  for (const d of ["s1", "s2", "s3"]) {
    await fleet.startAgent(d, { enroll: false });
    const leaf = await fleet.leafConnection(d);
    await publishSeries(leaf, { device: d, subject: `up.${d}.tlm.hello`, count: 3 });
  }
  for (const d of ["s1", "s2", "s3"]) {
    const lines = await waitFor(
      async () => {
        const r = await fleet.cli(["tail", "--device", d, "--subject", `up.${d}.tlm.hello`, "--json"]);
        assert.equal(r.code, 0, r.stderr);
        const rows = r.stdout.trim().split("\n").filter(Boolean).map((l) => JSON.parse(l) as { device: string; payload: string; seq: number });
        return rows.length === 3 ? rows : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 500, what: `tail of ${d}` },
    );
    assert.deepEqual(lines.map((l) => l.payload), ["0", "1", "2"]);
    assert.ok(lines.every((l) => l.device === d && l.seq > 0));
    assert.equal(lines[0] && lines[0] && shards.get(d) !== undefined, true);
  }
});

interface BacklogRow {
  device: string;
  pending: number | null;
  asOfMs: number | null;
  lastReceived: string | null;
  deviceSeq: number | null;
  hubSeq: number | null;
}

test("backlog: link down with 1,000 pending, every device listed with pending and its age; 0 after drain", async () => {
  const agent = await fleet.startAgent("b1");
  const hub = await fleet.hubConnection();
  const leaf = await fleet.leafConnection("b1");
  const backlog = async (): Promise<BacklogRow[]> => {
    const r = await fleet.cli(["backlog", "--json"]);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as BacklogRow[];
  };
  // Let the hub receive something first so lastReceived is known.
  await publishSeries(leaf, { device: "b1", subject: "up.b1.tlm.first", count: 10 });
  await waitFor(async () => (await backlog()).find((r) => r.device === "b1" && r.pending === 0 && r.lastReceived), {
    timeoutMs: 30_000,
    intervalMs: 500,
    what: "b1 drained before the outage",
  });

  agent.link.cut();
  const cutAt = Date.now();
  const acked = await publishSeries(leaf, { device: "b1", subject: "up.b1.tlm.offline", count: 1_000 });
  assert.equal(acked.size, 1_000);
  const during = await backlog();
  const devices = (await fleet.cli(["devices", "--json"])).stdout;
  for (const id of (JSON.parse(devices) as Array<{ id: string }>).map((d) => d.id)) {
    const row = during.find((r) => r.device === id);
    assert.ok(row, `${id} listed`);
    assert.ok("pending" in row && "asOfMs" in row && "lastReceived" in row);
  }
  const b1 = during.find((r) => r.device === "b1");
  assert.ok(b1?.lastReceived, "the hub says when it last heard from b1");
  assert.ok((b1?.asOfMs ?? 0) >= 0 && (b1?.asOfMs ?? 0) <= Date.now() - cutAt + 3_000);

  agent.link.restore();
  await waitForCount(hub, "FLEET_UP_0", "up.b1.tlm.offline", 1_000, 60_000);
  const drained = await waitFor(
    async () => {
      const row = (await backlog()).find((r) => r.device === "b1");
      return row && row.pending === 0 && (row.asOfMs ?? Infinity) < 5_000 ? row : undefined;
    },
    { timeoutMs: 30_000, intervalMs: 500, what: "b1 backlog 0 after drain" },
  );
  assert.ok((drained.hubSeq ?? 0) >= 1_010);
});
