#!/usr/bin/env node
// Runs every compiled test file with node's built-in runner. Unit tests live beside the code
// (<pkg>/dist/**/*.test.js), cross-process tests in test/dist/. Pass a substring to run a subset.
import { readdirSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const packages = ["protocol", "agent", "gateway", "firmware-bridge", "test"];
const filters = process.argv.slice(2);

function walk(dir, out) {
  let entries;
  try { entries = readdirSync(dir); } catch { return out; }
  for (const e of entries) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (e.endsWith(".test.js")) out.push(p);
  }
  return out;
}

const files = packages
  .flatMap((p) => walk(join(root, p, "dist"), []))
  .filter((f) => filters.length === 0 || filters.some((s) => relative(root, f).includes(s)))
  .sort();
if (files.length === 0) {
  console.error("no test files found: run `npm run build` first");
  process.exit(1);
}
const concurrency = process.env.CANOPY_TEST_CONCURRENCY ?? "2";
const child = spawn(
  process.execPath,
  ["--test", `--test-concurrency=${concurrency}`, "--test-timeout=300000", ...files],
  { stdio: "inherit", cwd: root },
);
child.on("exit", (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
