import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { sleep, waitFor } from "@canopy/protocol";
import { Fleet, json } from "../harness/index.js";
import { hubLeafNames } from "./support.js";

// `device revoke A` drops A's leaf link at once and keeps it out, across a hub restart; B is untouched;
// `device rotate A` issues new credentials that bring A back.

let fleet: Fleet;

before(async () => {
  fleet = await Fleet.start();
  await fleet.startAgent("A");
  await fleet.startAgent("B");
  await waitFor(async () => (await hubLeafNames(fleet)).length === 2, { timeoutMs: 30_000, what: "A and B linked" });
});
after(async () => {
  await fleet?.stop();
});

async function online(device: string): Promise<boolean> {
  const list = json<{ id: string; online: boolean }[]>(await fleet.cli(["devices", "--json"]));
  return list.find((d) => d.id === device)?.online === true;
}

/** A is not linked at any of `samples` checks `everyMs` apart, while B is. */
async function staysOut(samples: number, everyMs: number): Promise<void> {
  for (let i = 0; i < samples; i++) {
    const names = await hubLeafNames(fleet);
    assert.ok(!names.includes("A"), `A linked again: ${names.join(",")}`);
    await sleep(everyMs);
  }
}

test("device revoke A: A's link is gone within 5 s and reconnects are refused; B untouched", async () => {
  const started = Date.now();
  let goneAt: number | undefined;
  const watcher = (async () => {
    while (goneAt === undefined && Date.now() - started < 120_000) {
      if (!(await hubLeafNames(fleet)).includes("A")) goneAt = Date.now();
      else await sleep(20);
    }
  })();
  const r = await fleet.cli(["device", "revoke", "A", "--json"], 90_000);
  const returnedAt = Date.now();
  assert.equal(r.code, 0, r.stderr);
  assert.equal(json<{ revoked: string[] }>(r).revoked.length, 1);
  await waitFor(() => goneAt !== undefined || Date.now() - returnedAt > 5_000, { timeoutMs: 10_000, intervalMs: 20, what: "A's link gone" });
  await watcher;
  assert.ok(goneAt !== undefined && goneAt - returnedAt <= 5_000, `A still linked 5 s after the revoke returned`);
  process.stdout.write(`# revoke: link gone ${(goneAt ?? 0) - started} ms after the CLI started (CLI ran ${returnedAt - started} ms; gone ${Math.max(0, (goneAt ?? 0) - returnedAt)} ms after it returned)\n`);
  // A's agent keeps redialling every ~1-2 s: every attempt is refused.
  await staysOut(10, 500);
  assert.ok((await hubLeafNames(fleet)).includes("B"));
  assert.equal(await online("B"), true);
  await waitFor(async () => !(await online("A")), { timeoutMs: 15_000, what: "A shown offline" });
});

test("the revocation survives a hub restart (full resolver): A stays out, B comes back", async () => {
  await fleet.restartHub();
  await waitFor(async () => (await hubLeafNames(fleet)).includes("B"), { timeoutMs: 60_000, what: "B relinked after the hub restart" });
  await staysOut(10, 500);
});

test("device rotate A: new credentials bring A back; the old ones stay revoked", async () => {
  const bundle = join(fleet.dir.path, "A-rotated.json");
  const r = await fleet.cli(["device", "rotate", "A", "--bundle", bundle, "--json"], 90_000);
  assert.equal(r.code, 0, r.stderr);
  const out = json<{ userKey: string; revoked: string[]; bundle: string }>(r);
  assert.equal(out.bundle, bundle);
  await fleet.agent("A").proc.stop();
  await fleet.startAgent("A", { enroll: false, args: ["--bundle", bundle] });
  await waitFor(async () => (await hubLeafNames(fleet)).includes("A"), { timeoutMs: 60_000, what: "A relinked with its new credentials" });
  await waitFor(() => online("A"), { timeoutMs: 30_000, what: "A online again" });
  // B too (right after the hub restart of the previous test its leaf may be restarting once: see the
  // mirror watch in the README's notes, so this waits rather than samples).
  await waitFor(() => online("B"), { timeoutMs: 30_000, what: "B online" });
});
