import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { test, after, before } from "node:test";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import assert from "node:assert/strict";
import fc from "fast-check";
import { CanopyError, encode, validateSetting, parseConfigValue } from "@canopy/protocol";
import { compileQuery } from "@canopy/gateway/query/compile";
import { QueryCompiler } from "@canopy/agent/query/cel";
import { QueryResponder } from "@canopy/agent/query/responder";
import { simProfile } from "@canopy/agent/sim/facts";
import { Fleet } from "../harness/index.js";
import { celExpression, configKey, configValue } from "./door-inputs.js";

/**
 * Bad input at every door, generated (fast-check, ≥ 10,000 each): config values, CEL expressions and
 * CLI argument vectors. Nothing may crash or hang, every refusal is counted and says why, accepted
 * input behaves, and the heap stays bounded. The CLI runs in this process against a real hub, so a
 * usage error that slipped through to the network would show as a write the test can count.
 */
const RUNS = 10_000;
// A full GC before each heap reading, also when the runner did not pass --expose-gc.
setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;
const heapMiB = (): number => {
  gc();
  return process.memoryUsage().heapUsed / 2 ** 20;
};

let fleet: Fleet;
before(async () => {
  fleet = await Fleet.start();
});
after(async () => {
  await fleet?.stop();
});

test("10,000 generated config settings: each accepted or refused with its key and a rule, nothing throws, the heap stays bounded", async (t) => {
  const counts = { accepted: 0, refused: 0 };
  const start = heapMiB();
  fc.assert(
    fc.property(configKey, configValue, fc.string({ maxLength: 64 }), (key, value, text) => {
      const r = validateSetting(key, value);
      if (r.ok) counts.accepted++;
      else {
        counts.refused++;
        assert.ok(r.error.startsWith(`${key}: `) && r.error.length > key.length + 4, `refusal without a reason: ${r.error}`);
        assert.ok(r.error.length < 1_000, `a refusal echoes the input: ${r.error.length} chars`);
      }
      // The CLI's value parser: what does not parse as JSON is the literal string, never an exception.
      const parsed = parseConfigValue(text);
      assert.ok(parsed !== undefined);
    }),
    { numRuns: RUNS },
  );
  const grew = heapMiB() - start;
  t.diagnostic(`config: ${JSON.stringify(counts)}, heap ${grew >= 0 ? "+" : ""}${grew.toFixed(1)} MiB`);
  assert.equal(counts.accepted + counts.refused, RUNS);
  assert.ok(counts.refused > RUNS / 10 && counts.accepted > RUNS / 10, `both outcomes exercised: ${JSON.stringify(counts)}`);
  assert.ok(grew < 64, `heap grew ${grew.toFixed(1)} MiB`);
});

test("10,000 generated CEL expressions: the gateway compiles or refuses with a usage error; the agent answers every one, never throws, each within 250 ms", async (t) => {
  const agentCompiler = new QueryCompiler();
  const profile = simProfile("fz1", 1, 7, ["lab"], "0.1.0");
  const responder = new QueryResponder("fz1", () => profile.facts, agentCompiler);
  const counts = { compiled: 0, refused: 0, matched: 0, evalErrors: 0, agentRefused: 0 };
  const byCode = new Map<string, number>();
  let slowest = 0;
  let n = 0;
  const start = heapMiB();
  await fc.assert(
    fc.asyncProperty(celExpression, async (expr) => {
      let accepted = false;
      try {
        compileQuery(expr);
        accepted = true;
        counts.compiled++;
      } catch (err) {
        assert.ok(err instanceof CanopyError && err.isUsage, `not a usage error: ${String(err)}`);
        counts.refused++;
        const code = (err as { celCode?: string }).celCode ?? "?";
        byCode.set(code, (byCode.get(code) ?? 0) + 1);
      }
      const t0 = performance.now();
      const reply = await responder.reply(encode({ id: `q${++n}`, expr, explain: true, fields: [], facts: false }));
      slowest = Math.max(slowest, performance.now() - t0);
      if (reply.matched) counts.matched++;
      if (reply.error) {
        if (accepted) counts.evalErrors++;
        else counts.agentRefused++;
      }
      // What the gateway refused never matches on a device (it would never be sent; if it were, no-op).
      if (!accepted) assert.equal(reply.matched, false, `refused at the door but matched on the agent: ${expr}`);
    }),
    { numRuns: RUNS },
  );
  const grew = heapMiB() - start;
  t.diagnostic(`cel: ${JSON.stringify(counts)}, refusals by code ${JSON.stringify(Object.fromEntries(byCode))}, slowest answer ${slowest.toFixed(1)} ms, heap ${grew >= 0 ? "+" : ""}${grew.toFixed(1)} MiB`);
  assert.equal(counts.compiled + counts.refused, RUNS);
  assert.ok(counts.compiled > RUNS / 10 && counts.refused > RUNS / 10, `both outcomes exercised: ${JSON.stringify(counts)}`);
  assert.ok((byCode.get("unsafe_regex") ?? 0) > 0, "the catastrophic-regex family was generated and refused");
  assert.ok(slowest < 250, `an answer took ${slowest.toFixed(0)} ms`);
  assert.ok(grew < 64, `heap grew ${grew.toFixed(1)} MiB`);
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
