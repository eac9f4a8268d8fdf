import { test } from "node:test";
import assert from "node:assert/strict";
import { checkId, isValidId, checkTokenPath } from "./ids.js";
import { Subjects, ConfigKeys, upstreamMsgId } from "./subjects.js";
import { CanopyError, ErrorCode, parseError } from "./errors.js";

test("ids: the rule accepts letters, digits, _ and -, 1 to 64 long", () => {
  for (const ok of ["d1", "A-b_9", "x".repeat(64), "_", "-"]) assert.equal(isValidId(ok), true, ok);
  for (const bad of ["", "bad.id", "a b", "x".repeat(65), "a>", "a*", "é", "a\u0000", "a/b"]) {
    assert.equal(isValidId(bad), false, bad);
  }
});

test("ids: checkId throws INVALID_ID naming the rule", () => {
  assert.throws(
    () => checkId("bad.id", "device id"),
    (err: unknown) =>
      err instanceof CanopyError &&
      err.code === ErrorCode.InvalidId &&
      err.isUsage &&
      /device id "bad.id"/.test(err.message) &&
      err.message.includes("^[A-Za-z0-9_-]{1,64}$"),
  );
});

test("ids: token paths are dot-separated ids", () => {
  assert.equal(checkTokenPath("log.level"), "log.level");
  for (const bad of ["", ".a", "a.", "a..b", "a.*", "a.>", "a b"]) assert.throws(() => checkTokenPath(bad), bad);
});

test("subjects: builders only emit validated tokens", () => {
  assert.equal(Subjects.upAll("d1"), "up.d1.>");
  assert.equal(Subjects.telemetry("d1", "temp.cpu"), "up.d1.tlm.temp.cpu");
  assert.equal(Subjects.mcuTelemetry("d1", "m1", "temp"), "up.d1.tlm.mcu.m1.temp");
  assert.equal(Subjects.mcuCommand("d1", "m1", "blink"), "cmd.d1.mcu.m1.blink");
  assert.equal(Subjects.commandResult("d1", "c-1"), "up.d1.evt.cmd.c-1");
  assert.equal(Subjects.queryGroup("lab"), "q.group.lab");
  assert.equal(Subjects.configKvFilter("d1"), "$KV.cfg.d1.>");
  assert.equal(Subjects.deviceJsApi("d1"), "$JS.d1.API");
  assert.equal(ConfigKeys.group("lab", "log.level"), "group.lab.log.level");
  assert.equal(upstreamMsgId("d1", 42n), "d1:42");
  assert.throws(() => Subjects.upAll("d1.>"));
  assert.throws(() => Subjects.telemetry("d1", "a.>"));
  assert.throws(() => Subjects.queryDevice("*"));
});

test("errors: wire form round-trips; unknown codes become INTERNAL", () => {
  const e = parseError(new CanopyError(ErrorCode.NotFound, "no such device").toWire());
  assert.equal(e.code, ErrorCode.NotFound);
  assert.equal(e.message, "no such device");
  assert.equal(parseError({ code: "NOPE", message: "x" }).code, ErrorCode.Internal);
  assert.equal(parseError("boom").message, "boom");
});
