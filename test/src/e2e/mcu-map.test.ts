import { test } from "node:test";
import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { json, runCanopy, tempDir } from "../harness/index.js";

interface MapOut {
  profile: string;
  mcu: string;
  outputs: Array<{ kind: string; subject?: string; payload?: string }>;
  skipped: number;
}

test("canopy mcu map test: dry run prints the subjects a publish would land on; refusals exit 1, bad usage 2", async (t) => {
  const dir = await tempDir("canopy-map-");
  t.after(() => dir.remove());
  const ok = await runCanopy(["mcu", "map", "test", "--profile", "tasmota", "--topic", "tele/plug1/SENSOR", "--device", "pi-1", "--json",
    "--payload", '{"Time":"2024-03-01T10:00:00","ENERGY":{"Power":45,"Voltage":231}}']);
  assert.equal(ok.code, 0, ok.stderr);
  const r = json<MapOut>(ok);
  assert.equal(r.mcu, "plug1");
  assert.deepEqual(r.outputs.map((o) => [o.subject, o.payload]), [["up.pi-1.tlm.mcu.plug1.energy.power", "45"], ["up.pi-1.tlm.mcu.plug1.energy.voltage", "231"]]);
  const human = await runCanopy(["mcu", "map", "test", "--profile", "esphome", "--topic", "node1/sensor/temp/state", "--payload", "21.4"]);
  assert.equal(human.code, 0, human.stderr);
  assert.match(human.stdout, /up\.<dev>\.tlm\.mcu\.node1\.sensor\.temp {2}21\.4/);
  const refused = await runCanopy(["mcu", "map", "test", "--profile", "canopy", "--topic", "tele/plug1/SENSOR", "--payload", "{}", "--json"]);
  assert.equal(refused.code, 1);
  assert.equal(json<{ reason: string }>(refused).reason, "topic_denied");
  const badId = await runCanopy(["mcu", "map", "test", "--profile", "tasmota", "--topic", "tele/plug 1/SENSOR", "--payload", "{}"]);
  assert.equal(badId.code, 1);
  assert.match(badId.stdout, /invalid_id/);
  assert.equal((await runCanopy(["mcu", "map", "test", "--profile", "nope", "--topic", "x"])).code, 2);
  assert.equal((await runCanopy(["mcu", "map", "test", "--profile", "tasmota"])).code, 2);
  const rules = join(dir.path, "rules.json");
  await writeFile(rules, JSON.stringify([{ topic: "home/{mcu}/{metric}", path: "env.{metric}", field: "value" }]));
  const custom = await runCanopy(["mcu", "map", "test", "--profile", "custom", "--rules", rules, "--topic", "home/kitchen/temp", "--payload", '{"value":21.5}', "--json"]);
  assert.equal(custom.code, 0, custom.stderr);
  assert.deepEqual(json<MapOut>(custom).outputs.map((o) => o.subject), ["up.<dev>.tlm.mcu.kitchen.env.temp"]);
  await writeFile(rules, JSON.stringify([{ topic: "home/{metric}", path: "x" }]));
  const badRules = await runCanopy(["mcu", "map", "test", "--profile", "custom", "--rules", rules, "--topic", "home/x"]);
  assert.equal(badRules.code, 2);
  assert.match(badRules.stderr, /must contain \{mcu\}/);
});
