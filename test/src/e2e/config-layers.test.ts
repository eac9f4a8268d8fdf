import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { Kvm } from "@nats-io/kv";
import { jetstreamManager } from "@nats-io/jetstream";
import { Assets, waitFor } from "@canopy/protocol";
import { Fleet } from "../harness/index.js";
import { cliOk, configEvents, show, waitApplied } from "./config-helpers.js";

let fleet: Fleet;
before(async () => {
  fleet = await Fleet.start();
  await Promise.all([
    fleet.startAgent("d1", { groups: ["lab"] }),
    fleet.startAgent("d2", { groups: ["lab"] }),
    fleet.startAgent("d3", { groups: [] }),
  ]);
});
after(async () => {
  await fleet?.stop();
});

test("layering: fleet info, group lab debug, device d2 warn → d1 debug, d2 warn, d3 info, each applied and reported", async () => {
  await cliOk(fleet, ["config", "set", "log.level", "info", "--fleet"]);
  await cliOk(fleet, ["config", "set", "log.level", "debug", "--group", "lab"]);
  await cliOk(fleet, ["config", "set", "log.level", "warn", "--device", "d2"]);

  const d1 = await waitApplied(fleet, "d1", "log.level", "debug");
  const d2 = await waitApplied(fleet, "d2", "log.level", "warn");
  const d3 = await waitApplied(fleet, "d3", "log.level", "info");
  assert.equal(d1.source, "group:lab");
  assert.equal(d2.source, "device:d2");
  assert.equal(d3.source, "fleet");
  assert.equal(d1.applied?.status, "applied");

  // The applied reports also travel upstream as events on up.<dev>.evt.config.
  const nc = await fleet.hubConnection();
  for (const [dev, row] of [["d1", d1], ["d2", d2], ["d3", d3]] as const) {
    const evs = await waitFor(
      async () => {
        const e = await configEvents(nc, dev);
        return e.some((x) => x.key === "log.level" && x.revision === row.renderedRevision && x.status === "applied") ? e : undefined;
      },
      { timeoutMs: 15_000, intervalMs: 300, what: `${dev} applied event for revision ${row.renderedRevision}` },
    );
    assert.ok(evs.length > 0);
  }

  // The human table names the layer and the revision (one number everywhere).
  const table = await cliOk(fleet, ["config", "show", "--device", "d2"]);
  assert.match(table, /log\.level\s+"warn"\s+device:d2\s+\d+\s+applied/);

  // Removing the device override falls back to the group layer.
  await cliOk(fleet, ["config", "unset", "log.level", "--device", "d2"]);
  assert.equal((await waitApplied(fleet, "d2", "log.level", "debug")).source, "group:lab");
});

test("a fleet-wide set written as one atomic batch reaches the real agents' leaf mirrors and is applied", async () => {
  // Eight more registry records (no agents) make the render 11 writes: past the renderer's threshold
  // for an atomic batch, so the agents' keys travel in a batch-written message.
  const nc = await fleet.hubConnection();
  const devices = await new Kvm(nc).open(Assets.kvDevices);
  for (let i = 0; i < 8; i++) await devices.put(`reg${i}`, JSON.stringify({ id: `reg${i}`, groups: [], created: Date.now() }));
  try {
    await cliOk(fleet, ["config", "set", "app.batched", "yes", "--fleet"]);
    const jsm = await jetstreamManager(nc);
    const batchIds = new Set<string | undefined>();
    for (const d of ["d1", "d2", "d3", "reg0"]) {
      const m = await jsm.streams.getMessage(`KV_${Assets.kvConfig}`, { last_by_subj: `$KV.${Assets.kvConfig}.${d}.app.batched` });
      batchIds.add(m?.header?.get("Nats-Batch-Id"));
    }
    assert.equal(batchIds.size, 1, "one batch for the whole fleet");
    assert.ok([...batchIds][0], "written as an atomic batch");
    for (const d of ["d1", "d2", "d3"]) assert.equal((await waitApplied(fleet, d, "app.batched", "yes")).applied?.status, "applied");
  } finally {
    for (let i = 0; i < 8; i++) await devices.delete(`reg${i}`);
  }
});

