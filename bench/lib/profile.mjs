// `CANOPY_BENCH_PROFILE=<dir>`: the Canopy daemons a bench starts run under `node --cpu-prof`, and
// their .cpuprofile files land in <dir> when they stop (open them in Chrome DevTools or speedscope).
import { spawn } from "node:child_process";
import { CanopyProcess, CANOPY_BIN } from "@canopy/test/harness/index";

const profileDir = process.env.CANOPY_BENCH_PROFILE;

/** A long-running `canopy …` process: the harness's CanopyProcess, or a profiled stand-in. */
export function startCanopy(args) {
  if (!profileDir) return new CanopyProcess(args);
  const child = spawn(process.execPath, ["--cpu-prof", `--cpu-prof-dir=${profileDir}`, CANOPY_BIN, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  const output = [];
  const onData = (d) => {
    output.push(...d.toString().split("\n").filter(Boolean));
    if (output.length > 2000) output.splice(0, output.length - 2000);
    if (process.env.CANOPY_BENCH_VERBOSE) process.stderr.write(d);
  };
  child.stdout.on("data", onData);
  child.stderr.on("data", onData);
  const exited = new Promise((resolve) => child.once("exit", (code) => resolve(code)));
  return {
    pid: child.pid,
    output,
    exited,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGTERM");
      const t = setTimeout(() => child.kill("SIGKILL"), 15_000);
      await exited;
      clearTimeout(t);
    },
  };
}
