import { test } from "node:test";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import assert from "node:assert/strict";
import fc from "fast-check";
import { CanopyError, encode, validateSetting, parseConfigValue } from "@canopy/protocol";
import { compileQuery } from "@canopy/gateway/query/compile";
import { QueryCompiler } from "@canopy/agent/query/cel";
import { QueryResponder } from "@canopy/agent/query/responder";
import { simProfile } from "@canopy/agent/sim/facts";
import { celExpression, configKey, configValue } from "./door-inputs.js";

/**
 * Bad input at the doors, generated (fast-check, ≥ 10,000 each): config values and CEL expressions
 * (cli-fuzz.test.ts: CLI argument vectors). Nothing may crash or hang, every refusal is counted and
 * says why, accepted input behaves, and the heap stays bounded.
 */
const RUNS = 10_000;
// A full GC before each heap reading, also when the runner did not pass --expose-gc.
setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;
const heapMiB = (): number => {
  gc();
  return process.memoryUsage().heapUsed / 2 ** 20;
};


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

test("10,000 generated CEL expressions: the gateway compiles or refuses with a usage error; the agent answers every one, never throws, none stalls it", async (t) => {
  const agentCompiler = new QueryCompiler();
  const profile = simProfile("fz1", 1, 7, ["lab"], "0.1.0");
  const responder = new QueryResponder("fz1", () => profile.facts, agentCompiler);
  const counts = { compiled: 0, refused: 0, matched: 0, evalErrors: 0, agentRefused: 0 };
  const byCode = new Map<string, number>();
  const times: number[] = [];
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
      times.push(performance.now() - t0);
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
  times.sort((a, b) => a - b);
  const slowest = times[times.length - 1] ?? 0;
  const p99 = times[Math.floor(times.length * 0.99)] ?? 0;
  t.diagnostic(`cel: ${JSON.stringify(counts)}, refusals by code ${JSON.stringify(Object.fromEntries(byCode))}, answer p99 ${p99.toFixed(1)} ms, slowest ${slowest.toFixed(1)} ms, heap ${grew >= 0 ? "+" : ""}${grew.toFixed(1)} MiB`);
  assert.equal(counts.compiled + counts.refused, RUNS);
  assert.ok(counts.compiled > RUNS / 10 && counts.refused > RUNS / 10, `both outcomes exercised: ${JSON.stringify(counts)}`);
  assert.ok((byCode.get("unsafe_regex") ?? 0) > 0, "the catastrophic-regex family was generated and refused");
  // Not a speed test: a stall is what is refused (one `^(a+)+$` used to hold every agent for ≥ 14.6 s).
  // 2 s leaves room for a loaded 2-core CI machine; the p99 is in the diagnostic above.
  assert.ok(slowest < 2_000, `an answer took ${slowest.toFixed(0)} ms`);
  assert.ok(grew < 64, `heap grew ${grew.toFixed(1)} MiB`);
});
