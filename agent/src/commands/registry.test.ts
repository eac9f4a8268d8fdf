import { test } from "node:test";
import assert from "node:assert/strict";
import { CanopyError, ErrorCode } from "@canopy/protocol";
import { HandlerRegistry } from "./registry.js";
import { builtinHandlers } from "./handlers/index.js";
import { LogRing } from "../logging.js";

const registry = new HandlerRegistry(builtinHandlers({}));

function rejection(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof CanopyError);
    assert.equal(err.code, ErrorCode.Rejected);
    return err.message;
  }
  assert.fail("expected a rejection");
}

test("built-ins resolve; test handlers only with CANOPY_TEST_HANDLERS=1", () => {
  for (const n of ["ping", "sysinfo", "config.reload", "agent.restart", "logs.tail", "wifi.scan", "wifi.connect", "exec"]) {
    assert.ok(registry.find(n), n);
  }
  assert.equal(registry.find("test.append"), undefined);
  assert.ok(new HandlerRegistry(builtinHandlers({ CANOPY_TEST_HANDLERS: "1" })).find("test.append"));
});

test("mcu.<name> is a prefix handler; bare 'mcu.' is not a command", () => {
  assert.equal(registry.find("mcu.blink")?.name, "mcu.");
  assert.equal(registry.find("mcu."), undefined);
  assert.deepEqual(registry.resolve("mcu.blink", { mcu: "m1", times: 3 }).args, { mcu: "m1", ackTimeoutMs: 10_000, times: 3 });
  assert.match(rejection(() => registry.resolve("mcu.blink", { mcu: "bad id" })), /bad arguments for mcu\.blink: mcu:/);
});

test("unknown names and bad args are rejected with the reason", () => {
  assert.match(rejection(() => registry.resolve("format.disk", {})), /unknown command "format.disk"; this agent runs: .*ping/);
  assert.match(rejection(() => registry.resolve("logs.tail", { lines: "many" })), /lines:/);
  assert.match(rejection(() => registry.resolve("exec", { path: "relative.sh" })), /path: must be an absolute path/);
  assert.match(rejection(() => registry.resolve("sysinfo", { extra: 1 })), /extra/);
  assert.deepEqual(registry.resolve("logs.tail", { lines: "5" }).args, { lines: 5 });
});

test("the log ring keeps the newest lines, oldest first", () => {
  const ring = new LogRing(3);
  ring.write("a\nb\n");
  ring.write("c\nd\n");
  assert.deepEqual(ring.tail(10), ["b", "c", "d"]);
  assert.deepEqual(ring.tail(2), ["c", "d"]);
  assert.deepEqual(ring.tail(0), []);
});
