import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { writeFile } from "node:fs/promises";
import type { NatsConnection } from "@nats-io/transport-node";
import { Kvm } from "@nats-io/kv";
import { jetstreamManager } from "@nats-io/jetstream";
import { Subjects, sleep, waitFor, type CommandRecord } from "@canopy/protocol";
import { Fleet, json } from "../harness/index.js";
import { waitApplied } from "../e2e/config-helpers.js";

// What the fleet trusts a device for, and what a device trusts the fleet for: query answers count only
// for the device whose credentials sent them; a catastrophic regex cannot stall agents; remote config
// cannot widen what `exec` may run.

let fleet: Fleet;
let hub: NatsConnection;
let scriptA: string;
let scriptB: string;

before(async () => {
  fleet = await Fleet.start();
  const dir = fleet.dir.path;
  scriptA = join(dir, "a.sh");
  scriptB = join(dir, "b.sh");
  await writeFile(scriptA, "#!/bin/sh\necho a\n", { mode: 0o755 });
  await writeFile(scriptB, "#!/bin/sh\necho b\n", { mode: 0o755 });
  const allow = join(dir, "exec.allow");
  await writeFile(allow, `# local allowlist\n${scriptA}\n`, { mode: 0o644 });
  await fleet.startAgent("q1", { args: ["--exec-allow-file", allow] });
  await fleet.startAgent("q2");
  hub = await fleet.hubConnection();
});
after(async () => {
  await fleet?.stop();
});

interface QueryJson {
  devices: { id: string; source: string; matched: boolean | null; error?: { message: string } }[];
}

test("a catastrophic regex: refused at the CLI (exit 2); sent raw to the fleet, every agent answers an error at once and keeps its heartbeat", async () => {
  const expr = '"' + "a".repeat(30) + '!".matches("^(a+)+$")';
  const cli = await fleet.cli(["query", expr, "--json"]);
  assert.equal(cli.code, 2, cli.stdout);
  assert.match(cli.stderr, /nested repetition/);

  const beats: Record<string, number[]> = { q1: [], q2: [] };
  // A heartbeat is a full status record (on change) or a compact beat (KV `beat`) in between.
  const watches = await Promise.all(["status", "beat"].map(async (b) => (await new Kvm(hub).open(b)).watch({ include: "updates_only" as never })));
  for (const watch of watches) {
    void (async () => {
      for await (const e of watch) beats[e.key]?.push(Date.now());
    })();
  }
  const answers = new Map<string, { error?: { code: string }; at: number }>();
  const id = "regexbomb";
  const sub = hub.subscribe(Subjects.queryReplies(id), {
    callback: (_e, m) => void answers.set(m.subject.split(".")[1] ?? "", { ...m.json<{ error?: { code: string } }>(), at: Date.now() }),
  });
  const sentAt = Date.now();
  hub.publish(Subjects.queryAll, JSON.stringify({ id, expr, explain: true }));
  await waitFor(() => answers.size === 2, { timeoutMs: 10_000, what: "both agents' answers" });
  for (const d of ["q1", "q2"]) {
    assert.equal(answers.get(d)?.error?.code, "unsafe_regex", JSON.stringify(answers.get(d)));
    process.stdout.write(`# ${d} answered the regex bomb in ${(answers.get(d)?.at ?? 0) - sentAt} ms\n`);
  }
  await sleep(4_000);
  for (const watch of watches) watch.stop();
  sub.unsubscribe();
  for (const d of ["q1", "q2"]) {
    const t = [sentAt, ...(beats[d] ?? [])];
    const gaps = t.slice(1).map((x, i) => x - (t[i] as number));
    assert.ok((beats[d] ?? []).length >= 2, `${d}: ${beats[d]?.length ?? 0} heartbeats in 4 s`);
    assert.ok(Math.max(...gaps) < 3_000, `${d}: heartbeat gap ${Math.max(...gaps)} ms (1 s cadence)`);
  }
});

test("a spoofed answer (q1 answering as q2) is not counted for q2", async () => {
  // Root on q1: a client on q1's own leaf answers every query as q2 (matched), on q1's subject and on q2's.
  const leaf = await fleet.leafConnection("q1");
  leaf.subscribe("q.>", {
    callback: (_e, m) => {
      const { id } = m.json<{ id: string }>();
      const fake = JSON.stringify({ id, device: "q2", matched: true, at: Date.now() });
      leaf.publish(`qr.q1.${id}`, fake);
      leaf.publish(`qr.q2.${id}`, fake);
    },
  });
  await leaf.flush();
  await sleep(500);
  const r = await fleet.cli(["query", 'device == "q1"', "--explain", "--json"]);
  assert.equal(r.code, 0, r.stderr);
  const devices = json<QueryJson>(r).devices;
  assert.deepEqual(devices.filter((d) => d.matched).map((d) => d.id), ["q1"], JSON.stringify(devices));
  assert.equal(devices.find((d) => d.id === "q2")?.matched, false, "q2's own answer stands");
});

test("remote config cannot widen exec: a script only in config exec.allow is rejected; the local one still runs", async () => {
  const set = await fleet.cli(["config", "set", "exec.allow", JSON.stringify([scriptA, scriptB]), "--device", "q1"]);
  assert.equal(set.code, 0, set.stderr);
  await waitApplied(fleet, "q1", "exec.allow", [scriptA, scriptB], 60_000);
  const send = async (path: string): Promise<CommandRecord | undefined> => {
    const r = await fleet.cli(["cmd", "send", "--device", "q1", "exec", "--arg", `path=${path}`, "--wait", "--timeout", "60s", "--json"]);
    return json<CommandRecord[]>(r)[0];
  };
  const b = await send(scriptB);
  assert.equal(b?.state, "rejected", JSON.stringify(b));
  assert.match(b?.error?.message ?? "", /not in this device's exec allowlist/);
  const a = await send(scriptA);
  assert.equal(a?.state, "succeeded", JSON.stringify(a));
  assert.equal((a?.result as { stdout?: string }).stdout, "a\n");
});

test("a Wi-Fi password reaches the device once: the command record shows it redacted, and neither the hub's CMD nor the device's mirror keeps it", async () => {
  const secret = "correct-horse-battery";
  const r = await fleet.cli(["cmd", "send", "--device", "q2", "wifi.connect", "--arg", "ssid=lab", "--arg", `password=${secret}`, "--wait", "--timeout", "60s", "--json"]);
  const [rec] = json<CommandRecord[]>(r);
  assert.ok(rec && ["failed", "succeeded"].includes(rec.state), JSON.stringify(rec));
  assert.equal(rec?.args.password, "[redacted]");
  const holds = async (nc: NatsConnection): Promise<number> => {
    const jsm = await jetstreamManager(nc);
    const si = await jsm.streams.info("CMD");
    let found = 0;
    for (let seq = si.state.first_seq; seq <= si.state.last_seq && seq > 0; seq++) {
      const m = await jsm.streams.getMessage("CMD", { seq }).catch(() => null);
      if (m && new TextDecoder().decode(m.data).includes(secret)) found++;
    }
    return found;
  };
  await waitFor(async () => (await holds(hub)) === 0, { timeoutMs: 60_000, what: "the request erased from the hub's CMD" });
  await waitFor(async () => (await holds(await fleet.leafConnection("q2"))) === 0, { timeoutMs: 30_000, what: "the request erased from q2's CMD mirror" });
  const status = await fleet.cli(["cmd", "status", rec?.id ?? "", "--json"]);
  assert.ok(!status.stdout.includes(secret), "cmd status shows the secret");
});
