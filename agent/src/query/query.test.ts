import { test } from "node:test";
import assert from "node:assert/strict";
import { decode, encode, QueryReply, type QueryFacts } from "@canopy/protocol";
import { QueryCompiler, configTree, toCelContext } from "./cel.js";
import { QueryResponder } from "./responder.js";
import { parseMcus } from "./facts.js";

const facts: QueryFacts = {
  device: "d1",
  os: { platform: "linux", arch: "arm64", uptime: 3600 },
  cpu: { cores: 4, load: 12.5 },
  mem: { total: 1_073_741_824, available: 150_000_000 },
  disk: {},
  net: { interfaces: [{ name: "eth0", ip4: "192.0.2.7" }] },
  agent: { version: "0.1.0", uptime: 12 },
  labels: ["lab"],
  config: { "log.level": "debug", "app.port": 8080, "app.ratio": 0.5 },
  mcus: [{ id: "m1", board: "rp2040", firmware: "1.2.0", online: true }],
  up: { messages: 3, bytes: 300, full: false },
};

const compiler = new QueryCompiler();
const holds = async (expr: string, f: QueryFacts = facts): Promise<boolean> => (await compiler.compile(expr))(toCelContext(f)) === true;

test("facts convert to CEL values: ints as BigInt, doubles as numbers, absent facts stay absent", async () => {
  const ctx = toCelContext(facts) as { mem: { total: unknown }; cpu: { load: unknown; temperature?: unknown } };
  assert.equal(ctx.mem.total, 1_073_741_824n);
  assert.equal(ctx.cpu.load, 12.5);
  assert.equal("temperature" in ctx.cpu, false);
  assert.ok(await holds('os.platform == "linux" && mem.available < 200e6 && mcus.exists(m, m.board == "rp2040")'));
  assert.ok(await holds("cpu.cores == 4 && cpu.load > 10.0 && mem.available < 200000000"));
  assert.ok(await holds('"lab" in labels && agent.version.startsWith("0.") && up.messages > 0'));
  assert.ok(await holds('!has(cpu.temperature) && has(os.arch) && net.interfaces.exists(i, i.name == "eth0")'));
  // A mistyped fact is dropped: reading it is an evaluation error (the responder's "no match").
  await assert.rejects(holds('os.platform == "linux"', { ...facts, os: { platform: 7 as unknown as string } }), /No such key: platform/);
});

test("only the facts an expression reads are converted", async () => {
  const read: string[] = [];
  const watched = new Proxy(facts, { get: (t, k) => (typeof k === "string" && read.push(k), Reflect.get(t, k)) });
  assert.ok(await holds("true", watched));
  assert.deepEqual(read, []);
  assert.ok(await holds("cpu.load > 10.0 && cpu.cores == 4", watched));
  assert.deepEqual(read, ["cpu"], "cpu converted once, nothing else");
});

test("config is reachable flat and as a tree; whole numbers are ints", async () => {
  assert.ok(await holds('config["log.level"] == "debug" && config.log.level == "debug"'));
  assert.ok(await holds("config.app.port == 8080 && config.app.ratio < 1.0"));
  assert.deepEqual(configTree({ a: 1, "a.b": 2 }), { a: 1n, "a.b": 2n });
  assert.deepEqual(configTree(undefined), {});
});

test("compiler rejects syntax, unknown facts and non-bool expressions; caches compiled ones", async () => {
  await assert.rejects(compiler.compile('os.platform = "linux"'), /Unexpected character/);
  await assert.rejects(compiler.compile('os.platfrom == "linux"'), /No such key: platfrom/);
  await assert.rejects(compiler.compile("mem.available"), /must be a bool/);
  assert.equal(await compiler.compile("true"), await compiler.compile("true"));
});

test("responder: bare reply on no match, values and facts on match, reasons under explain, errors as replies", async () => {
  const r = new QueryResponder("d1", () => facts, compiler);
  const ask = async (req: unknown): Promise<QueryReply> => decode(QueryReply, await r.answer(encode(req)));

  assert.deepEqual(await ask({ id: "q1", expr: "mem.available > 1e9" }), { id: "q1", device: "d1", matched: false });
  const hit = await ask({ id: "q2", expr: "mem.available < 1e9", fields: ["os.platform", "mcus.0.board", "cpu.nope"] });
  assert.equal(hit.matched, true);
  assert.deepEqual(hit.values, { "os.platform": "linux", "mcus.0.board": "rp2040", "cpu.nope": null });
  const full = await ask({ id: "q3", expr: "", facts: true });
  assert.equal(full.matched, true, "an empty expression matches every device");
  assert.equal((full.facts as { device: string }).device, "d1");

  const missing = await ask({ id: "q4", expr: "cpu.temperature > 70.0", explain: true });
  assert.equal(missing.matched, false);
  assert.match(missing.error?.message ?? "", /temperature/);
  assert.deepEqual(await ask({ id: "q5", expr: "cpu.temperature > 70.0" }), { id: "q5", device: "d1", matched: false });

  const bad = decode(QueryReply, await r.answer(new TextEncoder().encode("not json")));
  assert.equal(bad.error?.code, "INVALID_INPUT");
  const badField = await ask({ id: "q6", expr: "true", fields: ["$JS.API"] });
  assert.equal(badField.error?.code, "INVALID_INPUT");
});

test("bridge MCU lists are parsed defensively", () => {
  assert.deepEqual(parseMcus([{ id: "m1", board: "esp32", firmware: "1", online: true, link: "x" }, { board: "no-id" }, 7, null]), [
    { id: "m1", board: "esp32", firmware: "1", online: true },
  ]);
  assert.deepEqual(parseMcus({ not: "a list" }), []);
});
