#!/usr/bin/env node
// Memory footprint of an idle device: RSS of `canopy agent` and of its leaf nats-server after
// CANOPY_BENCH_SECONDS (default 60) idle, against a bare `node -e 'setInterval(()=>{},1e3)'`
// started at the same moment (same machine, same run: the ratio is what to compare).
import { spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import { Fleet, natsServerChild } from "@canopy/test/harness/index";
import { emit, figure } from "./lib/report.mjs";

const seconds = Number(process.env.CANOPY_BENCH_SECONDS ?? 60);
const rssKiB = async (pid) => Number(/VmRSS:\s+(\d+)/.exec(await readFile(`/proc/${pid}/status`, "utf8"))?.[1] ?? NaN);

const fleet = await Fleet.start();
const bare = spawn(process.execPath, ["-e", "setInterval(()=>{},1e3)"], { stdio: "ignore" });
try {
  const agent = await fleet.startAgent("footprint", { heartbeat: "5s" });
  const leafPid = await natsServerChild(agent.proc.pid);
  console.log(`idle for ${seconds} s...`);
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const a = await rssKiB(agent.proc.pid);
  const l = leafPid ? await rssKiB(leafPid) : NaN;
  const b = await rssKiB(bare.pid);
  const mib = (k) => (k / 1024).toFixed(1);
  console.log(`agent (node)          RSS ${mib(a)} MiB   ratio to bare node ${(a / b).toFixed(2)}`);
  console.log(`leaf nats-server      RSS ${mib(l)} MiB`);
  console.log(`bare node baseline    RSS ${mib(b)} MiB`);
  console.log(`device total          RSS ${mib(a + l)} MiB   ratio to bare node ${((a + l) / b).toFixed(2)}`);
  emit("footprint", [
    figure({ name: "agent (+ bridge) RSS vs bare node", value: a / 1024, unit: "MiB", baseline: b / 1024, goal: 1.5, better: "lower" }),
    figure({ name: "leaf nats-server RSS", value: l / 1024, unit: "MiB", goal: 25, better: "lower" }),
  ], { idleSeconds: seconds });
} finally {
  bare.kill("SIGKILL");
  await fleet.stop();
}
