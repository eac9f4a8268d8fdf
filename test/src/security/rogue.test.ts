import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { readFile } from "node:fs/promises";
import { connect, credsAuthenticator, type NatsConnection } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { sleep, waitFor } from "@canopy/protocol";
import { Fleet, TestServer } from "../harness/index.js";
import { RawLeaf } from "./raw-leaf.js";
import { hubLeafNames, leafAuthFromBundle, readBundle } from "./support.js";

// Device A turned rogue: its own credentials in a hand-started nats-server leaf (honest software,
// hostile operator) and in a raw leaf-protocol client (nothing filters what it sends). Every attempt on
// device B or on the hub's assets is checked at the hub side.

let fleet: Fleet;
let hub: NatsConnection;
let rogue: TestServer;
let rogueNc: NatsConnection;
let raw: RawLeaf;
let rawAuth: { creds: string; ca: string; cert: string; key: string };
/** Permission errors the hub sent to raw leaf connections (each violation may close the link). */
const violations: string[] = [];

/** The raw leaf, reconnected when the hub closed it after a violation: every attempt gets a live link. */
async function rawLeaf(): Promise<RawLeaf> {
  if (raw.closed) {
    violations.push(...raw.errors);
    raw = await RawLeaf.connect(fleet.hub.leafPort, rawAuth);
  }
  return raw;
}

before(async () => {
  fleet = await Fleet.start();
  await fleet.enroll("A");
  await fleet.startAgent("B");
  hub = await fleet.hubConnection();
  const a = await readBundle(fleet, "A");
  rogue = await TestServer.leaf(join(fleet.dir.path, "rogue"), "A", fleet.hub.leafPort, await leafAuthFromBundle(a, join(fleet.dir.path, "rogue-auth")));
  await waitFor(async () => (await hubLeafNames(fleet)).includes("A"), { timeoutMs: 20_000, what: "the rogue leaf A connected" });
  rogueNc = await connect({ servers: rogue.url, inboxPrefix: "_INBOX.A" });
  rawAuth = { creds: a.creds, ca: a.ca ?? "", cert: a.cert ?? "", key: a.key ?? "" };
  raw = await RawLeaf.connect(fleet.hub.leafPort, rawAuth);
  assert.equal(raw.closed, false, `raw leaf refused at CONNECT: ${raw.errors.join(" ")}`);
});
after(async () => {
  raw?.close();
  await rogueNc?.close();
  await rogue?.stop();
  await fleet?.stop();
});

async function cmdCountFor(device: string): Promise<number> {
  const jsm = await jetstreamManager(hub);
  const si = await jsm.streams.info("CMD", { subjects_filter: `cmd.${device}.>` });
  return Object.values(si.state.subjects ?? {}).reduce((a, b) => a + b, 0);
}

test("a plain client without credentials is refused; device credentials used as a plain client are refused", async () => {
  await assert.rejects(connect({ servers: fleet.hub.client, timeout: 5_000, maxReconnectAttempts: 0 }), /authoriz|authentic/i);
  const a = await readBundle(fleet, "A");
  await assert.rejects(
    connect({ servers: fleet.hub.client, authenticator: credsAuthenticator(new TextEncoder().encode(a.creds)), timeout: 5_000, maxReconnectAttempts: 0 }),
    /authoriz|authentic/i,
  );
  const admin = await connect({ servers: fleet.hub.client, authenticator: credsAuthenticator(await readFile(fleet.hub.creds)), timeout: 5_000 });
  await admin.close();
});

test("rogue A cannot publish into B's subjects or send commands; its own up.A.* still arrives", async () => {
  const got: string[] = [];
  const sub = hub.subscribe("up.>", { callback: (_e, m) => void got.push(m.subject) });
  await hub.flush();
  await sleep(500); // the hub's interest reaches the leaves
  rogueNc.publish("up.B.tlm.evil", "x");
  rogueNc.publish("cmd.B.reboot", "x");
  for (const subject of ["up.B.tlm.raw", "cmd.B.reboot", "cmd.A.reboot"]) {
    (await rawLeaf()).publish(subject, "x");
    await sleep(300);
  }
  rogueNc.publish("up.A.tlm.ok", "x");
  await waitFor(() => got.includes("up.A.tlm.ok"), { timeoutMs: 10_000, what: "A's own telemetry at the hub (control)" });
  await sleep(1_000);
  sub.unsubscribe();
  assert.deepEqual(got.filter((s) => s.startsWith("up.B.")), [], "nothing arrived as B");
  assert.equal(await cmdCountFor("B"), 0, "no command for B in the hub's CMD");
  assert.equal(await cmdCountFor("A"), 0, "a device cannot queue commands, not even its own");
});

