import { test } from "node:test";
import assert from "node:assert/strict";
import { compileQuery, QueryExpressionError } from "./compile.js";
import { prepareQuery } from "./run.js";

test("compile errors carry the position and a caret", () => {
  const err = (expr: string): QueryExpressionError => {
    try {
      compileQuery(expr);
    } catch (e) {
      assert.ok(e instanceof QueryExpressionError);
      return e;
    }
    assert.fail(`${expr} compiled`);
  };
  const syntax = err('os.platform = "linux"');
  assert.equal(syntax.column, 13);
  assert.equal(syntax.code, "INVALID_INPUT");
  assert.match(syntax.message, /syntax error at column 13/);
  assert.match(syntax.message, /\n {2}os\.platform = "linux"\n {14}\^$/);
  assert.match(err('os.platfrom == "x"').message, /type error at column 4: No such key: platfrom/);
  assert.match(err('mem.available + "x" == 1').message, /type error/);
  assert.match(err("cpu.cores").message, /must be a bool/);
  assert.match(err('true &&\n  os.nope == "x"').message, /line 2 column 6/);
  assert.match(err("x".repeat(5000)).message, /limit/);
});

test("valid expressions compile; an empty one means every device", () => {
  assert.equal(compileQuery(undefined), "true");
  assert.equal(compileQuery("  "), "true");
  const e = 'os.platform == "linux" && mem.available < 200e6 && mcus.exists(m, m.board == "rp2040")';
  assert.equal(compileQuery(e), e);
  assert.equal(compileQuery('config.log.level == "debug" && "lab" in labels && up.pending == 0'), 'config.log.level == "debug" && "lab" in labels && up.pending == 0');
});

test("targets and fields are validated before anything is sent", () => {
  assert.equal(prepareQuery({ timeoutMs: 1000 }).subject, "q.all");
  assert.equal(prepareQuery({ group: "lab", timeoutMs: 1000 }).subject, "q.group.lab");
  assert.equal(prepareQuery({ device: "pi-01", timeoutMs: 1000 }).subject, "q.dev.pi-01");
  assert.throws(() => prepareQuery({ group: "a.b", timeoutMs: 1000 }), /group id/);
  assert.throws(() => prepareQuery({ device: "*", timeoutMs: 1000 }), /device id/);
  assert.throws(() => prepareQuery({ group: "a", device: "b", timeoutMs: 1000 }), /not both/);
  assert.throws(() => prepareQuery({ fields: ["secret.x"], timeoutMs: 1000 }), /must start with one of/);
  assert.throws(() => prepareQuery({ timeoutMs: 0 }), /timeout/);
});

test("replies are checked: malformed or mistyped ones are not answers", async () => {
  const { parseReply } = await import("./collect.js");
  const enc = (v: unknown): Uint8Array => new TextEncoder().encode(typeof v === "string" ? v : JSON.stringify(v));
  assert.deepEqual(parseReply(enc({ id: "q", device: "d1", matched: true, values: { a: 1 }, error: "x", at: 5 })), {
    id: "q", device: "d1", matched: true, values: { a: 1 }, at: 5,
  });
  assert.equal(parseReply(enc({ id: "q", device: "bad.id", matched: true })), undefined);
  assert.equal(parseReply(enc({ id: "q", device: "d1", matched: "yes" })), undefined);
  assert.equal(parseReply(enc("not json")), undefined);
  assert.equal(parseReply(enc([1, 2])), undefined);
});
