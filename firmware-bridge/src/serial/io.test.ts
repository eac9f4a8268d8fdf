import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readlinkSync, rmSync } from "node:fs";
import { once } from "node:events";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { waitFor } from "@canopy/protocol";
import { nodeSerialIo, watchDeviceNode } from "./io.js";

async function ptys(dir: string): Promise<{ a: string; b: string; kill(): Promise<void> }> {
  const a = join(dir, "a");
  const b = join(dir, "b");
  rmSync(a, { force: true });
  rmSync(b, { force: true });
  const child = spawn("socat", [`pty,raw,echo=0,link=${a}`, `pty,raw,echo=0,link=${b}`], { stdio: "ignore" });
  await waitFor(() => existsSync(a) && existsSync(b), { timeoutMs: 5_000, what: "socat ptys" });
  return {
    a,
    b,
    kill: async () => {
      const exited = once(child, "exit");
      child.kill("SIGKILL");
      await exited;
    },
  };
}

test("watchDeviceNode: an open pty whose pair is killed is reported gone within ~2 checks; a plain path is not watched", async () => {
  const dir = mkdtempSync(join(tmpdir(), "canopy-io-"));
  try {
    const pair = await ptys(dir);
    const conn = await nodeSerialIo.open(pair.a, 115200);
    const gone: Error[] = [];
    const stop = watchDeviceNode(pair.a, (why) => gone.push(why), 100);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(gone.length, 0, "a live device is not reported");
    const t0 = Date.now();
    await pair.kill();
    await waitFor(() => gone.length > 0, { timeoutMs: 3_000, what: "the vanished pty to be reported" });
    assert.equal(gone.length, 1);
    assert.match(gone[0]!.message, /is gone \(ENOENT\)|is now another device/);
    assert.ok(Date.now() - t0 < 3_000);
    stop();
    await conn.close();
    await conn.closed;

    // Not a device node (the mock binding's paths, a typo): nothing is watched, nothing is reported.
    const notDevice: Error[] = [];
    const stop2 = watchDeviceNode(join(dir, "nothing-here"), (why) => notDevice.push(why), 50);
    await new Promise((r) => setTimeout(r, 300));
    stop2();
    assert.equal(notDevice.length, 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** This process's open fds that point at a pty slave. */
function ptyFds(): number {
  return readdirSync("/proc/self/fd").filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`).startsWith("/dev/pts/");
    } catch {
      return false;
    }
  }).length;
}

test("nodeSerialIo reads on the event loop: bytes both ways, a close releases the fd once, a hangup ends the port", async () => {
  const dir = mkdtempSync(join(tmpdir(), "canopy-io-"));
  try {
    const pair = await ptys(dir);
    const before = ptyFds();
    const a = await nodeSerialIo.open(pair.a, 115200);
    const b = await nodeSerialIo.open(pair.b, 115200);
    assert.equal(ptyFds(), before + 2, "one fd per open port");
    const gotA: Buffer[] = [];
    const gotB: Buffer[] = [];
    a.onData((c) => gotA.push(c));
    b.onData((c) => gotB.push(c));
    // More than one read's worth, so chunks from several slabs are checked too.
    const big = Buffer.alloc(200_000, 0);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7) & 0xff;
    await a.write(big);
    await b.write("pong\n");
    await waitFor(() => Buffer.concat(gotB).length === big.length && Buffer.concat(gotA).toString() === "pong\n", { timeoutMs: 10_000, what: "both directions" });
    assert.ok(Buffer.concat(gotB).equals(big), "bytes arrive intact and in order");

    await b.close();
    assert.equal(await b.closed, undefined, "a close asked for has no cause");
    assert.equal(ptyFds(), before + 1, "the closed port's fd is released");

    // The pty pair vanishing is a hangup on a's side: the port ends by itself (no device watcher here).
    const t0 = Date.now();
    await pair.kill();
    const why = await a.closed;
    assert.ok(why instanceof Error, "a hangup carries its cause");
    assert.ok(Date.now() - t0 < 2_000);
    await waitFor(() => ptyFds() === before, { timeoutMs: 3_000, what: "every pty fd released" });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("readGapMs: a streaming port is read at most once per gap, a quiet one at once", async () => {
  const dir = mkdtempSync(join(tmpdir(), "canopy-io-"));
  try {
    const pair = await ptys(dir);
    const a = await nodeSerialIo.open(pair.a, 115200, undefined, { readGapMs: 100 });
    const b = await nodeSerialIo.open(pair.b, 115200);
    const chunks: Array<{ at: number; n: number }> = [];
    a.onData((c) => chunks.push({ at: Date.now(), n: c.length }));

    const t0 = Date.now();
    await b.write("x");
    await waitFor(() => chunks.length === 1, { timeoutMs: 2_000, what: "the first byte" });
    assert.ok(chunks[0]!.at - t0 < 80, "the first byte on a quiet port is not held back");

    // 20 bytes over ~200 ms: read in a few chunks, not 20.
    for (let i = 0; i < 20; i++) {
      await b.write("y");
      await new Promise((r) => setTimeout(r, 10));
    }
    await waitFor(() => chunks.reduce((s, c) => s + c.n, 0) === 21, { timeoutMs: 3_000, what: "every byte" });
    assert.ok(chunks.length <= 5, `${chunks.length} reads for 21 bytes`);
    for (let i = 1; i < chunks.length; i++) assert.ok(chunks[i]!.at - chunks[i - 1]!.at >= 95, "reads are a gap apart");
    await a.close();
    await b.close();
    await pair.kill();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
