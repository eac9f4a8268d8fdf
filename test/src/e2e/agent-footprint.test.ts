import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { waitFor, type CommandRecord } from "@canopy/protocol";
import { Fleet, json } from "../harness/index.js";

// Issue 15, device footprint: an idle agent must not load what only a query, a command or a flag
// needs. A preload records every module the agent process loads (ESM through a loader `load` hook,
// so `import.meta.resolve` alone does not count; CJS through require), one `<pid> <URL or id>` line
// each; the agent's own pid picks its lines out (its static-facts child inherits the preload).

/** Modules an idle agent must leave alone, with the user action that loads each. */
const LAZY = ["@marcbachmann/cel-js", "systeminformation", "prom-client", "node-wifi", "@nats-io/obj", "agent/dist/sim/fleet.js"];

const HOOKS = `import { appendFileSync } from "node:fs";
export async function load(url, ctx, next) {
  appendFileSync(process.env.CANOPY_MODULE_LOG, process.pid + " " + url + "\\n");
  return next(url, ctx);
}`;
const PRELOAD = (hooks: string): string => `import { register, default as Module } from "node:module";
import { appendFileSync } from "node:fs";
register(${JSON.stringify(hooks)});
const load = Module.prototype.require;
Module.prototype.require = function (id) {
  appendFileSync(process.env.CANOPY_MODULE_LOG, process.pid + " " + id + "\\n");
  return load.apply(this, arguments);
};`;

let fleet: Fleet;
let dir: string;
let log: string;
let pid: number;

/** Of LAZY, the ones the agent process has loaded so far. */
async function loaded(): Promise<string[]> {
  const lines = (await readFile(log, "utf8")).split("\n").filter((l) => l.startsWith(`${pid} `));
  return LAZY.filter((m) => lines.some((l) => l.includes(m)));
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "canopy-footprint-"));
  log = join(dir, "modules.log");
  const hooks = join(dir, "hooks.mjs");
  const preload = join(dir, "preload.mjs");
  await writeFile(hooks, HOOKS);
  await writeFile(preload, PRELOAD(pathToFileURL(hooks).href));
  await writeFile(log, "");
  fleet = await Fleet.start();
  const agent = await fleet.startAgent("f1", {
    env: { CANOPY_MODULE_LOG: log, NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ""} --import ${pathToFileURL(preload).href}`.trim() },
  });
  pid = agent.proc.pid as number;
});
after(async () => {
  await fleet?.stop();
  await rm(dir, { recursive: true, force: true });
});

test("an idle agent (online, facts reported) has loaded none of CEL, systeminformation, prom-client, node-wifi, the object store, the simulator", async () => {
  interface Row { id: string; online: boolean; status: { facts?: { os?: { platform?: string; distro?: string }; cpu?: { cores?: number; model?: string }; mem?: { total?: number } } } | null }
  const [row] = await waitFor(
    async () => {
      const list = json<Row[]>(await fleet.cli(["devices", "--json"]));
      return list.length === 1 && list[0]?.online && list[0].status?.facts?.mem?.total ? list : undefined;
    },
    { timeoutMs: 30_000, intervalMs: 300, what: "f1 online with its facts" },
  );
  // Facts still come whole: the static ones from the systeminformation child, the rest from /proc.
  const facts = row?.status?.facts;
  assert.equal(facts?.os?.platform, "linux");
  assert.ok(facts?.os?.distro, JSON.stringify(facts));
  assert.ok((facts?.cpu?.cores ?? 0) >= 1 && facts?.cpu?.model, JSON.stringify(facts));

  const lines = (await readFile(log, "utf8")).split("\n").filter((l) => l.startsWith(`${pid} `));
  // The recorder works: the agent's eager dependencies are in it.
  for (const m of ["@nats-io/transport-node", "lmdb", "agent/dist/main.js"]) assert.ok(lines.some((l) => l.includes(m)), `${m} not recorded`);
  assert.deepEqual(await loaded(), []);
});

test("the first query loads CEL and matches; sysinfo loads systeminformation and succeeds", async () => {
  const q = await fleet.cli(["query", 'os.platform == "linux" && cpu.cores >= 1', "--timeout", "20s", "--json"]);
  assert.equal(q.code, 0, q.stderr);
  const answer = json<{ summary: { answered: number; matched: number } }>(q);
  assert.deepEqual([answer.summary.answered, answer.summary.matched], [1, 1]);
  assert.deepEqual(await loaded(), ["@marcbachmann/cel-js"]);

  const r = await fleet.cli(["cmd", "send", "--device", "f1", "sysinfo", "--wait", "--timeout", "60s", "--json"], 90_000);
  const records = json<CommandRecord[]>(r);
  assert.equal(records.length, 1);
  assert.equal(records[0]?.state, "succeeded", JSON.stringify(records[0]));
  assert.equal((records[0]?.result as { os?: { platform?: string } }).os?.platform, "linux");
  assert.deepEqual(await loaded(), ["@marcbachmann/cel-js", "systeminformation"]);
});
