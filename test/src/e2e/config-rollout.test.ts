import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import { Kvm } from "@nats-io/kv";
import { RenderedConfig, waitFor } from "@canopy/protocol";
import { CanopyProcess, Fleet, json } from "../harness/index.js";
import { cliOk, configEvents, startIsolatedFleet, show, waitApplied } from "./config-helpers.js";

interface RolloutJson {
  id: string;
  state: string;
  reason?: string;
  current: number;
  waves: Array<{ devices: string[]; releasedAt?: number; passedAt?: number; results: Record<string, { result: string; error?: string }> }>;
  pending: string[];
}

// The hub runs without a gateway; the gateway is its own process so a test can SIGKILL just it.
let fleet: Fleet;
let gateway: CanopyProcess;
const DEVICES = ["d1", "d2", "d3"];

async function startGateway(): Promise<CanopyProcess> {
  const gw = new CanopyProcess(["gateway"], fleet.env);
  await gw.waitForOutput(/gateway running/, 20_000);
  return gw;
}

async function status(id: string): Promise<RolloutJson> {
  return json<RolloutJson>(await fleet.cli(["rollout", "status", id, "--json"]));
}

async function waitRollout(id: string, pred: (r: RolloutJson) => boolean, what: string, timeoutMs = 60_000): Promise<RolloutJson> {
  let last: RolloutJson | undefined;
  try {
    return await waitFor(async () => ((last = await status(id)), pred(last) ? last : undefined), { timeoutMs, intervalMs: 250, what });
  } catch (err) {
    throw new Error(`${(err as Error).message}\nlast: ${JSON.stringify(last)}`);
  }
}

before(async () => {
  fleet = await startIsolatedFleet(["--no-gateway"]);
  gateway = await startGateway();
  await Promise.all(DEVICES.map((d) => fleet.startAgent(d, { groups: ["lab"] })));
});
after(async () => {
  await gateway?.stop();
  await fleet?.stop();
});

test("a value the devices cannot apply halts the rollout in wave 1, rolls the wave back, and status says why", async () => {
  // A schema-invalid value never gets this far: it is refused at the door.
  const refused = await fleet.cli(["config", "rollout", "log.level", "loud", "--group", "lab", "--json"]);
  assert.equal(refused.code, 2, refused.stderr);
  assert.match(refused.stderr, /log\.level: .*must be one of trace, debug/);
  assert.equal(JSON.parse(await cliOk(fleet, ["rollout", "status", "--json"])).length, 0, "no rollout written");

  // 1 TiB passes the schema but is more than any leaf's JetStream store: each agent fails to apply it.
  await cliOk(fleet, ["config", "set", "up.maxBytes", "1MiB", "--group", "lab"]);
  await Promise.all(DEVICES.map((d) => waitApplied(fleet, d, "up.maxBytes", "1MiB")));
  const before = await Promise.all(DEVICES.map(async (d) => (await show(fleet, d)).keys.find((k) => k.key === "up.maxBytes")?.renderedRevision));

  const started = JSON.parse(await cliOk(fleet, ["config", "rollout", "up.maxBytes", "1TiB", "--group", "lab", "--json"])) as RolloutJson;
  assert.deepEqual(started.waves.map((w) => w.devices), [["d1"], ["d2"], ["d3"]]);
  const r = await waitRollout(started.id, (x) => x.state === "halted", "rollout halted");
  assert.equal(r.current, 0, "halted in the first wave");
  assert.match(r.reason ?? "", /wave 1\/3: 1 failure\(s\).*d1: up\.maxBytes: /);
  assert.equal(r.waves[0]?.results.d1?.result, "failed");
  assert.equal(r.waves[1]?.releasedAt, undefined);

  // d1 is back on the previous value (a new revision it applied); d2 and d3 were never touched.
  const d1 = await waitApplied(fleet, "d1", "up.maxBytes", "1MiB");
  assert.ok(d1.renderedRevision > (before[0] ?? 0));
  for (const [i, d] of ["d2", "d3"].entries()) {
    assert.equal((await show(fleet, d)).keys.find((k) => k.key === "up.maxBytes")?.renderedRevision, before[i + 1], `${d} untouched`);
  }
  assert.equal(JSON.parse(await cliOk(fleet, ["config", "get", "up.maxBytes", "--group", "lab", "--json"])).value, "1MiB");
  const human = await cliOk(fleet, ["rollout", "status", started.id]);
  assert.match(human, /state: halted — wave 1\/3/);
  assert.match(human, /d1: failed: up\.maxBytes/);
  await cliOk(fleet, ["config", "unset", "up.maxBytes", "--group", "lab"]);
});

