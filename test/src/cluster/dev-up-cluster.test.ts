import { test, after } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { readFile } from "node:fs/promises";
import { connect, credsAuthenticator, type NatsConnection } from "@nats-io/transport-node";
import { Subjects } from "@canopy/protocol";
import { jetstreamManager } from "@nats-io/jetstream";
import { CanopyProcess, runCanopy, tempDir, type TempDir } from "../harness/index.js";
import { devicesOnline } from "./hub-cluster.js";

let dir: TempDir | undefined;
let demo: CanopyProcess | undefined;
let nc: NatsConnection | undefined;
after(async () => {
  await nc?.close();
  await demo?.stop();
  await dir?.remove();
});

test("canopy dev up --hub-nodes 3: a 3-node hub cluster, streams at 3 replicas, devices online; bad --hub-nodes → exit 2", async () => {
  const bad = await runCanopy(["dev", "up", "--hub-nodes", "2"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--hub-nodes must be 1 or 3/);

  dir = await tempDir();
  demo = new CanopyProcess(["dev", "up", "--devices", "2", "--hub-nodes", "3", "--data", join(dir.path, "demo"), "--free-ports"]);
  await demo.waitForOutput(/Canopy demo is up/, 90_000);
  const line = await demo.waitForOutput(/export CANOPY_SERVER=/);
  const server = /CANOPY_SERVER=(\S+)/.exec(line)?.[1] ?? "";
  const creds = /CANOPY_CREDS=(\S+)/.exec(line)?.[1] ?? "";
  assert.equal(server.split(",").length, 3, server);
  const env = { CANOPY_SERVER: server, CANOPY_CREDS: creds };
  await devicesOnline(env, ["dev-1", "dev-2"], 45_000);
  nc = await connect({ servers: server.split(","), authenticator: credsAuthenticator(await readFile(creds)), inboxPrefix: Subjects.hubInboxPrefix });
  const jsm = await jetstreamManager(nc);
  const streams: string[] = [];
  for await (const si of jsm.streams.list()) {
    assert.equal(si.config.num_replicas, 3, si.config.name);
    streams.push(si.config.name);
  }
  assert.ok(streams.includes("FLEET_UP_0") && streams.includes("KV_cfg"), streams.join(","));
  await nc.close();
  demo.killGroup("SIGINT");
  assert.equal(await demo.exited, 0);
});
