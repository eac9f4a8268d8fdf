import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { Fleet, runCanopy, tempDir, type RunResult, type TempDir } from "../harness/index.js";

// Contexts through the real CLI, with XDG_CONFIG_HOME in a temp dir and no CANOPY_SERVER.
let fleet: Fleet;
let home: TempDir;

before(async () => {
  fleet = await Fleet.start();
  home = await tempDir("canopy-ctx-");
});
after(async () => {
  await fleet?.stop();
  await home?.remove();
});

function canopy(args: string[], env: NodeJS.ProcessEnv = {}): Promise<RunResult> {
  return runCanopy(args, { env: { XDG_CONFIG_HOME: home.path, CANOPY_SERVER: "", CANOPY_CONTEXT: "", CANOPY_CREDS: "", ...env } });
}

test("context add/select, then commands without --server use it; --context and CANOPY_CONTEXT pick another", async () => {
  const add = await canopy(["context", "add", "lab", "--server", fleet.hub.client, "--creds", fleet.hub.creds, "--description", "the test hub", "--select", "--json"]);
  assert.equal(add.code, 0, add.stderr);
  assert.deepEqual(JSON.parse(add.stdout), { name: "lab", selected: true, server: fleet.hub.client, creds: fleet.hub.creds, description: "the test hub" });
  // The file format shared with `hub start` / `dev up`.
  const file = JSON.parse(await readFile(join(home.path, "canopy", "contexts", "lab.json"), "utf8")) as { server: string };
  assert.equal(file.server, fleet.hub.client);
  assert.equal((await readFile(join(home.path, "canopy", "context"), "utf8")).trim(), "lab");

  const devices = await canopy(["devices", "--json"]);
  assert.equal(devices.code, 0, devices.stderr);
  assert.deepEqual(JSON.parse(devices.stdout), []);

  assert.equal((await canopy(["context", "add", "dead", "--server", "nats://127.0.0.1:1"])).code, 0);
  const ls = JSON.parse((await canopy(["context", "ls", "--json"])).stdout) as Array<{ name: string; selected: boolean }>;
  assert.deepEqual(ls.map((c) => [c.name, c.selected]), [["dead", false], ["lab", true]]);
  const human = await canopy(["context", "ls"]);
  assert.match(human.stdout, /\* lab\s+nats:\/\/127\.0\.0\.1:\d+/);

  for (const [args, env] of [[["--context", "dead", "devices"], {}], [["devices"], { CANOPY_CONTEXT: "dead" }]] as const) {
    const r = await canopy([...args], env);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /cannot reach the hub at nats:\/\/127\.0\.0\.1:1/);
  }
  // Flags beat the context; the environment's server beats a selected (not a named) context.
  assert.equal((await canopy(["--context", "dead", "--server", fleet.hub.client, "--creds", fleet.hub.creds, "devices"])).code, 0);
  const shown = JSON.parse((await canopy(["context", "show", "--json"], { CANOPY_SERVER: "nats://10.9.9.9:4222" })).stdout) as { server: string; from: string };
  assert.deepEqual([shown.server, shown.from], ["nats://10.9.9.9:4222", "env"]);
  const named = JSON.parse((await canopy(["--context", "dead", "context", "show", "--json"], { CANOPY_SERVER: "nats://10.9.9.9:4222" })).stdout) as { server: string; from: string; context: string };
  assert.deepEqual([named.server, named.from, named.context], ["nats://127.0.0.1:1", "context", "dead"]);
});

test("context errors: unknown name exits 1, a bad URL or name exits 2; rm unselects", async () => {
  const missing = await canopy(["--context", "nope", "devices"]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /no context "nope"/);
  const badUrl = await canopy(["context", "add", "x", "--server", "http://example.com"]);
  assert.equal(badUrl.code, 2);
  assert.match(badUrl.stderr, /must be a nats:\/\/ or tls:\/\/ URL/);
  assert.equal((await canopy(["context", "add", "a.b", "--server", "nats://h:1"])).code, 2);
  const rm = await canopy(["context", "rm", "lab", "--json"]);
  assert.equal(rm.code, 0, rm.stderr);
  assert.equal((JSON.parse(rm.stdout) as { removed: boolean }).removed, true);
  const after = JSON.parse((await canopy(["context", "show", "--json"])).stdout) as { from: string };
  assert.equal(after.from, "default");
  assert.equal((await canopy(["context", "rm", "lab"])).code, 1);
});
