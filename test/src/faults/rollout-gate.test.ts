import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { waitFor } from "@canopy/protocol";
import { Fleet, json } from "../harness/index.js";
import { cliOk, show, waitApplied, type ShowJson } from "../e2e/config-helpers.js";

interface RolloutJson {
  id: string;
  state: string;
  reason?: string;
  current: number;
  waves: Array<{ devices: string[]; releasedAt?: number; passedAt?: number; soakedAt?: number; results: Record<string, { result: string; error?: string }> }>;
}

let fleet: Fleet;
before(async () => {
  fleet = await Fleet.start();
  await Promise.all(["g1", "g2"].map((d) => fleet.startAgent(d, { groups: ["gate"] })));
});
after(async () => {
  await fleet?.stop();
});

async function rollout(id: string): Promise<RolloutJson> {
  return json<RolloutJson>(await fleet.cli(["rollout", "status", id, "--json"]));
}

test("health gate: a device that applied the revision and then went silent during the soak fails the wave; the rollout halts and the next wave never starts", async () => {
  await cliOk(fleet, ["config", "set", "app.mode", "a", "--group", "gate"]);
  await Promise.all(["g1", "g2"].map((d) => waitApplied(fleet, d, "app.mode", "a")));
  const started = JSON.parse(await cliOk(fleet, ["config", "rollout", "app.mode", "b", "--group", "gate", "--waves", "50%,100%", "--soak", "20s", "--json"])) as RolloutJson;
  assert.deepEqual(started.waves.map((w) => w.devices), [["g1"], ["g2"]]);
  await waitFor(async () => (await rollout(started.id)).waves[0]?.passedAt !== undefined, { timeoutMs: 30_000, intervalMs: 250, what: "wave 1 applied" });
  await waitApplied(fleet, "g1", "app.mode", "b");
  assert.match(await cliOk(fleet, ["rollout", "status", started.id]), /wave 1 \(50%\): soaking/);

  // g1 applied, then goes silent (its agent is SIGKILLed: no heartbeats) well inside the 20 s soak.
  const g1 = fleet.agent("g1");
  g1.proc.killGroup("SIGKILL");
  await g1.proc.exited;
  const r = await waitFor(async () => {
    const x = await rollout(started.id);
    return x.state === "halted" ? x : undefined;
  }, { timeoutMs: 30_000, intervalMs: 250, what: "rollout halted by the silent device" });
  assert.match(r.reason ?? "", /wave 1\/2: 1 failure\(s\).*g1: applied the revision, then went silent during the 20s soak/);
  assert.equal(r.waves[0]?.results.g1?.result, "failed");
  assert.equal(r.waves[0]?.soakedAt, undefined);
  assert.equal(r.waves[1]?.releasedAt, undefined, "wave 2 never released");
  assert.equal((await show(fleet, "g2")).keys.find((k) => k.key === "app.mode")?.value, "a", "g2 untouched");

  // Back, g1 gets the previous value again (the halt re-rendered it).
  await fleet.startAgent("g1", { enroll: false, groups: ["gate"] });
  await waitApplied(fleet, "g1", "app.mode", "a", 30_000);
});

test("health gate: devices that keep reporting through the soak pass it, wave by wave, and the rollout completes", async () => {
  const started = JSON.parse(await cliOk(fleet, ["config", "rollout", "app.mode", "c", "--group", "gate", "--waves", "50%,100%", "--soak", "3s", "--json"])) as RolloutJson;
  const done = await waitFor(async () => {
    const x = await rollout(started.id);
    assert.notEqual(x.state, "halted", x.reason);
    return x.state === "completed" ? x : undefined;
  }, { timeoutMs: 60_000, intervalMs: 250, what: "rollout completed" });
  for (const w of done.waves) {
    assert.ok(w.passedAt !== undefined && w.soakedAt !== undefined && w.soakedAt - w.passedAt >= 3_000, JSON.stringify(w));
  }
  // The second wave starts only after the first one soaked.
  assert.ok((done.waves[1]?.releasedAt ?? 0) >= (done.waves[0]?.soakedAt ?? Infinity));
  await Promise.all(["g1", "g2"].map((d) => waitApplied(fleet, d, "app.mode", "c")));
});

test("config show: the applied revision is the last one that applied, not a refused later one", async () => {
  await cliOk(fleet, ["config", "set", "up.maxBytes", "2MiB", "--device", "g2"]);
  const good = await waitApplied(fleet, "g2", "up.maxBytes", "2MiB");
  // 1 TiB passes the schema but no leaf can hold it: the agent refuses it and keeps running 2 MiB.
  await cliOk(fleet, ["config", "set", "up.maxBytes", "1TiB", "--device", "g2"]);
  const bad = await waitFor(async () => {
    // `config show` exits 1 while a key is refused: read its JSON anyway.
    const v = json<ShowJson>(await fleet.cli(["config", "show", "--device", "g2", "--json"]));
    const k = v.keys.find((x) => x.key === "up.maxBytes");
    return k?.status === "failed" ? { v, k } : undefined;
  }, { timeoutMs: 30_000, intervalMs: 250, what: "g2 to refuse 1TiB" });
  assert.ok(bad.k.renderedRevision > good.renderedRevision);
  assert.equal(bad.k.applied?.revision, bad.k.renderedRevision, "the refused revision was processed");
  assert.equal((bad.k.applied as { appliedRevision?: number } | null)?.appliedRevision, good.renderedRevision, "what runs is the revision that applied");
  assert.ok((bad.v.appliedRevision ?? 0) < bad.k.renderedRevision, `appliedRevision ${bad.v.appliedRevision} must not be the refused ${bad.k.renderedRevision}`);
  const human = await fleet.cli(["config", "show", "--device", "g2"]);
  assert.equal(human.code, 1);
  assert.match(human.stdout, new RegExp(`FAILED: up\\.maxBytes: .*\\(runs rev ${good.renderedRevision}\\)`));
  await cliOk(fleet, ["config", "unset", "up.maxBytes", "--device", "g2"]);
});
