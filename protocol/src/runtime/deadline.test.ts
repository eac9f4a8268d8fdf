import { test } from "node:test";
import assert from "node:assert/strict";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { deadline } from "./deadline.js";

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

/** Waits for `signal` to abort in a way only the signal itself keeps alive (as a flash waiting on its MCU does). */
async function abortedWithin(signal: AbortSignal, ms: number): Promise<boolean> {
  const collector = setInterval(gc, 50);
  try {
    const fired = new Promise<true>((resolve) => signal.addEventListener("abort", () => resolve(true), { once: true }));
    return await Promise.race([fired, new Promise<false>((r) => setTimeout(() => r(false), ms))]);
  } finally {
    clearInterval(collector);
  }
}

test("the deadline fires on time while garbage collections run (AbortSignal.any + AbortSignal.timeout does not on Node 20)", async () => {
  const parent = new AbortController();
  const started = Date.now();
  const d = deadline(300, parent.signal);
  assert.equal(await abortedWithin(d.signal, 3_000), true);
  assert.ok(Date.now() - started >= 290, "not before the deadline");
  assert.equal((d.signal.reason as DOMException).name, "TimeoutError");
});

test("a parent's abort passes through with its reason; an already aborted parent aborts at once", async () => {
  const parent = new AbortController();
  const d = deadline(60_000, undefined, parent.signal);
  setTimeout(() => parent.abort("cancelled"), 50);
  assert.equal(await abortedWithin(d.signal, 3_000), true);
  assert.equal(d.signal.reason, "cancelled");
  const gone = AbortSignal.abort("gone");
  assert.equal(deadline(60_000, gone).signal.reason, "gone");
});

test("clear() stops the timer and detaches from the parents", async () => {
  const parent = new AbortController();
  const d = deadline(100, parent.signal);
  d.clear();
  parent.abort("late");
  assert.equal(await abortedWithin(d.signal, 400), false);
});
