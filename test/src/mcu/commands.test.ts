import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import { ErrorCode, isTerminal, waitFor, type CommandRecord } from "@canopy/protocol";
import { CanopyProcess, Fleet, freePort, json, tempDir, type TempDir } from "../harness/index.js";
import { PtyPair } from "../e2e/bridge-support.js";
import { mcuRows, mqttSim, online, sendWait } from "./support.js";

/**
 * MCU commands along the user's whole path: `canopy cmd send` → hub CMD → leaf mirror → agent journal
 * → leaf-local request → the agent's bridge → the MCU over serial text, serial binary and MQTT → the
 * MCU's ack → the command's result.
 */
let fleet: Fleet;
let dir: TempDir;
const procs: CanopyProcess[] = [];
const ptys: PtyPair[] = [];
let mqttPort = 0;
let mqttPort2 = 0;

before(async () => {
  fleet = await Fleet.start();
  dir = await tempDir("canopy-mcu-cmd-");
  const bin = PtyPair.in(dir, "bin");
  const txt = PtyPair.in(dir, "txt");
  ptys.push(bin, txt);
  await bin.start();
  await txt.start();
  mqttPort = await freePort();
  mqttPort2 = await freePort();
  await fleet.startAgent("pi-1", {
    groups: ["lab"],
    args: ["--bridge-serial", bin.a, "--bridge-serial", txt.a, "--bridge-mqtt", `127.0.0.1:${mqttPort}`, "--bridge-mqtt-anonymous"],
  });
  await fleet.startAgent("pi-2", { groups: ["lab"], args: ["--bridge-mqtt", `127.0.0.1:${mqttPort2}`, "--bridge-mqtt-anonymous"] });
  procs.push(new CanopyProcess(["sim", "mcu", "--id", "m-bin", "--serial", bin.b, "--binary", "--rate", "1", "--firmware", "2.0.0"]));
  procs.push(new CanopyProcess(["sim", "mcu", "--id", "m-txt", "--serial", txt.b, "--rate", "1"]));
  procs.push(await mqttSim(mqttPort, ["--id", "m-mq", "--rate", "1"]));
  procs.push(await mqttSim(mqttPort2, ["--id", "m-mq", "--rate", "1", "--mqtt-version", "5"]));
  await mcuRows(fleet, "pi-1", (rows) => online(rows, ["m-bin", "m-txt", "m-mq"]), "three MCUs online on pi-1");
  await mcuRows(fleet, "pi-2", (rows) => online(rows, ["m-mq"]), "m-mq online on pi-2");
});

after(async () => {
  await Promise.allSettled(procs.map((p) => p.stop()));
  await Promise.allSettled(ptys.map((p) => p.kill()));
  await fleet?.stop();
  await dir?.remove();
});

test("mcu.<name> succeeds over serial binary, serial text and MQTT; the MCU's detail is the result", async () => {
  for (const mcu of ["m-bin", "m-txt", "m-mq"]) {
    const [rec] = await sendWait(fleet, ["--device", "pi-1", "mcu.blink", "--arg", `mcu=${mcu}`, "--arg", "payload=3"]);
    assert.equal(rec?.state, "succeeded", `${mcu}: ${JSON.stringify(rec)}`);
    assert.deepEqual(rec?.result, { mcu, detail: "blinked 3" });
  }
  // Named arguments reach the MCU as JSON.
  const [named] = await sendWait(fleet, ["--device", "pi-1", "mcu.blink", "--arg", "mcu=m-bin", "--args", '{"n":2}']);
  assert.deepEqual(named?.result, { mcu: "m-bin", detail: "blinked 2" });
});

test("an MCU's error ack fails the command with its detail; an MCU the device never saw is rejected", async () => {
  const [err] = await sendWait(fleet, ["--device", "pi-1", "mcu.selfdestruct", "--arg", "mcu=m-txt"]);
  assert.equal(err?.state, "failed");
  assert.equal(err?.error?.code, ErrorCode.McuError);
  assert.equal(err?.error?.message, "unknown command selfdestruct");
  const [bad] = await sendWait(fleet, ["--device", "pi-1", "mcu.blink", "--arg", "mcu=m-bin", "--arg", "payload=500"]);
  assert.equal(bad?.state, "failed");
  assert.equal(bad?.error?.message, "bad blink count");
  const [unknown] = await sendWait(fleet, ["--device", "pi-1", "mcu.blink", "--arg", "mcu=ghost"]);
  assert.equal(unknown?.state, "rejected");
  assert.match(unknown?.error?.message ?? "", /no MCU ghost has ever connected/);
});

test("--group fans an MCU command out: each device's own MCU answers", async () => {
  const records = await sendWait(fleet, ["--group", "lab", "mcu.ping", "--arg", "mcu=m-mq"]);
  assert.equal(records.length, 2);
  assert.deepEqual(records.map((r) => r.device).sort(), ["pi-1", "pi-2"]);
  for (const r of records) {
    assert.equal(r.state, "succeeded", JSON.stringify(r));
    assert.deepEqual(r.result, { mcu: "m-mq", detail: "pong" });
  }
});

test("an offline MCU gets its command when it returns within the TTL; past the TTL the command expires", async () => {
  const sim = procs.find((p) => p.args.includes(`127.0.0.1:${mqttPort2}`));
  assert.ok(sim);
  await sim.stop();
  await mcuRows(fleet, "pi-2", (rows) => rows.some((m) => m.id === "m-mq" && !m.online), "m-mq offline on pi-2");

  const expired = await sendWait(fleet, ["--device", "pi-2", "mcu.ping", "--arg", "mcu=m-mq", "--ttl", "3s"]);
  assert.equal(expired[0]?.state, "expired", JSON.stringify(expired[0]));

  const sent = await fleet.cli(["cmd", "send", "--device", "pi-2", "mcu.blink", "--arg", "mcu=m-mq", "--arg", "payload=4", "--ttl", "2m"]);
  assert.equal(sent.code, 0, sent.stderr);
  const id = sent.stdout.trim();
  const status = async (): Promise<CommandRecord> => {
    const r = await fleet.cli(["cmd", "status", id, "--json"]);
    assert.equal(r.code, 0, r.stderr);
    return json<CommandRecord>(r);
  };
  // The agent runs it and waits for the MCU: it is neither lost nor failed while the MCU sleeps.
  await waitFor(async () => (await status()).state === "running", { timeoutMs: 30_000, intervalMs: 300, what: "command running" });
  procs.push(await mqttSim(mqttPort2, ["--id", "m-mq", "--rate", "1", "--mqtt-version", "5"]));
  const rec = await waitFor(async () => { const r = await status(); return isTerminal(r.state) && r; }, { timeoutMs: 60_000, intervalMs: 300, what: "command done" });
  assert.equal(rec.state, "succeeded", JSON.stringify(rec));
  assert.deepEqual(rec.result, { mcu: "m-mq", detail: "blinked 4" });
});