test("app keys go to <data>/app-config.json and local.cfg.changed; bad values fail with the schema message", async () => {
  const leaf = await fleet.leafConnection("d3");
  const sub = leaf.subscribe("local.cfg.changed", { max: 1 });
  await leaf.flush();
  await cliOk(fleet, ["config", "set", "app.endpoints", '["a","b"]', "--device", "d3"]);
  for await (const m of sub) {
    const body = m.json<{ changed: string[] }>();
    assert.deepEqual(body.changed, ["app.endpoints"]);
  }
  await waitApplied(fleet, "d3", "app.endpoints", ["a", "b"]);
  const file = JSON.parse(await readFile(join(fleet.agent("d3").dataDir, "app-config.json"), "utf8")) as { config: Record<string, unknown> };
  assert.deepEqual(file.config["app.endpoints"], ["a", "b"]);
  assert.equal(file.config["log.level"], undefined, "agent-owned live keys are not handed to apps");

  // A value the agent could not apply is refused at the door: exit 2, the rule, nothing written.
  const bad = await fleet.cli(["config", "set", "heartbeat.interval", "soon", "--device", "d3"]);
  assert.equal(bad.code, 2, bad.stderr);
  assert.match(bad.stderr, /heartbeat\.interval: .*invalid duration "soon".*must be a duration from 250ms to 10m/);
  assert.equal((await fleet.cli(["config", "get", "heartbeat.interval", "--device", "d3"])).code, 1, "nothing written");

  // A valid interval is applied live: the status record carries the new heartbeat.
  await cliOk(fleet, ["config", "set", "heartbeat.interval", "2s", "--device", "d3"]);
  await waitApplied(fleet, "d3", "heartbeat.interval", "2s");
  const devs = JSON.parse(await cliOk(fleet, ["devices", "--json"])) as Array<{ id: string; status: { heartbeatMs: number } }>;
  assert.equal(devs.find((d) => d.id === "d3")?.status.heartbeatMs, 2_000);
});

test("revert --to restores an earlier value fleet-wide; history lists every revision", async () => {
  const first = JSON.parse(await cliOk(fleet, ["config", "set", "app.mode", "eco", "--fleet", "--json"])) as { revision: number };
  await cliOk(fleet, ["config", "set", "app.mode", "turbo", "--fleet"]);
  await Promise.all(["d1", "d2", "d3"].map((d) => waitApplied(fleet, d, "app.mode", "turbo")));

  await cliOk(fleet, ["config", "revert", "app.mode", "--fleet", "--to", String(first.revision)]);
  await Promise.all(["d1", "d2", "d3"].map((d) => waitApplied(fleet, d, "app.mode", "eco")));
  const hist = JSON.parse(await cliOk(fleet, ["config", "history", "app.mode", "--fleet", "--json"])) as Array<{ value: unknown }>;
  assert.deepEqual(hist.map((h) => h.value), ["eco", "turbo", "eco"]);
  assert.equal(JSON.parse(await cliOk(fleet, ["config", "get", "app.mode", "--fleet", "--json"])).value, "eco");
});

test("bad usage exits 2 with a clear message and writes nothing; unknown revision exits 1", async () => {
  const cases: Array<[string[], RegExp]> = [
    [["config", "set", "log.level", "debug"], /exactly one of --fleet, --group/],
    [["config", "set", "log.level", "debug", "--fleet", "--group", "lab"], /exactly one of/],
    [["config", "set", "log.level", "debug", "--group", "bad.group"], /invalid group id/],
    [["config", "set", "bad..key", "1", "--fleet"], /invalid key/],
    [["config", "rollout", "log.level", "debug", "--group", "lab", "--waves", "50%,20%"], /waves must increase/],
    [["config", "rollout", "log.level", "debug", "--group", "lab", "--health-timeout", "soon"], /invalid --health-timeout/],
    [["config", "revert", "log.level", "--fleet", "--to", "x"], /--to must be a revision/],
  ];
  for (const [args, re] of cases) {
    const r = await fleet.cli(args);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, re);
  }
  const missing = await fleet.cli(["config", "revert", "log.level", "--fleet", "--to", "99999"]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /no revision 99999/);
  const unset = await fleet.cli(["config", "get", "never.set", "--fleet"]);
  assert.equal(unset.code, 1);
  assert.match(unset.stderr, /not set in fleet/);
});

test("local.config.reload on the leaf re-applies from the mirror and answers with the applied revision", async () => {
  const leaf = await fleet.leafConnection("d1");
  const before = await show(fleet, "d1");
  const m = await leaf.request("local.config.reload", "", { timeout: 10_000 });
  const reply = m.json<{ revision: number; keys: number; failed: unknown[] }>();
  assert.equal(reply.keys, before.keys.length);
  assert.ok(reply.revision >= before.revision);
  assert.deepEqual(reply.failed, []);
});
