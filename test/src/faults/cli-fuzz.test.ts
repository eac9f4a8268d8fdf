import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import { Fleet } from "../harness/index.js";

/**
 * Bad input at the CLI's door, generated: 10,000 argument vectors (door-inputs.ts) run through the
 * real `canopy` code against a real hub, in a worker process (cli-fuzz-worker.ts: the CLI writes to
 * stdout, which the test runner uses). A usage error that slipped through to the network would show
 * as a write the test counts (devices in the registry = adds that exited 0).
 */
const RUNS = 10_000;

let fleet: Fleet;
before(async () => {
  fleet = await Fleet.start();
});
after(async () => {
  await fleet?.stop();
});

test("10,000 generated CLI argument vectors against a real hub: exit 0, 1 or 2 only, every refusal says why, no stack traces; devices added = successful adds", async (t) => {
  const resultFile = join(fleet.dir.path, "cli-fuzz.json");
  const worker = fileURLToPath(new URL("./cli-fuzz-worker.js", import.meta.url));
  // Async: this process relays the hub's output meanwhile (a blocked pipe would stall the hub).
  await promisify(execFile)(process.execPath, ["--expose-gc", worker, resultFile, String(RUNS)], { env: { ...process.env, ...fleet.env }, timeout: 240_000 });
  const r = JSON.parse(readFileSync(resultFile, "utf8")) as { runs: number; codes: Record<string, number>; added: string[]; heapGrowth: number; failure?: string; runtimeFailures: Record<string, number> };
  const grew = r.heapGrowth / 2 ** 20;
  t.diagnostic(`cli: exit codes ${JSON.stringify(r.codes)}, devices added ${r.added.length}, exit-1 causes ${JSON.stringify(r.runtimeFailures)}, heap ${grew >= 0 ? "+" : ""}${grew.toFixed(1)} MiB`);
  assert.equal(r.failure, undefined);
  assert.equal(r.runs, RUNS);
  assert.equal(Object.values(r.codes).reduce((a, b) => a + b, 0), RUNS);
  assert.ok((r.codes["2"] ?? 0) > RUNS / 2, `most generated vectors are usage errors: ${JSON.stringify(r.codes)}`);
  assert.ok((r.codes["0"] ?? 0) > 0, "some generated vectors were valid and succeeded");
  const listed = JSON.parse((await fleet.cli(["devices", "--json"])).stdout) as Array<{ id: string }>;
  assert.deepEqual(listed.map((d) => d.id).sort(), [...r.added].sort(), "the registry holds exactly the devices whose add exited 0");
  assert.ok(grew < 64, `heap grew ${grew.toFixed(1)} MiB after warm-up`);
});
