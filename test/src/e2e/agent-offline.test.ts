import { test, after } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { connect } from "@nats-io/transport-node";
import { jetstream } from "@nats-io/jetstream";
import { waitFor } from "@canopy/protocol";
import { CanopyProcess, freePort, tempDir, type TempDir } from "../harness/index.js";

let dir: TempDir | undefined;
let agent: CanopyProcess | undefined;
after(async () => {
  await agent?.stop();
  await dir?.remove();
});

interface LogLine {
  level: number;
  msg: string;
  attempt?: number;
  retryInMs?: number;
}

test("agent with an unreachable hub keeps running, serves local clients, retries with jittered backoff, logs once per step", async () => {
  dir = await tempDir();
  const deadHub = await freePort(); // nothing listens here
  agent = new CanopyProcess([
    "agent", "--device", "lonely", "--hub", `nats-leaf://127.0.0.1:${deadHub}`, "--data", join(dir.path, "a"),
    "--port", "-1", "--heartbeat", "1s",
  ]);
  const ready = JSON.parse(await agent.waitForOutput(/"event":"agent-ready"/)) as { leaf: string };

  // The leaf serves local clients: a device app's publish is stored in UP while the hub is away.
  const nc = await connect({ servers: ready.leaf });
  const ack = await jetstream(nc).publish("up.lonely.tlm.temp", "21.5");
  assert.equal(ack.stream, "UP");
  await nc.close();

  // Watch the retry log for 12 s.
  const started = Date.now();
  await waitFor(() => Date.now() - started > 12_000, { timeoutMs: 15_000, intervalMs: 250 });
  assert.ok(agent.running, "agent still running");
  const logs = agent.output.flatMap((l) => {
    try {
      return [JSON.parse(l) as LogLine];
    } catch {
      return [];
    }
  });
  const retries = logs.filter((l) => l.msg === "hub unreachable; will retry");
  // Backoff 1 s doubling to 15 s: about 4 attempts in 12 s; a fixed 1 s loop would log 12.
  assert.ok(retries.length >= 2 && retries.length <= 7, `retry lines: ${retries.length}`);
  retries.forEach((r, i) => assert.equal(r.attempt, i + 1, "one line per backoff step"));
  const waits = retries.map((r) => r.retryInMs ?? 0);
  for (let i = 1; i < waits.length; i++) {
    assert.ok((waits[i] ?? 0) >= (waits[i - 1] ?? 0), `backoff grows: ${waits.join(",")}`);
  }
  // Jitter: delays are not the bare powers of two.
  assert.ok(waits.some((w, i) => w !== 1000 * 2 ** i), `jittered: ${waits.join(",")}`);
  // No flood from anything else (the leaf's own reconnect errors go to debug).
  const noisy = logs.filter((l) => l.level >= 40 && l.msg !== "hub unreachable; will retry");
  assert.ok(noisy.length <= 2, `other warnings/errors: ${noisy.map((l) => l.msg).join(" | ")}`);
});
