import { writeFileSync } from "node:fs";
import assert from "node:assert/strict";
import fc from "fast-check";
import { main } from "@canopy/gateway/cli";
import { cliVector } from "./door-inputs.js";

/**
 * Runs `canopy` (the gateway's CLI `main`) in this process on generated argument vectors against the
 * hub named by CANOPY_SERVER/CANOPY_CREDS, and writes a summary to the file named by argv[2]. Its own
 * process, because the CLI writes to stdout, which the test runner uses for its reports.
 * Usage: node cli-fuzz-worker.js RESULT.json RUNS
 */
const [resultFile, runsArg] = process.argv.slice(2);
const runs = Number(runsArg ?? 10_000);
const codes: Record<string, number> = {};
const added = new Set<string>();
/** Runtime failures (exit 1) by message, to see which valid-looking inputs failed and why. */
const failures = new Map<string, number>();
let err = "";
process.stdout.write = (() => true) as typeof process.stdout.write;
process.stderr.write = ((s: string | Uint8Array) => ((err += String(s)), true)) as typeof process.stderr.write;
const gc = (globalThis as { gc?: () => void }).gc;
const heap = (): number => (gc?.(), process.memoryUsage().heapUsed);
let heapStart = 0;
let n = 0;
let failure: string | undefined;
try {
  await fc.assert(
    fc.asyncProperty(cliVector, async (argv) => {
      if (++n === 500) heapStart = heap(); // after warm-up (every command's module loaded once)
      err = "";
      process.exitCode = undefined;
      const code = await main(argv);
      process.exitCode = undefined;
      codes[code] = (codes[code] ?? 0) + 1;
      assert.ok(code === 0 || code === 1 || code === 2, `exit ${code}`);
      if (code !== 0) assert.ok(err.trim().length > 0, `exit ${code} without a message`);
      assert.doesNotMatch(err, /\n\s+at .+:\d+:\d+\)?\n|ZodError|TypeError: Cannot/, `a library error leaked: ${err.slice(0, 400)}`);
      if (code === 0 && argv[0] === "device" && argv[1] === "add") added.add(argv[2] as string);
      if (code === 1) {
        const line = `${argv.slice(0, 2).join(" ")}: ${(err.split("\n")[0] ?? "").replace(/"[^"]*"|\b[\w-]*\d[\w-]*\b/g, "…").slice(0, 120)}`;
        failures.set(line, (failures.get(line) ?? 0) + 1);
      }
    }),
    { numRuns: runs },
  );
} catch (e) {
  failure = (e as Error).message.slice(0, 4_000);
}
writeFileSync(resultFile as string, JSON.stringify({ runs: n, codes, added: [...added], heapGrowth: heap() - heapStart, failure, runtimeFailures: Object.fromEntries([...failures].sort((a, b) => b[1] - a[1]).slice(0, 12)) }));
process.exit(0);
