import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import { Kvm } from "@nats-io/kv";
import { waitFor } from "@canopy/protocol";
import { Fleet, json } from "../harness/index.js";
import { cliOk, show, waitApplied } from "../e2e/config-helpers.js";
import { ConfigSetJson, ConfigShowJson } from "@canopy/gateway/cli/json/schemas";

// Validation at the door: every refused value exits 2 with the rule (and the nearest key for a typo),
// and nothing reaches KV `cfg-src` or `cfg`.
let fleet: Fleet;

before(async () => {
  fleet = await Fleet.start();
  await fleet.startAgent("d1");
});
after(async () => {
  await fleet?.stop();
});

async function authoredKeys(): Promise<string[]> {
  const kv = await new Kvm(await fleet.hubConnection()).open("cfg-src");
  const keys: string[] = [];
  for await (const k of await kv.keys()) keys.push(k);
  return keys.sort();
}

test("typos and bad values are refused before writing: exit 2, the rule, the nearest key", async () => {
  const before = await authoredKeys();
  const cases: Array<[string[], RegExp]> = [
    [["config", "set", "log.levle", "debug", "--fleet"], /log\.levle: unknown Canopy setting; did you mean log\.level\?/],
    [["config", "set", "lgo.level", "debug", "--device", "d1"], /did you mean log\.level\?/],
    [["config", "set", "log.level", "loud", "--fleet"], /log\.level: .*must be one of trace, debug, info/],
    [["config", "set", "telemetry.interval", "banana", "--fleet"], /telemetry\.interval: invalid duration "banana"/],
    [["config", "set", "heartbeat.interval", "0s", "--fleet"], /heartbeat\.interval: must be at least 250 ms/],
    [["config", "set", "up.maxBytes", "999999TiB", "--fleet"], /up\.maxBytes: must be at most .*must be a size from 64KiB to 1TiB/],
    [["config", "rollout", "heartbeat.interval", "soon", "--group", "lab"], /heartbeat\.interval: invalid duration/],
  ];
  for (const [args, re] of cases) {
    const r = await fleet.cli(args);
    assert.equal(r.code, 2, `${args.join(" ")} → ${r.code}: ${r.stderr}`);
    assert.match(r.stderr, re, args.join(" "));
    assert.doesNotMatch(r.stderr, /ZodError|"code":/, "no library text");
  }
  assert.deepEqual(await authoredKeys(), before, "nothing written");
});

test("size caps: a 7 MB string and a 200,000-key object are refused; app keys are otherwise free-form", async () => {
  const big = "x".repeat(7 * 1024 * 1024);
  const r1 = await fleet.cli(["config", "set", "app.blob", "--value-file", "-", "--fleet"], 30_000, big);
  assert.equal(r1.code, 2, r1.stderr);
  assert.match(r1.stderr, /app\.blob: value is over the limit of 65536 bytes as JSON/);
  const obj = JSON.stringify(Object.fromEntries(Array.from({ length: 200_000 }, (_, i) => [`k${i}`, i])));
  const r2 = await fleet.cli(["config", "set", "app.table", "--value-file", "-", "--fleet"], 30_000, obj);
  assert.equal(r2.code, 2, r2.stderr);
  assert.match(r2.stderr, /app\.table: value is over the limit of 65536 bytes as JSON/);
  assert.deepEqual((await authoredKeys()).filter((k) => k.startsWith("fleet.app.")), []);

  // A negative number is a value, not an option; app namespaces take any JSON.
  const set = ConfigSetJson.parse(json(await fleet.cli(["config", "set", "app.offset", "-5", "--device", "d1", "--json"])));
  assert.equal(set.value, -5);
  await cliOk(fleet, ["config", "set", "app.nested", '{"a":{"b":[1,2,3]}}', "--device", "d1"]);
  const row = await waitApplied(fleet, "d1", "app.offset", -5);
  // One revision number: what `set` printed is what `show` lists and `history` knows.
  assert.equal(row.revision, set.revision);
  const history = JSON.parse(await cliOk(fleet, ["config", "history", "app.offset", "--device", "d1", "--json"])) as Array<{ revision: number }>;
  assert.deepEqual(history.map((h) => h.revision), [set.revision]);
  const human = await cliOk(fleet, ["config", "show", "--device", "d1"]);
  assert.match(human, new RegExp(`app\\.offset\\s+-5\\s+device:d1\\s+${set.revision}\\s+applied`));
});

test("config show exits 1 when the device refused a key, and says which", async () => {
  // 1 TiB passes the schema, but no leaf has that much JetStream storage: the agent fails to apply it.
  await cliOk(fleet, ["config", "set", "up.maxBytes", "1TiB", "--device", "d1"]);
  const last = await waitFor(
    async () => {
      const r = await fleet.cli(["config", "show", "--device", "d1", "--json"]);
      return r.code === 0 ? undefined : r;
    },
    { timeoutMs: 20_000, intervalMs: 250, what: "config show to report the refused key" },
  );
  assert.equal(last.code, 1, last.stderr);
  const view = ConfigShowJson.parse(json(last));
  assert.equal(view.failed, 1);
  assert.equal(view.keys.find((k) => k.key === "up.maxBytes")?.status, "failed");
  const human = await fleet.cli(["config", "show", "--device", "d1"]);
  assert.equal(human.code, 1);
  assert.match(human.stdout, /up\.maxBytes .*FAILED: up\.maxBytes:/);
  assert.match(human.stderr, /d1 refused 1 key/);
  await cliOk(fleet, ["config", "unset", "up.maxBytes", "--device", "d1"]);
  assert.equal((await show(fleet, "d1")).failed, 0);
});
