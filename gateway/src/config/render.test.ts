import { test } from "node:test";
import assert from "node:assert/strict";
import { effectiveConfig, type Overlay } from "./render.js";
import { parseWaves, planWaves } from "./rollout-model.js";
import type { LayerSnapshot } from "./layers.js";
import type { ConfigValue } from "@canopy/protocol";

const m = (...e: Array<[string, ConfigValue]>): Map<string, ConfigValue> => new Map(e);

const snap: LayerSnapshot = {
  fleet: m(["log.level", "info"], ["app.x", 1]),
  groups: new Map([["lab", m(["log.level", "debug"])], ["ops", m(["log.level", "error"], ["app.x", 2])]]),
  devices: new Map([["d2", m(["log.level", "warn"])]]),
};
const rec = (id: string, groups: string[]) => ({ id, groups, created: 0 });

test("device > group > fleet; the first listed group wins among groups", () => {
  const d1 = effectiveConfig(rec("d1", ["lab", "ops"]), snap, []);
  assert.deepEqual(d1.get("log.level"), { value: "debug", source: "group:lab" });
  assert.deepEqual(d1.get("app.x"), { value: 2, source: "group:ops" });
  assert.deepEqual(effectiveConfig(rec("d2", ["lab"]), snap, []).get("log.level"), { value: "warn", source: "device:d2" });
  assert.deepEqual(effectiveConfig(rec("d3", []), snap, []).get("log.level"), { value: "info", source: "fleet" });
  assert.deepEqual([...effectiveConfig(rec("d3", []), snap, [], ["app.x"]).keys()], ["app.x"]);
});

test("a rollout overlay replaces its group layer only on released devices, never over a device value", () => {
  const o: Overlay[] = [{ group: "lab", key: "log.level", value: "trace", devices: new Set(["d1", "d2"]) }];
  assert.equal(effectiveConfig(rec("d1", ["lab"]), snap, o).get("log.level")?.value, "trace");
  assert.equal(effectiveConfig(rec("d2", ["lab"]), snap, o).get("log.level")?.value, "warn");
  assert.equal(effectiveConfig(rec("d4", ["lab"]), snap, o).get("log.level")?.value, "debug");
});

test("waves are cumulative, never empty, and must end at 100%", () => {
  assert.deepEqual(parseWaves("10%,50%,100%"), [10, 50, 100]);
  assert.throws(() => parseWaves("10%,50%"), /last wave must be 100%/);
  assert.throws(() => parseWaves("50,20,100"), /must increase/);
  const ids = Array.from({ length: 10 }, (_, i) => `d${i}`);
  assert.deepEqual(planWaves(ids, [10, 50, 100]).map((w) => w.devices.length), [1, 4, 5]);
  assert.deepEqual(planWaves(["b", "a"], [10, 50, 100]).map((w) => w.devices), [["a"], ["b"]]);
});
