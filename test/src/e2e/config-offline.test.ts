import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import { readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { waitFor } from "@canopy/protocol";
import { Fleet } from "../harness/index.js";
import { cliOk, configEvents, startIsolatedFleet, show, waitApplied } from "./config-helpers.js";

let fleet: Fleet;
before(async () => {
  fleet = await startIsolatedFleet();
  await fleet.startAgent("d1", { groups: ["lab"] });
});
after(async () => {
  await fleet?.stop();
});

test("offline convergence: a fleet key changed while d1's link is down is applied within 10 s of reconnect", async () => {
  await cliOk(fleet, ["config", "set", "app.threshold", "10", "--fleet"]);
  await waitApplied(fleet, "d1", "app.threshold", 10);

  const d1 = fleet.agent("d1");
  d1.link.cut();
  await cliOk(fleet, ["config", "set", "app.threshold", "42", "--fleet"]);
  // The hub has rendered the new value; the device, cut off, still runs the old one.
  const appFile = join(d1.dataDir, "app-config.json");
  const pending = (await show(fleet, "d1")).keys.find((k) => k.key === "app.threshold");
  assert.equal(pending?.value, 42);
  assert.equal(pending?.inSync, false);
  assert.equal((JSON.parse(await readFile(appFile, "utf8")) as { config: Record<string, unknown> }).config["app.threshold"], 10);

  d1.link.restore();
  const restoredAt = Date.now();
  await waitFor(
    async () => (JSON.parse(await readFile(appFile, "utf8")) as { config: Record<string, unknown> }).config["app.threshold"] === 42,
    { timeoutMs: 10_000, intervalMs: 100, what: "d1 applies app.threshold=42 after reconnect" },
  );
  const appliedMs = Date.now() - restoredAt;
  assert.ok(appliedMs <= 10_000, `applied ${appliedMs} ms after reconnect`);
  // …and the hub hears about it (status, then the event through UP sourcing).
  const row = await waitApplied(fleet, "d1", "app.threshold", 42, 15_000);
  const nc = await fleet.hubConnection();
  await waitFor(async () => (await configEvents(nc, "d1")).some((e) => e.revision === row.renderedRevision && e.status === "applied"), {
    timeoutMs: 20_000,
    intervalMs: 500,
    what: "applied event for the new revision upstream",
  });
  process.stdout.write(`# applied ${appliedMs} ms after the link came back\n`);
});

test("boot without the hub: the agent re-applies the config it persisted in LMDB", async () => {
  await cliOk(fleet, ["config", "set", "app.mode", "night", "--device", "d1"]);
  await waitApplied(fleet, "d1", "app.mode", "night");
  const d1 = fleet.agent("d1");
  await d1.proc.stop();
  d1.link.cut();
  const appFile = join(d1.dataDir, "app-config.json");
  await rm(appFile);
  await fleet.startAgent("d1", { enroll: false, groups: ["lab"] });
  const file = await waitFor(
    async () => JSON.parse(await readFile(appFile, "utf8")) as { config: Record<string, unknown> },
    { timeoutMs: 10_000, intervalMs: 100, what: "app-config.json rewritten from LMDB" },
  );
  assert.equal(file.config["app.mode"], "night");
  assert.equal(file.config["app.threshold"], 42);
  d1.link.restore();
  await waitApplied(fleet, "d1", "app.mode", "night", 20_000);
});
