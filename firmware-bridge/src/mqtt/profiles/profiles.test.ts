import { test } from "node:test";
import assert from "node:assert/strict";
import { MQTT_PROFILES } from "@canopy/protocol";
import { MqttProtocolError } from "../../errors.js";
import { ProfileRouter } from "./router.js";
import type { Output } from "./types.js";

const reason = (r: string) => (e: unknown) => e instanceof MqttProtocolError && e.reason === r;
const all = new ProfileRouter(MQTT_PROFILES, [{ topic: "home/{mcu}/{metric}", kind: "tlm", path: "env.{metric}", field: "value", command: "home/{mcu}/set/{name}" }]);
const text = (o: Output | undefined): string => (o && "payload" in o ? Buffer.from(o.payload).toString() : "");
const paths = (outputs: Output[]) => outputs.map((o) => ("path" in o ? `${o.kind}:${o.path}=${text(o)}` : o.kind));

test("canopy map: telemetry, events, acks, hello; ids, wildcards and other MCUs refused", () => {
  assert.deepEqual(paths(all.route("m1/tlm/env/temp", Buffer.from("21.5"), "m1").outputs), ["tlm:env.temp=21.5"]);
  assert.deepEqual(paths(all.route("m1/evt/door", Buffer.from("open"), "m1").outputs), ["evt:door=open"]);
  assert.deepEqual(all.route("m1/ack/blink", Buffer.from("ok"), "m1").outputs, [{ kind: "ack", match: { name: "blink" }, ok: true, detail: "" }]);
  assert.equal(all.route("m1/hello", Buffer.from("uno 1.0"), "m1").outputs[0]?.kind, "hello");
  assert.throws(() => all.route("m1/tlm/#", Buffer.from("1"), "m1"), reason("wildcard"));
  assert.throws(() => all.route("m1/tlm/a.b", Buffer.from("1"), "m1"), reason("invalid_id"));
  assert.throws(() => all.route("m1/tlm//x", Buffer.from("1"), "m1"), reason("invalid_id"));
  assert.throws(() => all.route("m2/tlm/x", Buffer.from("1"), "m1"), reason("topic_denied"));
  assert.throws(() => all.route("m1/cmd/x", Buffer.from("1"), "m1"), reason("topic_denied"));
  assert.throws(() => all.route("no/such/shape/here/x", Buffer.from("1"), "no"), reason("topic_denied"));
  assert.ok(all.filterAllowed("m1/cmd/+", "m1"));
  assert.ok(!all.filterAllowed("m1/#", "m1"));
  assert.ok(!all.filterAllowed("m2/cmd/+", "m1"));
});

test("tasmota: SENSOR flattened to numeric telemetry, LWT → status, RESULT closes the command by name", () => {
  // From the Tasmota docs (energy monitoring plug, tele/<topic>/SENSOR).
  const sensor = '{"Time":"2024-03-01T10:00:00","ENERGY":{"TotalStartTime":"2024-01-01T00:00:00","Total":12.345,"Yesterday":0.5,"Today":0.25,"Period":3,"Power":45,"ApparentPower":50,"ReactivePower":21,"Factor":0.9,"Voltage":231,"Current":0.195}}';
  const r = all.route("tele/plug1/SENSOR", Buffer.from(sensor), "plug1");
  assert.equal(r.profile, "tasmota");
  assert.deepEqual(paths(r.outputs).slice(0, 3), ["tlm:energy.total=12.345", "tlm:energy.yesterday=0.5", "tlm:energy.today=0.25"]);
  assert.ok(paths(r.outputs).includes("tlm:energy.power=45"));
  assert.equal(r.outputs.length, 10);
  assert.equal(r.skipped, 1); // TotalStartTime is not a number
  assert.deepEqual(paths(all.route("tele/plug1/LWT", Buffer.from("Offline"), "plug1").outputs), ['evt:status={"online":false,"profile":"tasmota"}']);
  const res = all.route("stat/plug1/RESULT", Buffer.from('{"POWER":"ON"}'), "plug1").outputs;
  assert.deepEqual(res[0], { kind: "ack", match: { name: "power" }, ok: true, detail: '{"POWER":"ON"}' });
  assert.deepEqual(paths(all.route("stat/plug1/POWER", Buffer.from("OFF"), "plug1").outputs), ["tlm:power=0"]);
  assert.throws(() => all.route("cmnd/plug1/POWER", Buffer.from("ON"), "plug1"), reason("topic_denied"));
  assert.throws(() => all.route("tele/plug1/SENSOR", Buffer.from("not json"), "plug1"), reason("bad_payload"));
  assert.ok(all.filterAllowed("cmnd/plug1/#", "plug1"));
  assert.ok(all.filterAllowed("cmnd/tasmotas/#", "plug1"));
  assert.ok(!all.filterAllowed("cmnd/plug2/#", "plug1"));
  const e = all.encode("plug1", { linkId: 7, name: "power", args: Buffer.from('{"value":"ON"}') }, ["cmnd/plug1/#"], "tasmota");
  assert.deepEqual(e && { topic: e.topic, payload: e.payload.toString(), profile: e.profile }, { topic: "cmnd/plug1/POWER", payload: "ON", profile: "tasmota" });
});

