import { test } from "node:test";
import assert from "node:assert/strict";
import { Kvm } from "@nats-io/kv";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { waitFor } from "@canopy/protocol";
import { Fleet } from "../harness/index.js";

// Issue 15, fleet scale: the hub's load follows what changes. A real agent writes its full status
// record (KV `status`) when its content changes and a compact beat (KV `beat`) on the other heartbeats;
// every reader (`devices`, `backlog`, config state) keeps presence and the UP backlog current.

interface DeviceRow {
  id: string;
  online: boolean;
  lastSeenMs: number | null;
  status: { config?: { revision?: number }; state?: string } | null;
}
interface BacklogRow {
  device: string;
  deviceSeq: number | null;
  asOfMs: number | null;
}

test("compact heartbeats: the full status only on change, beats in between; devices, backlog and config state stay right", async (t) => {
  const fleet = await Fleet.start();
  t.after(() => fleet.stop());
  const agent = await fleet.startAgent("pc1", { heartbeat: "1s" });
  const hub = await fleet.hubConnection();
  const writes = { status: 0, beat: 0 };
  const watches = await Promise.all(
    (["status", "beat"] as const).map(async (b) => {
      const w = await (await new Kvm(hub).open(b)).watch({ key: "pc1", include: "updates_only" as never });
      void (async () => {
        for await (const _ of w) writes[b]++;
      })();
      return w;
    }),
  );
  t.after(() => watches.forEach((w) => w.stop()));
  const cli = async <T>(args: string[]): Promise<T> => {
    const r = await fleet.cli([...args, "--json"]);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as T;
  };
  const row = async (): Promise<DeviceRow | undefined> => (await cli<DeviceRow[]>(["devices"])).find((d) => d.id === "pc1");

  // Settled: the first records (start, clock measured) are written; then 8 heartbeats are beats.
  await waitFor(async () => (await row())?.online === true, { timeoutMs: 30_000, what: "pc1 online" });
  await waitFor(() => writes.beat >= 2, { timeoutMs: 20_000, what: "first compact beats" });
  const before = { ...writes };
  await waitFor(() => writes.beat >= before.beat + 8, { timeoutMs: 20_000, what: "8 more beats" });
  assert.equal(writes.status - before.status, 0, `no full record while nothing changed (${JSON.stringify(writes)})`);
  const online = await row();
  assert.equal(online?.online, true);
  assert.ok((online?.lastSeenMs ?? Infinity) < 3_000, `last seen from the beat: ${online?.lastSeenMs} ms`);

  // The UP backlog travels in the beat: 25 published on the leaf show in `backlog` without a full record.
  const leaf = await fleet.leafConnection("pc1");
  const js = jetstream(leaf);
  let last = 0;
  for (let i = 0; i < 25; i++) last = (await js.publish("up.pc1.tlm.t", String(i))).seq;
  const statusBefore = writes.status;
  const b = await waitFor(
    async () => (await cli<BacklogRow[]>(["backlog"])).find((r) => r.device === "pc1" && r.deviceSeq === last && (r.asOfMs ?? Infinity) < 3_000),
    { timeoutMs: 20_000, intervalMs: 500, what: "backlog from the beats" },
  );
  assert.equal(b.deviceSeq, last);
  assert.equal(writes.status, statusBefore, "the backlog did not need a full record");

  // A content change (config applied) is a full record at once, and `devices` shows its revision.
  const set = await fleet.cli(["config", "set", "app.mode", "compact", "--device", "pc1"]);
  assert.equal(set.code, 0, set.stderr);
  const rev = await waitFor(async () => (await row())?.status?.config?.revision, { timeoutMs: 30_000, what: "config revision in status" });
  assert.ok(rev > 0);
  assert.ok(writes.status > statusBefore, "config applied → full status record");

  // A clean stop writes `stopping` in the full record: offline at once although its last beat is fresh.
  await agent.proc.stop();
  const off = await row();
  assert.equal(off?.online, false, JSON.stringify(off));
  assert.equal(off?.status?.state, "stopping");
});

test("a hub without KV beat (provisioned before it): the agent falls back to full records and stays online; readers cope", async (t) => {
  const fleet = await Fleet.start();
  t.after(() => fleet.stop());
  const agent = await fleet.startAgent("pc2", { heartbeat: "1s" });
  const hub = await fleet.hubConnection();
  await (await jetstreamManager(hub)).streams.delete("KV_beat");
  let full = 0;
  const w = await (await new Kvm(hub).open("status")).watch({ key: "pc2", include: "updates_only" as never });
  t.after(() => w.stop());
  void (async () => {
    for await (const _ of w) full++;
  })();
  await waitFor(() => agent.proc.output.some((l) => l.includes("compact heartbeat refused")), { timeoutMs: 20_000, what: "the agent noticing" });
  const after = full;
  await waitFor(() => full >= after + 4, { timeoutMs: 20_000, what: "full records on every heartbeat" });
  const r = await fleet.cli(["devices", "--json"]);
  assert.equal(r.code, 0, r.stderr);
  const row = (JSON.parse(r.stdout) as DeviceRow[]).find((d) => d.id === "pc2");
  assert.equal(row?.online, true, JSON.stringify(row));
  assert.ok((row?.lastSeenMs ?? Infinity) < 3_000);
});