test("rogue A cannot call the hub's or B's JetStream API outside its allow-list", async () => {
  const jsm = await jetstreamManager(hub);
  const attempts = [
    "$JS.hub.API.STREAM.DELETE.CMD",
    "$JS.hub.API.STREAM.DELETE.KV_cfg",
    "$JS.hub.API.STREAM.PURGE.FLEET_UP_0",
    "$JS.hub.API.STREAM.LIST",
    "$JS.hub.API.STREAM.INFO.KV_status",
    "$JS.B.API.STREAM.DELETE.UP",
  ];
  for (const subject of attempts) {
    await assert.rejects(rogueNc.request(subject, "", { timeout: 1_500 }), `${subject} answered the rogue leaf`);
    (await rawLeaf()).publish(subject, "", "_INBOX.A.raw");
    await sleep(300);
  }
  // Consumers on CMD for B's commands: outside the allowed subject, or inside it with B's filter in the body.
  const create = (name: string, filter: string): string => JSON.stringify({ stream_name: "CMD", config: { name, filter_subject: filter, deliver_subject: "dl.A.steal" } });
  (await rawLeaf()).publish("$JS.hub.API.CONSUMER.CREATE.CMD.steal1.cmd.B.>", create("steal1", "cmd.B.>"), "_INBOX.A.raw");
  await sleep(300);
  (await rawLeaf()).publish("$JS.hub.API.CONSUMER.CREATE.CMD.steal2.cmd.A.>", create("steal2", "cmd.B.>"), "_INBOX.A.raw");
  await rogueNc.request("$JS.hub.API.CONSUMER.CREATE.CMD.steal3.cmd.A.>", create("steal3", "cmd.B.>"), { timeout: 2_000 }).catch(() => null);
  await sleep(1_500);

  for (const name of ["CMD", "KV_cfg", "FLEET_UP_0", "KV_status"]) await jsm.streams.info(name); // all still there
  const consumers: string[] = [];
  for await (const ci of jsm.consumers.list("CMD")) consumers.push(`${ci.name}:${ci.config.filter_subject ?? ""}`);
  assert.deepEqual(consumers.filter((c) => c.includes("cmd.B.")), [], `consumers reading B's commands: ${consumers.join(", ")}`);
  const b = await fleet.leafConnection("B");
  await (await jetstreamManager(b)).streams.info("UP"); // B's UP survived
});

test("rogue A cannot read cmd.B.* or $KV.cfg.B.* (core subscription, raw LS+, or a mirror filtered to B)", async () => {
  const seen: string[] = [];
  for (const s of ["cmd.B.>", "$KV.cfg.B.>", "cmd.A.>"]) rogueNc.subscribe(s, { callback: (_e, m) => void seen.push(m.subject) });
  (await rawLeaf()).subscribe("cmd.B.>");
  (await rawLeaf()).subscribe("$KV.cfg.B.>");
  await rogueNc.flush();
  // The rogue leaf also tries mirrors of the hub's config KV: one filtered to B (refused), one to A (control).
  const rjsm = await jetstreamManager(rogueNc);
  const mirror = (filter: string) => ({ name: "KV_cfg", filter_subject: filter, external: { api: "$JS.hub.API", deliver: "dl.A" } });
  await rjsm.streams.add({ name: "STEAL_B", mirror: mirror("$KV.cfg.B.>") });
  await rjsm.streams.add({ name: "OWN_A", mirror: mirror("$KV.cfg.A.>") });
  await sleep(1_000);

  const kv = await new Kvm(hub).open("cfg");
  await kv.put("B.wifi.password", "secret-of-B");
  await kv.put("A.log.level", "debug");
  hub.publish("cmd.B.reboot", "x");
  hub.publish("cmd.A.ping", "x");
  await waitFor(() => seen.includes("cmd.A.ping"), { timeoutMs: 10_000, what: "A's own command subject (control)" });
  await waitFor(async () => (await rjsm.streams.info("OWN_A")).state.messages === 1, { timeoutMs: 30_000, what: "A's own config mirrored (control)" });
  await sleep(1_500);
  assert.deepEqual(seen.filter((s) => s.includes(".B.")), [], "B's commands or config reached the rogue leaf");
  assert.deepEqual(raw.received.filter((s) => s.includes(".B.")), [], "B's commands or config reached the raw leaf");
  assert.equal((await rjsm.streams.info("STEAL_B")).state.messages, 0, "a mirror filtered to B got B's config");
});

test("the hub answered the raw leaf's attempts with permission violations", async () => {
  violations.push(...raw.errors);
  assert.ok(violations.some((e) => /Permissions Violation/i.test(e)), `errors seen: ${violations.join(" | ")}`);
});

test("after all that, B is untouched: online, and its data still reaches the hub", async () => {
  await waitFor(async () => (await hubLeafNames(fleet)).includes("B"), { timeoutMs: 10_000, what: "B's link" });
  const r = await fleet.cli(["devices", "--json"]);
  const b = (JSON.parse(r.stdout) as { id: string; online: boolean }[]).find((d) => d.id === "B");
  assert.equal(b?.online, true);
});