test("esphome: state → telemetry, status → status event, commands to <node>/switch/<name>/command", () => {
  assert.deepEqual(paths(all.route("livingroom/sensor/temperature/state", Buffer.from("21.4"), "livingroom").outputs), ["tlm:sensor.temperature=21.4", "ack"]);
  assert.deepEqual(paths(all.route("livingroom/binary_sensor/motion/state", Buffer.from("ON"), "livingroom").outputs), ["tlm:binary_sensor.motion=1", "ack"]);
  assert.deepEqual(paths(all.route("livingroom/status", Buffer.from("online"), "livingroom").outputs), ['evt:status={"online":true,"profile":"esphome"}']);
  assert.ok(all.filterAllowed("livingroom/switch/relay/command", "livingroom"));
  const e = all.encode("livingroom", { linkId: 1, name: "relay", args: Buffer.from('{"value":"ON"}') }, ["livingroom/switch/relay/command"], "esphome");
  assert.equal(e?.topic, "livingroom/switch/relay/command");
  // Home Assistant discovery names the entity.
  const d = all.route("homeassistant/sensor/livingroom/temperature/config", Buffer.from('{"name":"Temperature","unit_of_measurement":"°C","device_class":"temperature","state_topic":"livingroom/sensor/temperature/state"}'), "livingroom");
  assert.deepEqual(JSON.parse(text(d.outputs[0])), { component: "sensor", object: "temperature", name: "Temperature", unit: "°C", deviceClass: "temperature" });
});

test("shelly gen2: NotifyStatus → event + numeric telemetry, online → status, JSON-RPC commands answered on src", () => {
  const notify = '{"src":"shellyplus1pm-a8032ab12345","dst":"shellyplus1pm-a8032ab12345/events","method":"NotifyStatus","params":{"ts":1631266595.44,"switch:0":{"id":0,"apower":12.3,"voltage":229.8}}}';
  const r = all.route("shellyplus1pm-a8032ab12345/events/rpc", Buffer.from(notify), "shellyplus1pm-a8032ab12345");
  assert.deepEqual(paths(r.outputs).slice(1), ["tlm:switch_0.id=0", "tlm:switch_0.apower=12.3", "tlm:switch_0.voltage=229.8"]);
  assert.equal(r.outputs[0]?.kind === "evt" && r.outputs[0].path, "rpc.notifystatus");
  const e = all.encode("sh1", { linkId: 9, name: "switch-set", args: Buffer.from('{"id":0,"on":true}') }, ["sh1/rpc"], "shelly");
  assert.deepEqual(JSON.parse(e?.payload.toString() ?? "{}"), { id: 9, src: "sh1/canopy", method: "Switch.Set", params: { id: 0, on: true } });
  const resp = all.route("sh1/canopy/rpc", Buffer.from('{"id":9,"src":"sh1","dst":"sh1/canopy","result":{"was_on":false}}'), "sh1");
  assert.deepEqual(resp.outputs, [{ kind: "ack", match: { linkId: 9 }, ok: true, detail: '{"was_on":false}' }]);
});

test("custom rules: named wildcards, JSON field extraction, reverse command topic; narrowing profiles", () => {
  const r = all.route("home/kitchen/temp", Buffer.from('{"value":21.5}'), "kitchen");
  assert.deepEqual(paths(r.outputs), ["tlm:env.temp=21.5"]);
  assert.equal(all.encode("kitchen", { linkId: 1, name: "fan", args: Buffer.from('{"value":"1"}') }, ["home/kitchen/set/+"])?.topic, "home/kitchen/set/fan");
  const onlyCanopy = new ProfileRouter(["canopy"]);
  assert.throws(() => onlyCanopy.route("tele/plug1/SENSOR", Buffer.from("{}"), "plug1"), reason("topic_denied"));
});
