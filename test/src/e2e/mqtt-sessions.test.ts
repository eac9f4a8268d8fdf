import { test } from "node:test";
import assert from "node:assert/strict";
import { connect } from "node:net";
import { isTerminal, waitFor, type CommandRecord } from "@canopy/protocol";
import { Fleet, freePort, json, tempDir, type AgentHandle } from "../harness/index.js";
import { pahoReplay } from "./mqtt-clients.js";

const DEV = "pi-s";
const bridgePid = (a: AgentHandle): number | undefined => {
  const line = [...a.proc.output].reverse().find((l) => l.includes('"firmware bridge started"'));
  return line ? (JSON.parse(line) as { pid: number }).pid : undefined;
};

test("sleepy MCUs (3.1.1 clean-session=0, MQTT 5 session expiry 1 h): a command sent while they sleep, the bridge restarted, they reconnect without subscribing → each gets the command exactly once and acks it", async (t) => {
  const fleet = await Fleet.start();
  const dir = await tempDir("canopy-mqtt-sessions-");
  t.after(async () => {
    await fleet.stop();
    await dir.remove();
  });
  const port = await freePort();
  const agent = await fleet.startAgent(DEV, { args: ["--bridge-mqtt", `127.0.0.1:${port}`, "--bridge-mqtt-anonymous"] });
  const clients = [
    { id: "sl4", session: { version: 4, clean: false } },
    { id: "sl5", session: { version: 5, clean: false, expiry: 3600 } },
  ];
  // First contact: persistent session, subscribe to its command topics, then sleep (disconnect).
  await waitFor(
    async () => {
      const runs = await Promise.all(clients.map((c) => pahoReplay(dir, port, `${c.id}-a`, { id: c.id, ...c.session, subscribe: [`${c.id}/cmd/+`], stay_ms: 500 })));
      return runs.every((r) => r.code === 0);
    },
    { timeoutMs: 60_000, intervalMs: 1_000, what: "first contact of the sleepy clients" },
  );
  const ids = await Promise.all(
    clients.map(async (c) => {
      const r = await fleet.cli(["cmd", "send", "--device", DEV, "mcu.ping", "--arg", `mcu=${c.id}`, "--ttl", "5m"]);
      assert.equal(r.code, 0, r.stderr);
      return r.stdout.trim();
    }),
  );
  const status = async (id: string): Promise<CommandRecord> => json<CommandRecord>(await fleet.cli(["cmd", "status", id, "--json"]));
  await waitFor(async () => (await Promise.all(ids.map(status))).every((r) => r.state === "running"), { timeoutMs: 30_000, intervalMs: 300, what: "commands waiting for the sleeping MCUs" });

  // Restart the bridge (the agent supervises it): the held commands are asked for again from the new one.
  const old = bridgePid(agent);
  assert.ok(old);
  process.kill(old, "SIGTERM");
  await waitFor(() => (bridgePid(agent) ?? old) !== old, { timeoutMs: 30_000, what: "bridge restarted by the agent" });
  await waitFor(() => new Promise<boolean>((resolve) => {
    const sock = connect(port, "127.0.0.1", () => { sock.destroy(); resolve(true); });
    sock.on("error", () => resolve(false));
  }), { timeoutMs: 30_000, intervalMs: 200, what: "the new bridge listening" });

  // Wake up: same client ids, persistent session resumed (no SUBSCRIBE), answer the command.
  const woke = await Promise.all(
    clients.map((c) =>
      pahoReplay(dir, port, `${c.id}-b`, {
        id: c.id,
        ...c.session,
        respond: { [`${c.id}/cmd/ping`]: [{ topic: `${c.id}/ack/ping`, payload: "ok pong" }] },
        stay_ms: 60_000,
        exit_after_commands: 1,
        linger_ms: 1_500,
      }, 90_000),
    ),
  );
  for (const [i, w] of woke.entries()) {
    assert.equal(w.code, 0, w.stderr + w.stdout);
    assert.deepEqual(w.events.filter((e) => e["event"] === "connected").map((e) => e["session_present"]), [true], `${clients[i]?.id}: ${w.stdout}`);
    assert.deepEqual(w.events.filter((e) => e["event"] === "command").map((e) => e["topic"]), [`${clients[i]?.id}/cmd/ping`]);
  }
  const done = await waitFor(async () => { const all = await Promise.all(ids.map(status)); return all.every((r) => isTerminal(r.state)) && all; }, { timeoutMs: 30_000, intervalMs: 300, what: "commands done" });
  for (const [i, r] of done.entries()) {
    assert.equal(r.state, "succeeded", JSON.stringify(r));
    assert.deepEqual(r.result, { mcu: clients[i]?.id, detail: "pong" });
  }
});
