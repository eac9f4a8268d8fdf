import { test } from "node:test";
import assert from "node:assert/strict";
import { queryEnvironment } from "./query-env.js";
import { checkQueryRegexes, unsafeRegexReason } from "./query-regex.js";

test("patterns with nested repetition, backreferences or lookaround are refused; ordinary ones pass", () => {
  for (const bad of ["^(a+)+$", "(a|a)*", "(\\w+\\s?)*$", "((ab)*)+", "(a*)*", "(.*a){12}", "(a)\\1", "(?=a)a", "x".repeat(300)]) {
    assert.ok(unsafeRegexReason(bad), `accepted ${bad}`);
  }
  for (const ok of ["^pi-[0-9]+$", "^(lab|field)$", "^[a-z]+(-[0-9]+)?$", "arm(64|v7)", "\\d{2,4}", "^a+b*$", "[(]+"]) {
    assert.equal(unsafeRegexReason(ok), undefined, ok);
  }
});

test("matches() needs a literal, safe pattern; receiver and call forms are both checked", () => {
  const env = queryEnvironment();
  const check = (expr: string): void => checkQueryRegexes(env.parse(expr).ast);
  check('os.hostname.matches("^pi-[0-9]+$")');
  assert.throws(() => check('os.hostname.matches("^(a+)+$")'), /nested repetition/);
  assert.throws(() => check('matches(os.hostname, "^(a+)+$")'), /nested repetition/);
  assert.throws(() => check("os.hostname.matches(os.hostname)"), /string literal/);
  assert.throws(() => check('"a".matches("(")'), /refused/);
});
