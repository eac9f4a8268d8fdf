import { test } from "node:test";
import assert from "node:assert/strict";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import fc from "fast-check";
import { MqttProtocolError, ProfileRouter, runBridge } from "@canopy/firmware-bridge";
import { MQTT_PROFILES } from "@canopy/protocol";
import { bridgeStats, Cleanup, leafEnv } from "./bridge-support.js";
import { connectPacket, generate, publishPacket, rawExchange } from "./bridge-mqtt-raw.js";

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;
const PER_PROFILE = 10_000;
const CLIENT = "fz1";

// A level: usually the client id or a valid token, sometimes junk (spaces, dots, unicode, empty).
const level = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(CLIENT, "SENSOR", "STATE", "LWT", "RESULT", "POWER", "sensor", "state", "status", "events", "rpc", "online", "canopy") },
  { weight: 3, arbitrary: fc.stringMatching(/^[A-Za-z0-9_-]{1,12}$/) },
  { weight: 1, arbitrary: fc.string({ maxLength: 70 }).map((s) => s.replace(/[/\u0000]/g, "")) },
);
const payload = fc.oneof(
  fc.jsonValue({ maxDepth: 20 }).map((v) => JSON.stringify(v) ?? "null"),
  fc.constantFrom("ON", "OFF", "online", "offline", "true", "false", "21.5", "", "{", "NaN", "1e999"),
  fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b).toString("latin1")),
  fc.array(fc.tuple(fc.string({ maxLength: 10 }), fc.double()), { maxLength: 200 }).map((kv) => JSON.stringify(Object.fromEntries(kv))),
);
/** Topics of each profile's shapes (valid and broken), plus strays. */
const topics: Record<(typeof MQTT_PROFILES)[number], fc.Arbitrary<string>> = {
  canopy: fc.tuple(fc.constantFrom("tlm", "evt", "ack", "hello", "cmd"), fc.array(level, { maxLength: 18 })).map(([k, rest]) => [CLIENT, k, ...rest].join("/")),
  tasmota: fc.tuple(fc.constantFrom("tele", "stat", "cmnd"), level, level).map((p) => p.join("/")),
  esphome: fc.oneof(
    fc.tuple(level, fc.constantFrom("sensor", "binary_sensor", "switch", "text_sensor", "light", "bogus"), level, fc.constantFrom("state", "command", "x")).map((p) => p.join("/")),
    fc.tuple(level, fc.constantFrom("status", "debug")).map((p) => p.join("/")),
    fc.tuple(fc.constant("homeassistant"), level, level, level, fc.constantFrom("config", "x")).map((p) => p.join("/")),
  ),
  shelly: fc.oneof(
    fc.tuple(level, fc.constantFrom("events/rpc", "online", "canopy/rpc", "status/switch:0", "status/" + "x".repeat(70))).map((p) => p.join("/")),
    fc.tuple(level, level, level).map((p) => p.join("/")),
  ),
  custom: fc.tuple(fc.constantFrom("home", "x"), level, level).map((p) => p.join("/")),
};

test(`fuzz: ${PER_PROFILE.toLocaleString()} generated topics/payloads per profile → routed or refused with a counted reason; no other error; heap flat`, () => {
  const router = new ProfileRouter(MQTT_PROFILES, [{ topic: "home/{mcu}/{metric}", kind: "tlm", path: "env.{metric}", field: "value" }]);
  gc();
  const before = process.memoryUsage().heapUsed;
  for (const name of MQTT_PROFILES) {
    const reasons = new Map<string, number>();
    let routed = 0;
    let outputs = 0;
    for (const [topic, body] of fc.sample(fc.tuple(topics[name], payload), { numRuns: PER_PROFILE, seed: 7 })) {
      try {
        const r = router.route(topic, Buffer.from(body, "latin1"), CLIENT);
        routed++;
        outputs += r.outputs.length;
        assert.ok(r.outputs.length <= 64 + 1, `${topic}: ${r.outputs.length} outputs`);
        for (const o of r.outputs) if ("path" in o) assert.match(o.path, /^[A-Za-z0-9_-]{1,64}(\.[A-Za-z0-9_-]{1,64}){0,15}$/, topic);
      } catch (err) {
        assert.ok(err instanceof MqttProtocolError, `${topic}: ${String(err)}`);
        reasons.set(err.reason, (reasons.get(err.reason) ?? 0) + 1);
      }
    }
    const refused = [...reasons.values()].reduce((a, b) => a + b, 0);
    assert.equal(routed + refused, PER_PROFILE);
    assert.ok(routed > 0 && refused > 0, `${name}: routed ${routed}, refused ${refused}`);
    console.log(`# ${name}: ${routed} routed (${outputs} outputs), ${refused} refused ${JSON.stringify(Object.fromEntries(reasons))}`);
  }
  gc();
  const grown = process.memoryUsage().heapUsed - before;
  assert.ok(grown < 8 * 2 ** 20, `heap grew ${(grown / 2 ** 20).toFixed(1)} MiB`);
});

test("fuzz over the wire: 1,000 generated publishes per profile through a live bridge (MQTT 5) → each one PUBACKed or refused, and counted", async (t) => {
  const cleanup = new Cleanup(t);
  const { dir, leaf } = await leafEnv(cleanup, "canopy-profile-fuzz-");
  const ctl = new AbortController();
  let port = 0;
  await new Promise<void>((resolve) => {
    const run = runBridge({ device: "d1", leaf: leaf.server.url, dataDir: `${dir.path}/data`, config: { mqtt: { listen: "127.0.0.1:0", anonymous: true, maxPacketBytes: 4096 } }, onReady: (i) => ((port = i.mqttPort ?? 0), resolve()) }, ctl.signal);
    cleanup.add(async () => {
      ctl.abort();
      await run;
    });
  });
  let sent = 0;
  let answered = 0;
  for (const name of MQTT_PROFILES) {
    const inputs = fc.sample(fc.tuple(topics[name], payload), { numRuns: 1_000, seed: 11 });
    for (let i = 0; i < inputs.length; i += 50) {
      const results = await Promise.all(
        inputs.slice(i, i + 50).map(([topic, body], k) => {
          const id = `${CLIENT}`.replace("fz1", `fz${i + k}`);
          sent++;
          return rawExchange(port, [connectPacket(id, 5), publishPacket(topic.split(CLIENT).join(id), body.slice(0, 1000), 5, 1, 1), generate({ cmd: "disconnect" }, 5)], { version: 5, waitMs: 5_000 });
        }),
      );
      // Each publish gets a PUBACK (stored: 0, refused: 0x87/0x99…) or its connection is closed with a reason.
      for (const r of results) if (r.received.some((p) => p.cmd === "puback" || p.cmd === "disconnect") || r.closedByServer) answered++;
    }
  }
  const stats = await bridgeStats(leaf.nc);
  const c = stats.counters;
  const refused = (c["mqtt.rejected"] ?? 0) + (c["mqtt.refused_publishes"] ?? 0);
  const accepted = MQTT_PROFILES.reduce((n, p) => n + (c[`mqtt.${p}.publishes`] ?? 0), 0);
  t.diagnostic(`sent ${sent}, accepted ${accepted}, refused ${refused}: ${JSON.stringify(c)}`);
  assert.equal(answered, sent);
  assert.equal(accepted + refused, sent);
});
