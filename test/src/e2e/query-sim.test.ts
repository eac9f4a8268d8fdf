import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import { simGroups, simProfile } from "@canopy/agent/sim/facts";
import { CanopyProcess, Fleet, json } from "../harness/index.js";

// 1,000 simulated agents (`canopy sim fleet`, one process, a NATS connection each) against a real hub.

const N = 1_000;
const SEED = 7;
const GROUPS = ["lab", "field"];

interface QueryJson {
  devices: { id: string; source: string; matched: boolean | null; values?: Record<string, unknown> }[];
  summary: { targeted: number; expected: number; answered: number; matched: number; silent: number; elapsedMs: number; timedOut: boolean };
}

let fleet: Fleet;
let sim: CanopyProcess | undefined;

/** What the simulator generated for each device, recomputed here from the same seed. */
const profiles = Array.from({ length: N }, (_, i) => {
  const id = `sim-${String(i).padStart(4, "0")}`;
  const groups = simGroups(i, SEED, GROUPS);
  return { id, groups, facts: simProfile(id, i, SEED, groups, "x").facts };
});

async function query(args: string[]): Promise<QueryJson> {
  const r = await fleet.cli(["query", ...args, "--json"], 60_000);
  assert.equal(r.code, 0, r.stderr);
  return json<QueryJson>(r);
}

before(async () => {
  fleet = await Fleet.start();
  sim = new CanopyProcess(
    ["sim", "fleet", "--devices", String(N), "--server", fleet.hub.client, "--seed", String(SEED), "--groups", GROUPS.join(","), "--heartbeat", "30s"],
    fleet.env,
  );
  await sim.waitForOutput(/"event":"sim-ready"/, 120_000);
});
after(async () => {
  await sim?.stop();
  await fleet?.stop();
});

test("1,000 simulated devices: a full-fleet query returns all 1,000 answers well before the timeout", async (t) => {
  const q = await query(["--timeout", "20s", "--fields", "os.platform"]);
  t.diagnostic(`full-fleet query of ${N}: ${q.summary.elapsedMs} ms`);
  const why = JSON.stringify(q.summary);
  assert.equal(q.summary.targeted, N, why);
  assert.equal(q.summary.expected, N, `every simulated device enrolled itself and reported presence: ${why}`);
  assert.equal(q.summary.answered, N, why);
  assert.equal(q.summary.matched, N, why);
  assert.equal(q.devices.length, N);
  assert.equal(new Set(q.devices.map((d) => d.id)).size, N);
  assert.equal(q.summary.timedOut, false);
  assert.ok(q.summary.elapsedMs < 6_000, `full-fleet query took ${q.summary.elapsedMs} ms of a 20 s timeout`);
});

test("a selective query returns exactly the devices whose facts match", async () => {
  const q = await query(["cpu.load < 10.0 && mem.total >= 1073741824", "--timeout", "20s", "--fields", "cpu.load"]);
  const want = profiles.filter((p) => (p.facts.cpu.load as number) < 10 && (p.facts.mem.total as number) >= 1024 ** 3).map((p) => p.id);
  assert.ok(want.length > 20 && want.length < 200, `seeded fleet gives a selective set (${want.length})`);
  assert.deepEqual(q.devices.map((d) => d.id).sort(), want.sort());
  assert.equal(q.summary.answered, N, "non-matching devices answer too: the collector stops early");
  assert.equal(q.summary.timedOut, false);
});

test("group targeting and an MCU predicate over the simulated fleet", async () => {
  const q = await query(['mcus.exists(m, m.board == "rp2040" && m.online)', "--group", "field", "--timeout", "20s"]);
  const inField = profiles.filter((p) => p.groups.includes("field"));
  const want = inField.filter((p) => p.facts.mcus.some((m) => m.board === "rp2040" && m.online)).map((p) => p.id);
  assert.equal(q.summary.targeted, inField.length);
  assert.equal(q.summary.answered, inField.length);
  assert.deepEqual(q.devices.map((d) => d.id).sort(), want.sort());
});
