import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { isTerminal, waitFor, type CommandRecord } from "@canopy/protocol";
import { CommandSender } from "@canopy/gateway/commands/index";
import { Fleet, freePort, json } from "../harness/index.js";
import { CmdTool, TEST_HANDLERS, fileLines } from "../e2e/cmd-helpers.js";
import { cliOk, configEvents, waitApplied } from "../e2e/config-helpers.js";
import { FAULTS, inject, type AgentSpec } from "./matrix.js";

/**
 * Fault matrix, control rows: each part SIGKILLed in the middle of a 3-wave config rollout AND a
 * command fan-out (PER_DEVICE commands to each of 3 devices) at once. The kill hits the hub, or the
 * device of wave 2 (its leaf, agent or bridge) while wave 1 soaks. The rollout must complete with each
 * device applying the revision exactly once; every command must end in a terminal state, none run
 * twice (each appends its own line to its device's file: a line twice would be a second run).
 */
const DEVICES = ["m1", "m2", "m3"];
const TARGET = "m2";
const PER_DEVICE = 16;

interface RolloutJson {
  id: string;
  state: string;
  reason?: string;
  waves: Array<{ devices: string[]; passedAt?: number; soakedAt?: number }>;
}

let fleet: Fleet;
let cmd: CmdTool;
let spec: AgentSpec;

before(async () => {
  fleet = await Fleet.start();
  cmd = await CmdTool.open(fleet);
  // Heartbeat 2 s: silent = 6 s without a report. An agent restarting on this loaded 2-core box has
  // gone 3-4 s between its first reports, which a 1 s heartbeat's 3 s limit counts as going silent.
  const base = { groups: ["ctl"], env: TEST_HANDLERS, heartbeat: "2s" };
  spec = { ...base, args: ["--bridge-mqtt", `127.0.0.1:${await freePort()}`, "--bridge-mqtt-anonymous"] };
  await Promise.all(DEVICES.map((d) => fleet.startAgent(d, d === TARGET ? spec : base)));
});
after(async () => {
  await fleet?.stop();
});

const file = (fault: string, d: string): string => join(fleet.dir.path, `cmds-${fault}-${d}.txt`);

for (const fault of FAULTS) {
  test(`${fault} SIGKILLed mid config rollout + command fan-out (${DEVICES.length}×${PER_DEVICE}): rollout completes, each revision applied once; every command terminal, none run twice`, async (t) => {
    const key = `app.${fault}`;
    const started = JSON.parse(await cliOk(fleet, ["config", "rollout", key, "on", "--group", "ctl", "--waves", "33%,66%,100%", "--soak", "2s", "--json"])) as RolloutJson;
    assert.deepEqual(started.waves.map((w) => w.devices), DEVICES.map((d) => [d]));
    const status = async (): Promise<RolloutJson> => json<RolloutJson>(await fleet.cli(["rollout", "status", started.id, "--json"]));
    await waitFor(async () => (await status()).waves[0]?.passedAt !== undefined, { timeoutMs: 60_000, intervalMs: 250, what: "wave 1 applied" });
    // The fan-out starts as wave 1 soaks: 500 ms per command keeps each device busy ~8 s.
    const sender = await CommandSender.open(await fleet.hubConnection());
    const sent: CommandRecord[] = [];
    for (let i = 0; i < PER_DEVICE; i++) {
      for (const d of DEVICES) sent.push(await sender.send({ device: d, name: "test.append", args: { file: file(fault, d), line: `${fault}-${i}`, holdMs: 500 } }));
    }
    const runs = async (): Promise<number> => (await Promise.all(DEVICES.map((d) => fileLines(file(fault, d))))).flat().length;
    let linesAtKill = 0;
    await waitFor(async () => (linesAtKill = await runs()) >= sent.length / 4, { timeoutMs: 60_000, intervalMs: 100, what: "a quarter of the commands run" });
    const stateAtKill = (await status()).waves.map((w) => (w.soakedAt ? "soaked" : w.passedAt ? "soaking" : "-")).join(",");
    const downMs = await inject(fleet, fault === "hub" ? DEVICES[0] as string : TARGET, fault, spec);

    const done = await waitFor(async () => {
      const r = await status().catch(() => undefined);
      assert.notEqual(r?.state, "halted", r?.reason);
      return r?.state === "completed" ? r : undefined;
    }, { timeoutMs: 120_000, intervalMs: 500, what: "rollout completed" });
    assert.ok(done.waves.every((w) => w.passedAt !== undefined && w.soakedAt !== undefined));
    const hub = await fleet.hubConnection();
    let applies = 0;
    for (const d of DEVICES) {
      const row = await waitApplied(fleet, d, key, "on", 30_000);
      const evs = await waitFor(async () => {
        const e = (await configEvents(hub, d)).filter((x) => x.key === key);
        return e.length > 0 ? e : undefined;
      }, { timeoutMs: 30_000, intervalMs: 500, what: `${d} ${key} event` });
      assert.deepEqual(evs.map((e) => e.revision), [row.renderedRevision], `${d}: the revision applied and reported once`);
      applies += evs.length;
    }

    const records = await Promise.all(sent.map((c) => cmd.terminal(c.id, 120_000)));
    const states: Record<string, number> = {};
    for (const r of records) states[r.state] = (states[r.state] ?? 0) + 1;
    let twice = 0;
    let ranLines = 0;
    for (const d of DEVICES) {
      const lines = await fileLines(file(fault, d));
      ranLines += lines.length;
      twice += lines.length - new Set(lines).size;
      for (const r of records.filter((x) => x.device === d)) {
        const line = (r.args as { line: string }).line;
        const n = lines.filter((l) => l === line).length;
        if (r.state === "succeeded") assert.equal(n, 1, `${d} ${line} succeeded: ran once`);
        else assert.ok(n <= 1, `${d} ${line} ${r.state}: ran at most once`);
      }
    }
    t.diagnostic(`${fault}: rollout ${DEVICES.length} devices, ${applies} applies (1 each); commands sent ${sent.length}, ${linesAtKill} run at the kill (waves ${stateAtKill}), terminal ${records.length} ${JSON.stringify(states)}, runs ${ranLines}, run twice ${twice}; back after ${downMs} ms`);
    assert.equal(records.length, sent.length);
    assert.ok(records.every((r) => isTerminal(r.state)));
    assert.equal(twice, 0);
    assert.deepEqual(Object.keys(states).filter((s) => s !== "succeeded" && s !== "interrupted"), [], JSON.stringify(states));
    assert.ok((states["interrupted"] ?? 0) <= (fault === "agent" ? 1 : 0), `only a command running at an agent kill may be interrupted: ${JSON.stringify(states)}`);
  });
}
