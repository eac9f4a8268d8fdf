import { test } from "node:test";
import assert from "node:assert/strict";
import { LoadMeter, memFacts, netInterfaces } from "./host.js";
import { staticFacts } from "./static-facts.js";

test("host facts from /proc and os.*: memory adds up, load is a percentage, loopback is left out", async () => {
  const mem = await memFacts();
  assert.ok((mem.total ?? 0) > 0 && (mem.available ?? -1) >= 0 && (mem.available ?? 0) <= (mem.total ?? 0), JSON.stringify(mem));
  assert.equal(mem.used, (mem.total ?? 0) - (mem.available ?? 0));
  const meter = new LoadMeter();
  for (let i = 0; i < 2; i++) {
    const load = await meter.sample();
    assert.ok(load !== undefined && load >= 0 && load <= 100, String(load));
  }
  const ifaces = netInterfaces();
  assert.ok(ifaces.every((i) => i.name !== "lo" && i.name.length > 0), JSON.stringify(ifaces));
});

test("static facts: names from systeminformation in a child; what os.* knows when the child fails", async () => {
  const facts = await staticFacts();
  assert.equal(facts.os?.platform, "linux");
  assert.ok(facts.os?.distro && facts.cpu?.model && (facts.cpu.cores ?? 0) >= 1, JSON.stringify(facts));
  const fallback = await staticFacts(1);
  assert.deepEqual(Object.keys(fallback.os ?? {}).sort(), ["arch", "hostname", "kernel", "platform"]);
  assert.equal(fallback.cpu?.cores, facts.cpu?.cores);
  assert.equal(fallback.cpu?.model, undefined);
});
