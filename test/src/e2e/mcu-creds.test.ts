import { test } from "node:test";
import assert from "node:assert/strict";
import mqtt from "mqtt";
import { jetstream } from "@nats-io/jetstream";
import { waitFor } from "@canopy/protocol";
import { CanopyProcess, Fleet, countIn, freePort, json } from "../harness/index.js";

interface CredsOut {
  device: string;
  mcu: string;
  username: string;
  password: string;
  command: string;
  state: string;
}

/** Every CMD message the hub holds for `device`, as text. */
async function cmdHistory(fleet: Fleet, device: string): Promise<string[]> {
  const nc = await fleet.hubConnection();
  const c = await jetstream(nc).consumers.get("CMD", { filter_subjects: `cmd.${device}.>` });
  const out: string[] = [];
  for (;;) {
    const batch = await c.fetch({ max_messages: 100, expires: 1_000 });
    let got = 0;
    for await (const m of batch) {
      got++;
      out.push(m.string());
    }
    if (got === 0) return out;
  }
}

test("per-MCU MQTT creds: canopy mcu creds → hashed on the device; sim MCU logs in with them; anonymous, wrong and borrowed creds get 'not authorized'; no takeover; the secret is nowhere in CMD history", async (t) => {
  const fleet = await Fleet.start();
  const procs: CanopyProcess[] = [];
  t.after(async () => {
    await Promise.allSettled(procs.map((p) => p.stop()));
    await fleet.stop();
  });
  const port = await freePort();
  const url = `mqtt://127.0.0.1:${port}`;
  await fleet.startAgent("pi-c", { args: ["--bridge-mqtt", `127.0.0.1:${port}`] });

  // Bad usage is refused before the hub is asked.
  assert.equal((await fleet.cli(["mcu", "creds", "--device", "pi-c", "--mcu", "bad.id"])).code, 2);
  assert.equal((await fleet.cli(["mcu", "creds", "--device", "pi-c"])).code, 2);

  // The bridge starts with the agent: retry until its creds endpoint answers (the command then succeeds).
  const m1 = await waitFor(
    async () => {
      const r = await fleet.cli(["mcu", "creds", "--device", "pi-c", "--mcu", "m1", "--json", "--timeout", "10s"]);
      return r.code === 0 ? json<CredsOut>(r) : undefined;
    },
    { timeoutMs: 60_000, intervalMs: 1_000, what: "creds stored for m1" },
  );
  assert.equal(m1.state, "succeeded");
  assert.equal(m1.username, "m1");
  assert.match(m1.password, /^[A-Za-z0-9_-]{24}$/);
  const human = await fleet.cli(["mcu", "creds", "--device", "pi-c", "--mcu", "m2"]);
  assert.equal(human.code, 0, human.stderr);
  const lastLine = human.stdout.trim().split("\n").at(-1) ?? "";
  const [user2, pass2] = lastLine.split(":") as [string, string];
  assert.equal(user2, "m2");

  // Anonymous and wrong passwords: "not authorized" (3.1.1 return code 5, MQTT 5 reason 0x87).
  await assert.rejects(mqtt.connectAsync(url, { clientId: "m1", reconnectPeriod: 0 }), /Not authorized/i);
  await assert.rejects(mqtt.connectAsync(url, { clientId: "m1", protocolVersion: 5, reconnectPeriod: 0 }), /Not authorized/i);
  await assert.rejects(mqtt.connectAsync(url, { clientId: "m1", username: "m1", password: "wrong", reconnectPeriod: 0 }), /Not authorized/i);
  // m2's valid creds do not open m1's session: creds are bound to the client id.
  await assert.rejects(mqtt.connectAsync(url, { clientId: "m1", username: "m2", password: pass2, reconnectPeriod: 0 }), /Not authorized/i);
  await assert.rejects(mqtt.connectAsync(url, { clientId: "unknown-mcu", username: "unknown-mcu", password: "x", reconnectPeriod: 0 }), /Not authorized/i);

  // The simulated MCU logs in with its creds and its readings reach the hub.
  const sim = new CanopyProcess(["sim", "mcu", "--id", "m1", "--mqtt", `127.0.0.1:${port}`, "--username", "m1", "--password", m1.password, "--rate", "20"]);
  procs.push(sim);
  await sim.waitForOutput(/"event":"connected"/, 20_000);
  const hub = await fleet.hubConnection();
  await waitFor(async () => (await countIn(hub, "FLEET_UP_0", "up.pi-c.tlm.mcu.m1.>")) >= 20, { timeoutMs: 30_000, what: "m1 readings in the hub" });

  // A second connection as m1 with a wrong password does not take over: the sim stays connected.
  await assert.rejects(mqtt.connectAsync(url, { clientId: "m1", username: "m1", password: "guess", reconnectPeriod: 0 }), /Not authorized/i);
  const before = await countIn(hub, "FLEET_UP_0", "up.pi-c.tlm.mcu.m1.>");
  await waitFor(async () => (await countIn(hub, "FLEET_UP_0", "up.pi-c.tlm.mcu.m1.>")) >= before + 20, { timeoutMs: 30_000, what: "m1 keeps publishing" });
  assert.equal(sim.output.filter((l) => l.includes('"event":"link-lost"')).length, 0, sim.output.join("\n"));

  // m2 cannot publish as m1 (MQTT 5: PUBACK "not authorized", connection kept).
  const c2 = await mqtt.connectAsync(url, { clientId: "m2", username: "m2", password: pass2, protocolVersion: 5, reconnectPeriod: 0 });
  await assert.rejects(c2.publishAsync("m1/tlm/forged", "1", { qos: 1 }), /135|Not authorized/i);
  await c2.publishAsync("m2/tlm/own", "1", { qos: 1 });
  await c2.endAsync();
  await waitFor(async () => (await countIn(hub, "FLEET_UP_0", "up.pi-c.tlm.mcu.m2.own")) === 1, { timeoutMs: 30_000, what: "m2's own reading in the hub" });
  assert.equal(await countIn(hub, "FLEET_UP_0", "up.pi-c.tlm.mcu.m1.forged"), 0);

  // The password never travelled: not in CMD (hub stream) nor in the command's record.
  const history = await cmdHistory(fleet, "pi-c");
  assert.ok(history.length >= 2, `CMD holds ${history.length} messages`);
  for (const secret of [m1.password, pass2]) {
    assert.ok(!history.some((h) => h.includes(secret)), "password found in CMD");
    assert.ok(history.some((h) => h.includes("scrypt$")), "CMD carries the hash");
  }
  const status = await fleet.cli(["cmd", "status", m1.command, "--json"]);
  assert.equal(status.code, 0, status.stderr);
  assert.ok(!status.stdout.includes(m1.password));
  assert.equal(json<{ state: string }>(status).state, "succeeded");
});
