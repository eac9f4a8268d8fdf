import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import { waitFor } from "@canopy/protocol";
import { Fleet } from "../harness/index.js";

interface DeviceJson {
  id: string;
  online: boolean;
  status: { facts?: { os?: { platform?: string; distro?: string } }; agent?: { version?: string } } | null;
}

let fleet: Fleet;
before(async () => {
  fleet = await Fleet.start();
});
after(async () => {
  await fleet?.stop();
});

async function devices(): Promise<DeviceJson[]> {
  const r = await fleet.cli(["devices", "--json"]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as DeviceJson[];
}

test("hub + 2 agents: both online with os facts; SIGKILL of one agent's group → offline within 3 heartbeats", async () => {
  await fleet.startAgent("d1", { heartbeat: "1s" });
  await fleet.startAgent("d2", { heartbeat: "1s" });
  const online = await waitFor(
    async () => {
      const list = await devices();
      return list.length === 2 && list.every((d) => d.online && d.status?.facts?.os?.platform) ? list : undefined;
    },
    { timeoutMs: 20_000, what: "d1 and d2 online with facts" },
  );
  assert.deepEqual(online.map((d) => d.id), ["d1", "d2"]);
  assert.equal(online[0]?.status?.facts?.os?.platform, "linux");
  assert.ok(online[0]?.status?.agent?.version);

  fleet.agent("d1").proc.killGroup("SIGKILL");
  const killedAt = Date.now();
  await fleet.agent("d1").proc.exited;
  // Each `canopy devices` call is judged by when it STARTED: the hub's view can only be older than
  // that. A call that started more than 3 heartbeats (+ 500 ms of timer slack) after the kill must
  // say offline, however long the CLI itself takes on a loaded machine.
  const lateOnline: number[] = [];
  await waitFor(
    async () => {
      const startedAt = Date.now();
      const offline = (await devices()).find((d) => d.id === "d1")?.online === false;
      if (!offline && startedAt - killedAt > 3_000 + 500) lateOnline.push(startedAt - killedAt);
      return offline;
    },
    { timeoutMs: 20_000, intervalMs: 200, what: "d1 offline" },
  );
  assert.deepEqual(lateOnline, [], "d1 was still shown online by calls started this many ms after the kill");
  assert.equal((await devices()).find((d) => d.id === "d2")?.online, true, "d2 stays online");
});

test("device add with a bad id exits 2, names the rule, writes nothing", async () => {
  const before = await devices();
  const r = await fleet.cli(["device", "add", "bad.id"]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /\^\[A-Za-z0-9_-\]\{1,64\}\$/);
  assert.deepEqual((await devices()).map((d) => d.id), before.map((d) => d.id));
});
