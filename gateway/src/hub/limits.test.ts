import { test } from "node:test";
import assert from "node:assert/strict";
import { defaultHubLimits, hubLimitsFromFlags } from "./limits.js";

const MIB = 2 ** 20;
const GIB = 2 ** 30;

test("default hub stream limits are shares of the JetStream store limit", () => {
  assert.deepEqual(defaultHubLimits(20 * GIB), { upMaxBytes: 2 * GIB, upMaxAgeMs: 90 * 86_400_000, cmdMaxBytes: GIB, cmdMaxAgeMs: 30 * 86_400_000 });
  // A small hub: floors, so a stream is never sized to nothing.
  const small = defaultHubLimits(100 * MIB);
  assert.equal(small.upMaxBytes, 64 * MIB);
  assert.equal(small.cmdMaxBytes, 16 * MIB);
});

test("flags override the defaults; bad ones are usage errors", () => {
  const d = defaultHubLimits(20 * GIB);
  assert.deepEqual(hubLimitsFromFlags({ upMaxBytes: "5GiB", cmdMaxAge: "2d" }, d), { ...d, upMaxBytes: 5 * GIB, cmdMaxAgeMs: 2 * 86_400_000 });
  assert.throws(() => hubLimitsFromFlags({ upMaxAge: "soon" }, d), { code: "INVALID_INPUT" });
  assert.throws(() => hubLimitsFromFlags({ upMaxBytes: "21GiB" }, d, 20 * GIB), /exceeds the hub's JetStream store limit/);
});
