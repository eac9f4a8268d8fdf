import { test } from "node:test";
import assert from "node:assert/strict";
import { lostBetween } from "./monitor.js";

test("lost = removed sequences the hub never had; nothing when the hub had them all", () => {
  assert.equal(lostBetween(1, 101, 500), 0, "full but healthy: the hub had 1..500, 1..100 removed");
  assert.equal(lostBetween(1, 101, 50), 50, "51..100 removed before the hub had them");
  assert.equal(lostBetween(1, 101, 0), 100, "hub never had anything");
  assert.equal(lostBetween(101, 101, 0), 0, "nothing removed");
  assert.equal(lostBetween(200, 150, 0), 0, "first sequence went back (stream recreated): nothing counted");
  assert.equal(lostBetween(10, 20, 9), 10, "age-based removal below any fill level counts too");
});
