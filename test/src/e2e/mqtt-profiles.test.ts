import { test } from "node:test";
import assert from "node:assert/strict";
import { McuAckEvent, waitFor } from "@canopy/protocol";
import { Fleet, countIn, freePort, json, readShard, tempDir } from "../harness/index.js";
import { FIXTURES, mosquittoPub, pahoReplay } from "./mqtt-clients.js";

const DEV = "pi-p";
const SHARD = "FLEET_UP_0";

test("profiles with real clients: Tasmota SENSOR/STATE (mosquitto_pub) → numeric telemetry, ESPHome state/status/discovery (paho) → telemetry, online/offline, entity names, Shelly notify → events; a Tasmota POWER command closed by stat/RESULT", async (t) => {
  const fleet = await Fleet.start();
  const dir = await tempDir("canopy-mqtt-profiles-");
  t.after(async () => {
    await fleet.stop();
    await dir.remove();
  });
  const port = await freePort();
  await fleet.startAgent(DEV, { args: ["--bridge-mqtt", `127.0.0.1:${port}`, "--bridge-mqtt-anonymous"] });
  const hub = await fleet.hubConnection();
  const count = (f: string): Promise<number> => countIn(hub, SHARD, `up.${DEV}.${f}`);
  const values = (f: string): Promise<string[]> => readShard(hub, SHARD, `up.${DEV}.${f}`);
  t.diagnostic(`fixtures from ${FIXTURES}`);

  // Tasmota: the bridge comes up with the agent; mosquitto_pub retries until it is there.
  await waitFor(async () => (await mosquittoPub(port, { id: "plug1", topic: "tele/plug1/SENSOR", file: "tasmota-sensor-energy.json" })).code === 0, {
    timeoutMs: 60_000, intervalMs: 1_000, what: "mosquitto_pub SENSOR accepted",
  });
  assert.equal((await mosquittoPub(port, { id: "plug1", topic: "tele/plug1/STATE", file: "tasmota-state.json" })).code, 0);
  assert.equal((await mosquittoPub(port, { id: "plug1", topic: "tele/plug1/LWT", message: "Online", retain: true })).code, 0);
  // 10 numeric ENERGY fields (TotalStartTime is text) + 11 numeric STATE fields (POWER ON → 1).
  await waitFor(async () => (await count("tlm.mcu.plug1.>")) >= 21, { timeoutMs: 30_000, what: "plug1 telemetry in the hub" });
  assert.equal(await count("tlm.mcu.plug1.energy.>"), 10);
  assert.equal(await count("tlm.mcu.plug1.>"), 21);
  assert.deepEqual(await values("tlm.mcu.plug1.energy.power"), ["45"]);
  assert.deepEqual(await values("tlm.mcu.plug1.wifi.signal"), ["-42"]);
  assert.deepEqual(await values("tlm.mcu.plug1.power"), ["1"]);
  // A client may publish only as itself: plug2's topic from client plug1 is refused.
  await mosquittoPub(port, { id: "plug1", topic: "tele/plug2/SENSOR", file: "tasmota-sensor-energy.json" });
  assert.equal(await count("tlm.mcu.plug2.>"), 0);

  // ESPHome: birth/LWT on <node>/status (retained), discovery, states; then the node vanishes → will.
  const esp = await pahoReplay(dir, port, "livingroom", {
    id: "livingroom",
    will: { topic: "livingroom/status", payload: "offline", retain: true },
    publish: [
      { topic: "livingroom/status", payload: "online", retain: true },
      { topic: "homeassistant/sensor/livingroom/temperature/config", file: "esphome-discovery-temperature.json", retain: true },
      { topic: "livingroom/sensor/temperature/state", payload: "21.4" },
      { topic: "livingroom/binary_sensor/motion/state", payload: "ON" },
    ],
    vanish: true,
  });
  assert.equal(esp.code, 0, esp.stderr + esp.stdout);
  assert.equal(esp.events.filter((e) => e["event"] === "published" && e["acked"] === true).length, 4);
  await waitFor(async () => (await count("evt.mcu.livingroom.status")) === 2, { timeoutMs: 30_000, what: "ESPHome online + will offline" });
  assert.deepEqual((await values("evt.mcu.livingroom.status")).map((v) => (JSON.parse(v) as { online: boolean }).online), [true, false]);
  assert.deepEqual(await values("tlm.mcu.livingroom.sensor.temperature"), ["21.4"]);
  assert.deepEqual(await values("tlm.mcu.livingroom.binary_sensor.motion"), ["1"]);
  const [entity] = await values("evt.mcu.livingroom.entity.sensor.temperature");
  assert.deepEqual(JSON.parse(entity ?? "{}"), { component: "sensor", object: "temperature", name: "Temperature", unit: "°C", deviceClass: "temperature" });
  await waitFor(async () => (await count("evt.mcu.livingroom.offline")) === 1, { timeoutMs: 30_000, what: "bridge offline event for livingroom" });
  assert.equal(await count("evt.mcu.livingroom.online"), 1);

  // Shelly Gen2: notifications on <id>/events/rpc → events (+ numeric telemetry from NotifyStatus).
  const sh = "shellyplus1pm-a8032ab12345";
  assert.equal((await mosquittoPub(port, { id: sh, topic: `${sh}/online`, message: "true", retain: true })).code, 0);
  assert.equal((await mosquittoPub(port, { id: sh, topic: `${sh}/events/rpc`, file: "shelly-notify-status.json" })).code, 0);
  assert.equal((await mosquittoPub(port, { id: sh, topic: `${sh}/events/rpc`, file: "shelly-notify-event.json" })).code, 0);
  await waitFor(async () => (await count(`evt.mcu.${sh}.rpc.>`)) === 2, { timeoutMs: 30_000, what: "Shelly notifications as events" });
  const [ev] = await values(`evt.mcu.${sh}.rpc.notifyevent`);
  assert.equal((JSON.parse(ev ?? "{}") as { params: { events: Array<{ event: string }> } }).params.events[0]?.event, "single_push");
  assert.deepEqual(await values(`tlm.mcu.${sh}.switch_0.apower`), ["12.3"]);
  assert.deepEqual(await values(`tlm.mcu.${sh}.switch_0.aenergy.total`), ["1.523"]);
  assert.equal(await count(`evt.mcu.${sh}.status`), 1);

  // A Tasmota plug (played by paho): the POWER command reaches cmnd/plug1/POWER; stat/plug1/RESULT closes it.
  const plug = pahoReplay(dir, port, "plug1", {
    id: "plug1",
    subscribe: ["cmnd/plug1/#"],
    respond: { "cmnd/plug1/POWER": [{ topic: "stat/plug1/RESULT", payload: '{"POWER":"{payload}"}' }, { topic: "stat/plug1/POWER", payload: "{payload}" }] },
    stay_ms: 45_000,
    exit_after_commands: 1,
  });
  // The whole path: canopy cmd send → hub CMD → device mirror → agent → bridge → cmnd/plug1/POWER.
  // The plug may still be connecting: the agent waits for it (the command stays running until it acks).
  const sent = await fleet.cli(["cmd", "send", "--device", DEV, "mcu.power", "--arg", "mcu=plug1", "--arg", "value=ON", "--ttl", "2m", "--wait", "--timeout", "90s", "--json"]);
  assert.equal(sent.code, 0, sent.stderr + sent.stdout);
  const [rec] = json<Array<{ state: string; result: unknown }>>(sent);
  assert.equal(rec?.state, "succeeded", JSON.stringify(rec));
  assert.deepEqual(rec?.result, { mcu: "plug1", detail: '{"POWER":"ON"}' });
  const played = await plug;
  assert.deepEqual(played.events.filter((e) => e["event"] === "command").map((e) => [e["topic"], e["payload"]]), [["cmnd/plug1/POWER", "ON"]]);
  const acks = (await values("evt.mcu.plug1.ack.power")).map((v) => McuAckEvent.parse(JSON.parse(v)));
  assert.deepEqual(acks.map((a) => [a.status, a.detail]), [["ok", '{"POWER":"ON"}']]);
});
