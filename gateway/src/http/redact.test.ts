import { test } from "node:test";
import assert from "node:assert/strict";
import { REDACTED, redact } from "./redact.js";
import { numericValue } from "./telemetry.js";
import { match, route } from "./routes.js";

test("secret-looking keys are redacted at any depth; the rest is kept", () => {
  const v = redact({ name: "wifi.connect", args: { ssid: "lab", password: "hunter2", nested: [{ apiToken: "t" }] }, n: 1 });
  assert.deepEqual(v, { name: "wifi.connect", args: { ssid: "lab", password: REDACTED, nested: [{ apiToken: REDACTED }] }, n: 1 });
});

test("telemetry values: decimal text, JSON number, {value}; anything else is skipped", () => {
  assert.equal(numericValue("42"), 42);
  assert.equal(numericValue(" 21.5\n"), 21.5);
  assert.equal(numericValue('{"value": 3}'), 3);
  for (const bad of ["", "abc", '{"v":1}', "[1]", "NaN"]) assert.equal(numericValue(bad), undefined, bad);
});

test("routes: ids in paths are validated by the pattern, methods are told apart", () => {
  const routes = [route("GET", "/api/devices/:id", async () => 1), route("POST", "/api/rollouts/:id/abort", async () => 2, true)];
  const m = match(routes, "GET", "/api/devices/pi-01");
  assert.ok(m && m !== "method");
  assert.deepEqual(m.params, { id: "pi-01" });
  assert.equal(match(routes, "GET", "/api/devices/a.b"), undefined);
  assert.equal(match(routes, "GET", "/api/rollouts/r1/abort"), "method");
});