test("gateway SIGKILLed between waves: a new gateway completes the rollout; each device applies each revision once", async () => {
  const nc = await fleet.hubConnection();
  const started = JSON.parse(
    await cliOk(fleet, ["config", "rollout", "app.color", "blue", "--group", "lab", "--waves", "34%,67%,100%", "--soak", "6s", "--json"]),
  ) as RolloutJson;
  await waitRollout(started.id, (x) => x.current === 1 && x.waves[0]?.passedAt !== undefined, "wave 1 passed");
  gateway.killGroup("SIGKILL");
  await gateway.exited;
  const mid = await status(started.id);
  assert.equal(mid.state, "running");
  assert.equal(mid.waves[1]?.releasedAt, undefined, "killed before wave 2 was released");

  gateway = await startGateway();
  const done = await waitRollout(started.id, (x) => x.state === "completed", "rollout completed after gateway restart", 90_000);
  assert.ok(done.waves.every((w) => w.passedAt !== undefined));
  assert.equal(JSON.parse(await cliOk(fleet, ["config", "get", "app.color", "--group", "lab", "--json"])).value, "blue");

  const cfg = await new Kvm(nc).open("cfg");
  for (const d of DEVICES) {
    const row = await waitApplied(fleet, d, "app.color", "blue");
    // Rendered exactly once: one revision of <dev>.app.color in the hub's history.
    const revs: number[] = [];
    for await (const e of await cfg.history({ key: `${d}.app.color` })) {
      if (e.operation === "PUT" && RenderedConfig.parse(e.json()).value === "blue") revs.push(e.revision);
    }
    assert.deepEqual(revs, [row.renderedRevision], `${d}: one rendered revision`);
    // Applied exactly once per revision, for every key the device ever got.
    const evs = await waitFor(
      async () => {
        const e = await configEvents(nc, d);
        return e.some((x) => x.key === "app.color" && x.revision === row.renderedRevision) ? e : undefined;
      },
      { timeoutMs: 20_000, intervalMs: 500, what: `${d} app.color event` },
    );
    const seen = evs.map((e) => `${e.key}@${e.revision}`);
    assert.deepEqual(seen, [...new Set(seen)], `${d}: no revision reported twice`);
    assert.equal(evs.filter((e) => e.key === "app.color").length, 1);
  }
});

test("an offline device is pending, not a failure: the rollout completes and the device converges when back", async () => {
  const d3 = fleet.agent("d3");
  d3.link.cut();
  await waitFor(async () => (JSON.parse(await cliOk(fleet, ["devices", "--json"])) as Array<{ id: string; online: boolean }>).find((d) => d.id === "d3")?.online === false, {
    timeoutMs: 15_000,
    intervalMs: 250,
    what: "d3 offline",
  });
  const started = JSON.parse(await cliOk(fleet, ["config", "rollout", "app.size", "7", "--group", "lab", "--waves", "100%", "--json"])) as RolloutJson;
  const done = await waitRollout(started.id, (x) => x.state === "completed", "rollout completed with d3 offline");
  assert.equal(done.waves[0]?.results.d3?.result, "offline", JSON.stringify({ done, d3: await show(fleet, "d3") }));
  assert.deepEqual(done.pending, ["d3"]);
  assert.match(await cliOk(fleet, ["rollout", "status", started.id]), /d3: pending \(offline\)/);
  d3.link.restore();
  await waitApplied(fleet, "d3", "app.size", 7, 20_000);
});

test("rollout abort halts between waves and restores the previous value on the released wave", async () => {
  await cliOk(fleet, ["config", "set", "app.level", "1", "--group", "lab"]);
  await Promise.all(DEVICES.map((d) => waitApplied(fleet, d, "app.level", 1)));
  const started = JSON.parse(
    await cliOk(fleet, ["config", "rollout", "app.level", "2", "--group", "lab", "--waves", "34%,100%", "--soak", "60s", "--json"]),
  ) as RolloutJson;
  await waitRollout(started.id, (x) => x.waves[0]?.passedAt !== undefined, "wave 1 passed");
  await waitApplied(fleet, "d1", "app.level", 2);
  await cliOk(fleet, ["rollout", "abort", started.id]);
  const r = await waitRollout(started.id, (x) => x.state === "halted", "rollout halted by abort");
  assert.equal(r.reason, "aborted by operator");
  await waitApplied(fleet, "d1", "app.level", 1);
  const again = await fleet.cli(["rollout", "abort", started.id]);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /already halted/);
});
