import { test } from "node:test";
import assert from "node:assert/strict";
import { simGroups, simProfile } from "./facts.js";

test("simulated facts are deterministic per seed and varied across devices", () => {
  const a = simProfile("sim-0001", 1, 7, ["lab"], "1.0.0", 0);
  const b = simProfile("sim-0001", 1, 7, ["lab"], "1.0.0", 0);
  assert.deepEqual(a, b);
  assert.notDeepEqual(simProfile("sim-0001", 1, 8, ["lab"], "1.0.0", 0).facts, a.facts);
  const fleet = Array.from({ length: 1000 }, (_, i) => simProfile(`sim-${i}`, i, 7, [], "1.0.0", 0).facts);
  const lowLoad = fleet.filter((f) => (f.cpu.load as number) < 10).length;
  assert.ok(lowLoad > 60 && lowLoad < 140, `cpu.load < 10 selects ~10 % (${lowLoad})`);
  assert.ok(new Set(fleet.map((f) => f.mem.total)).size >= 4);
  assert.ok(new Set(fleet.map((f) => f.os.arch)).size === 3);
  assert.ok(fleet.some((f) => f.mcus.length === 0) && fleet.some((f) => f.mcus.length === 3));
  for (const f of fleet) assert.ok((f.mem.available as number) <= (f.mem.total as number));
});

test("groups spread round-robin with some devices in two groups", () => {
  const groups = Array.from({ length: 100 }, (_, i) => simGroups(i, 1, ["a", "b", "c"]));
  assert.ok(groups.every((g) => g.length >= 1 && g.length <= 2 && new Set(g).size === g.length));
  assert.ok(groups.some((g) => g.length === 2));
  assert.deepEqual(simGroups(4, 1, []), []);
});
