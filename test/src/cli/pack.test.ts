import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { readFile, readdir } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { waitFor } from "@canopy/protocol";
import { tempDir, type TempDir } from "../harness/index.js";

// One `canopy` on PATH: the root tarball from `npm pack`, installed with `npm install -g` into a clean
// prefix, runs `canopy --help` and `canopy dev up` from a directory outside the checkout, and the
// demo's printed hints work as printed.
const run = promisify(execFile);
const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
let dir: TempDir;
let demo: ChildProcess | undefined;

before(async () => {
  dir = await tempDir("canopy-pack-");
});
after(async () => {
  if (demo?.pid && demo.exitCode === null) process.kill(-demo.pid, "SIGKILL");
  await dir?.remove();
});

test("the root package's third-party dependencies cover every part's", async () => {
  const root = JSON.parse(await readFile(join(ROOT, "package.json"), "utf8")) as { dependencies: Record<string, string> };
  for (const part of ["protocol", "agent", "gateway", "firmware-bridge"]) {
    const deps = (JSON.parse(await readFile(join(ROOT, part, "package.json"), "utf8")) as { dependencies?: Record<string, string> }).dependencies ?? {};
    for (const [name, version] of Object.entries(deps)) {
      if (!name.startsWith("@canopy/")) assert.equal(root.dependencies[name], version, `${part}: ${name}`);
    }
  }
});

test("npm pack → npm install -g into a clean prefix → canopy --help, --version and dev up work from elsewhere", async () => {
  await run("npm", ["pack", "--pack-destination", dir.path], { cwd: ROOT, timeout: 180_000 });
  const tgz = (await readdir(dir.path)).find((f) => f.endsWith(".tgz"));
  assert.ok(tgz, "a tarball");
  const { stdout: listing } = await run("tar", ["-tzf", join(dir.path, tgz)]);
  for (const part of ["protocol", "agent", "gateway", "firmware-bridge"]) {
    assert.ok(listing.includes(`package/${part}/dist/cli.js`) || listing.includes(`package/${part}/dist/index.js`), `${part}/dist in the tarball`);
  }
  const prefix = join(dir.path, "prefix");
  await run("npm", ["install", "-g", "--prefix", prefix, "--prefer-offline", "--no-audit", "--no-fund", join(dir.path, tgz)], { cwd: dir.path, timeout: 300_000 });
  const env = { ...process.env, PATH: `${join(prefix, "bin")}:${process.env.PATH ?? ""}`, CANOPY_SERVER: "", XDG_CONFIG_HOME: join(dir.path, "config") };
  const help = await run("canopy", ["--help"], { cwd: dir.path, env });
  assert.match(help.stdout, /Usage: canopy/);
  assert.match((await run("canopy", ["--version"], { cwd: dir.path, env })).stdout, /^\d+\.\d+\.\d+\n$/);
  assert.match((await run("canopy", ["sim", "mcu", "--help"], { cwd: dir.path, env })).stdout, /Usage: canopy sim mcu/);

  demo = spawn("canopy", ["dev", "up", "--devices", "1", "--data", join(dir.path, "demo"), "--free-ports"], { cwd: dir.path, env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  demo.stdout?.on("data", (d: Buffer) => (out += d.toString()));
  demo.stderr?.on("data", (d: Buffer) => (out += d.toString()));
  await waitFor(() => /Canopy demo is up[\s\S]*canopy backlog/.test(out), { timeoutMs: 90_000, intervalMs: 200, what: `the installed demo to come up\n${out}` });
  // The hints as printed: absolute paths, the alias, the server, and a publish with canopy itself.
  const server = /export CANOPY_SERVER=(\S+)/.exec(out)?.[1] ?? "";
  assert.match(out, /alias canopy="\/\S+ \/\S+\/bin\/canopy\.js"/);
  assert.match(out, /data \/\S+\/demo\/devices\/dev-1/);
  const creds = /CANOPY_CREDS=(\S+)/.exec(out)?.[1];
  const hintEnv = { ...env, CANOPY_SERVER: server, ...(creds ? { CANOPY_CREDS: creds } : {}) };
  await waitFor(
    async () => {
      const r = await run("canopy", ["pub", "--device", "dev-1", "tlm.temp", "21.5", "--json"], { cwd: "/", env: hintEnv }).catch(() => undefined);
      return r && (JSON.parse(r.stdout) as { stream: string }).stream === "UP";
    },
    { timeoutMs: 30_000, intervalMs: 500, what: "canopy pub --device dev-1 tlm.temp 21.5 (the printed hint)" },
  );
  const devices = JSON.parse((await run("canopy", ["devices", "--json"], { cwd: "/", env: hintEnv })).stdout) as Array<{ device: string }>;
  assert.deepEqual(devices.map((d) => d.device), ["dev-1"]);
  process.kill(-(demo.pid ?? 0), "SIGINT");
  const code = await new Promise<number | null>((resolve) => demo?.once("exit", resolve));
  assert.equal(code, 0, out.slice(-2000));
});
