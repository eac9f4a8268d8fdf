import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { waitFor } from "@canopy/protocol";
import { Fleet, TestServer, freePort, runCanopy, tempDir, type RunResult, type TempDir } from "../harness/index.js";
import { HubStatusJson } from "@canopy/gateway/cli/json/schemas";

// Connection errors, --version, --help, completion and EPIPE through the real CLI.
let fleet: Fleet;
let dir: TempDir;
let bare: ChildProcess | undefined;
let bareJs: TestServer | undefined;

before(async () => {
  fleet = await Fleet.start();
  dir = await tempDir("canopy-cli-connect-");
});
after(async () => {
  bare?.kill("SIGKILL");
  await bareJs?.stop();
  await fleet?.stop();
  await dir?.remove();
});

const env = (): NodeJS.ProcessEnv => ({ XDG_CONFIG_HOME: dir.path, CANOPY_SERVER: "" });

test("--server at an HTTP port: a clear error within 6 s (beyond the CLI's own start-up time)", async () => {
  const http = fleet.hub.http.replace(/^http:/, "nats:");
  // The same CLI start-up, measured in the same run: this machine is shared, node may start slowly.
  const b0 = Date.now();
  assert.equal((await runCanopy(["devices", "--help"], { env: env() })).code, 0);
  const startup = Date.now() - b0;
  const t0 = Date.now();
  const r = await runCanopy(["devices", "--server", http], { env: env(), timeoutMs: 30_000 });
  const ms = Date.now() - t0;
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /nats:\/\/127\.0\.0\.1:\d+ \(from flag\) is not a NATS server \(it answered "HTTP\/1\.[01] \d+[^"]*"\); is it an HTTP or monitoring port\?/);
  assert.ok(ms - startup < 6_000, `error after ${ms} ms, of which start-up ${startup} ms`);
  console.log(`# --server at the HTTP port: exit 1 after ${ms} ms (CLI start-up alone: ${startup} ms)`);
});

test("NATS but not Canopy: 'not a Canopy hub', for no JetStream and for JetStream without Canopy's streams", async () => {
  const port = await freePort();
  bare = spawn("nats-server", ["-a", "127.0.0.1", "-p", String(port)], { stdio: "ignore" });
  const noJs = await waitExit(["devices", "--server", `nats://127.0.0.1:${port}`]);
  assert.equal(noJs.code, 1, noJs.stderr);
  assert.match(noJs.stderr, /is a NATS server but not a Canopy hub \(JetStream is not enabled\)/);
  bareJs = await TestServer.hub(join(dir.path, "bare-hub"));
  const r = await runCanopy(["backlog", "--server", `nats://127.0.0.1:${bareJs.ports.client}`, "--creds", bareJs.creds], { env: env() });
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /not a Canopy hub \(no Canopy streams/);
});

async function waitExit(args: string[]): Promise<RunResult> {
  // The bare server may still be starting: "cannot reach" until it listens.
  return waitFor(
    async () => {
      const r = await runCanopy(args, { env: env() });
      return /cannot reach/.test(r.stderr) ? undefined : r;
    },
    { timeoutMs: 10_000, intervalMs: 100, what: "the bare nats-server to listen" },
  );
}

test("--version for the CLI and the agent; the nats-server version in hub status", async () => {
  for (const args of [["--version"], ["-V"], ["-V", "--json"], ["agent", "--version"], ["bridge", "--version"]]) {
    const r = await runCanopy(args);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^\d+\.\d+\.\d+\n$/);
  }
  // A value that looks like the version flag is a value, not a request for the version (commander
  // reads the root's short flags anywhere: this printed the version and exited 0, having done nothing).
  const v = await runCanopy(["device", "add", "d-v", "--group", "-V."]);
  assert.equal(v.code, 2, `${v.stdout}${v.stderr}`);
  assert.equal(v.stdout, "");
  assert.match(v.stderr, /invalid group id "-V\."/);
  const s = await fleet.cli(["hub", "status", "--json"]);
  assert.equal(s.code, 0, s.stderr);
  const st = HubStatusJson.parse(JSON.parse(s.stdout));
  assert.match(st.natsServer.version, /^2\.\d+\.\d+/);
  assert.equal(st.jetstream.domain, "hub");
  assert.match((await fleet.cli(["hub", "status"])).stdout, /nats-server\s+2\.\d+/);
});

test("help everywhere: sim --help exits 0, sim alone prints help, agent without flags explains", async () => {
  const help = await runCanopy(["sim", "--help"]);
  assert.equal(help.code, 0, help.stderr);
  assert.match(help.stdout, /fleet .*\n[\s\S]*mcu /);
  const bare = await runCanopy(["sim"]);
  assert.equal(bare.code, 0);
  assert.match(bare.stdout, /Usage: canopy sim/);
  for (const sub of [["sim", "fleet", "--help"], ["sim", "mcu", "--help"], ["agent", "--help"], ["context", "--help"], ["doctor", "--help"], ["completion", "--help"]]) {
    const r = await runCanopy(sub);
    assert.equal(r.code, 0, `${sub.join(" ")}: ${r.stderr}`);
    assert.match(r.stdout, /Usage:/);
  }
  const agent = await runCanopy(["agent"]);
  assert.equal(agent.code, 2);
  assert.match(agent.stderr, /^error: missing --data DIR: an agent needs a data directory, and an enrollment .* or --device ID --hub/);
  assert.doesNotMatch(agent.stderr, /expected string|invalid_type/);
  const noDevice = await runCanopy(["agent", "--data", join(dir.path, "agent-data")]);
  assert.equal(noDevice.code, 2);
  assert.match(noDevice.stderr, /no device id: enroll with --bundle FILE or --join TOKEN \(or give --device\)/);
});

test("completion scripts for bash and zsh, with candidates from the command tree", async () => {
  const bash = await runCanopy(["completion", "bash"]);
  assert.equal(bash.code, 0);
  assert.match(bash.stdout, /complete -o default -F _canopy canopy/);
  assert.match((await runCanopy(["completion", "zsh"])).stdout, /compdef _canopy canopy/);
  assert.equal((await runCanopy(["completion", "fish"])).code, 2);
  const words = (await runCanopy(["__complete", "config"])).stdout.split("\n");
  for (const w of ["set", "show", "rollout", "--help"]) assert.ok(words.includes(w), w);
});
