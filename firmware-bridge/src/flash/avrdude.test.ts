import { test } from "node:test";
import assert from "node:assert/strict";
import { chmod, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { existsSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { waitFor } from "@canopy/protocol";
import type { SerialConnection, SerialIo } from "../serial/io.js";
import { AvrdudeFlasher } from "./avrdude.js";
import { FlashError, type FlashProgress, type FlashRequest } from "./flasher.js";

const HEX = ":100000000C9434000C943E000C943E000C943E0082\n:00000001FF\n";

/** Fake avrdude scripts: record their argv and the image they were given, then act out one outcome. */
async function fakes(t: { after(fn: () => Promise<void>): void }) {
  const dir = await mkdtemp(join(tmpdir(), "canopy-fake-avrdude-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const head = `#!/bin/sh\nprintf '%s\\n' "$@" > "${dir}/args"\nfor a; do case "$a" in flash:w:*) f=\${a#flash:w:}; cp "\${f%:?}" "${dir}/image";; esac; done\n`;
  const bar = (word: string) => `printf '\\n${word} | ' >&2; for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25; do printf '##' >&2; done; printf ' | 100%% 0.01s\\n\\n' >&2\n`;
  const bodies = {
    ok: `echo 'avrdude: writing 16 bytes flash ...' >&2\n${bar("Writing")}echo 'avrdude: 16 bytes of flash written' >&2\necho 'avrdude: verifying flash memory against x' >&2\n${bar("Reading")}echo 'avrdude: 16 bytes of flash verified' >&2\nexit 0\n`,
    verify: `echo 'avrdude: writing 16 bytes flash ...' >&2\n${bar("Writing")}echo 'avrdude: verifying flash memory against x' >&2\necho 'avrdude: verification mismatch' >&2\nexit 1\n`,
    nosync: `echo 'avrdude stk500_getsync() warning: attempt 10 of 10: not in sync: resp=0x00' >&2\nexit 1\n`,
    // Not in sync on the first run only (a missed auto-reset), fine on the second.
    flaky: `if [ ! -e "${dir}/ran" ]; then : > "${dir}/ran"; echo 'avrdude stk500_recv() error: programmer is not responding' >&2; exit 1; fi\necho 'avrdude: writing 16 bytes flash ...' >&2\necho 'avrdude: 16 bytes of flash written' >&2\nexit 0\n`,
    // A child in the same process group that outlives a plain kill of avrdude's own pid.
    hang: `sleep 300 & echo $! > "${dir}/child"\nwait\n`,
    stubborn: `trap '' TERM\necho $$ > "${dir}/self"\nsleep 300 & echo $! > "${dir}/child"\nwhile :; do sleep 1; done\n`,
  };
  const paths = {} as Record<keyof typeof bodies, string>;
  for (const name of Object.keys(bodies) as Array<keyof typeof bodies>) {
    paths[name] = join(dir, name);
    await writeFile(paths[name], head + bodies[name]);
    await chmod(paths[name], 0o755);
  }
  return { dir, paths };
}

function request(over: Partial<FlashRequest> = {}): FlashRequest & { events: FlashProgress[] } {
  const events: FlashProgress[] = [];
  return {
    port: "/dev/ttyFAKE0",
    image: { data: Buffer.from(HEX), format: "avr-hex", sha256: "x", version: "1.2.3", board: "uno" },
    signal: new AbortController().signal,
    deadlineMs: 20_000,
    onProgress: (p) => events.push(p),
    options: { banner: "off" },
    ...over,
    events,
  };
}

const isFlashError = (code: string) => (e: unknown) => e instanceof FlashError && e.code === code;

/** Running, not a zombie waiting for a reaper (PID 1 in a container may be slow to reap orphans). */
function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

test("avrdude flasher: arguments, the image handed over, progress phases, temp file removed", async (t) => {
  const f = await fakes(t);
  const req = request({ options: { banner: "off", part: "m328p", programmer: "arduino" }, baud: 115200 });
  const res = await new AvrdudeFlasher({ command: f.paths.ok }).flash(req);
  assert.deepEqual(res, { confirmed: false, bytesSent: 16 });
  const args = (await readFile(join(f.dir, "args"), "utf8")).trim().split("\n");
  const file = (args.at(-1) ?? "").replace(/^flash:w:/, "").replace(/:i$/, "");
  assert.deepEqual(args, ["-c", "arduino", "-b", "115200", "-p", "m328p", "-P", "/dev/ttyFAKE0", "-U", `flash:w:${file}:i`]);
  assert.equal(await readFile(join(f.dir, "image"), "utf8"), HEX);
  assert.equal(existsSync(file), false, "temp image removed");
  const phases = [...new Set(req.events.map((e) => e.phase))];
  assert.deepEqual(phases, ["preparing", "flashing", "verifying"]);
  assert.deepEqual(req.events.filter((e) => e.bytes === 16).map((e) => e.phase), ["flashing", "verifying"]);
});

test("avrdude flasher: exit codes and messages become FlashError codes", async (t) => {
  const f = await fakes(t);
  await assert.rejects(new AvrdudeFlasher({ command: f.paths.verify }).flash(request()), isFlashError("verify_failed"));
  await assert.rejects(new AvrdudeFlasher({ command: f.paths.nosync }).flash(request()), isFlashError("no_response"));
  await assert.rejects(new AvrdudeFlasher({ command: join(f.dir, "missing") }).flash(request()), (e: unknown) => isFlashError("tool_failed")(e) && /not found/.test((e as Error).message));
  await rm(join(f.dir, "args"));
  const bad = request({ image: { data: Buffer.from(HEX.replace("82\n", "00\n")), format: "avr-hex", sha256: "x", version: "1", board: "uno" } });
  await assert.rejects(new AvrdudeFlasher({ command: f.paths.ok }).flash(bad), isFlashError("bad_image"));
  assert.equal(existsSync(join(f.dir, "args")), false, "avrdude never ran for a bad image");
  const uf2 = request({ image: { data: Buffer.alloc(512), format: "uf2", sha256: "x", version: "1", board: "uno" } });
  await assert.rejects(new AvrdudeFlasher({ command: f.paths.ok }).flash(uf2), isFlashError("bad_image"));
  await assert.rejects(new AvrdudeFlasher({ command: f.paths.ok }).flash(request({ options: { part: "--help" } })), /avrdude part/);
});

test("avrdude flasher: a bootloader that did not answer gets another attempt, within the attempts asked for", async (t) => {
  const f = await fakes(t);
  const req = request();
  assert.deepEqual(await new AvrdudeFlasher({ command: f.paths.flaky }).flash(req), { confirmed: false, bytesSent: 16 });
  assert.equal(req.events.filter((e) => e.phase === "preparing" && /attempt 1 of 2: .*did not answer/.test(e.detail ?? "")).length, 1);
  await rm(join(f.dir, "ran"));
  await assert.rejects(new AvrdudeFlasher({ command: f.paths.flaky }).flash(request({ options: { banner: "off", attempts: "1" } })), isFlashError("no_response"));
  await assert.rejects(new AvrdudeFlasher({ command: f.paths.verify }).flash(request({ options: { banner: "off", attempts: "3" } })), isFlashError("verify_failed"));
});

test("avrdude flasher: cancel kills the whole process group", async (t) => {
  const f = await fakes(t);
  const ctl = new AbortController();
  const running = new AvrdudeFlasher({ command: f.paths.hang }).flash(request({ signal: ctl.signal }));
  const child = await waitFor(async () => Number(await readFile(join(f.dir, "child"), "utf8").catch(() => "")) || undefined, { timeoutMs: 5000, what: "fake avrdude started" });
  ctl.abort();
  await assert.rejects(running, isFlashError("cancelled"));
  await waitFor(() => !alive(child), { timeoutMs: 5000, what: "avrdude's child gone" });
});

test("avrdude flasher: the deadline ends a stuck avrdude, SIGKILL when it ignores SIGTERM", async (t) => {
  const f = await fakes(t);
  const started = Date.now();
  const running = new AvrdudeFlasher({ command: f.paths.stubborn, killGraceMs: 200 }).flash(request({ deadlineMs: 600 }));
  await assert.rejects(running, isFlashError("timeout"));
  assert.ok(Date.now() - started < 5000, "gave up promptly");
  const self = Number(await readFile(join(f.dir, "self"), "utf8"));
  await waitFor(() => !alive(self), { timeoutMs: 5000, what: "the avrdude that ignored SIGTERM killed" });
});

/** A scriptable MCU behind the SerialIo seam: answers "who" with a hello line after some noise. */
function fakeMcu(hello: string): SerialIo & { opened: number } {
  const io = {
    opened: 0,
    open(path: string): Promise<SerialConnection> {
      io.opened++;
      let cb: ((b: Buffer) => void) | undefined;
      let close!: () => void;
      const closed = new Promise<undefined>((r) => (close = () => r(undefined)));
      return Promise.resolve({
        path,
        closed,
        onData: (c: (b: Buffer) => void) => void (cb = c),
        write: (d: Uint8Array | string) => {
          if (String(d) === "who\n") setTimeout(() => cb?.(Buffer.from(`\u0014\u0010${hello}\n`)), 5);
          return Promise.resolve();
        },
        close: () => Promise.resolve(close()),
      });
    },
  };
  return io;
}

test("avrdude flasher: the banner after the write confirms the version (and the MCU when asked)", async (t) => {
  const f = await fakes(t);
  const ok = request({ options: { mcu: "avr-1" } });
  assert.deepEqual(await new AvrdudeFlasher({ command: f.paths.ok, io: fakeMcu("hello avr-1 uno 1.2.3") }).flash(ok), { bootedVersion: "1.2.3", confirmed: true, bytesSent: 16 });
  assert.deepEqual(ok.events.slice(-2).map((e) => e.phase), ["booting", "confirming"]);
  const old = await new AvrdudeFlasher({ command: f.paths.ok, io: fakeMcu("hello avr-1 uno 1.2.2") }).flash(request({ options: {} }));
  assert.deepEqual(old, { bootedVersion: "1.2.2", confirmed: false, bytesSent: 16 });
  const other = await new AvrdudeFlasher({ command: f.paths.ok, io: fakeMcu("hello avr-2 uno 1.2.3") }).flash(request({ options: { mcu: "avr-1" } }));
  assert.equal(other.confirmed, false);
  const silent = await new AvrdudeFlasher({ command: f.paths.ok, io: fakeMcu("garbage"), bannerWindowMs: 300 }).flash(request({ options: {} }));
  assert.deepEqual(silent, { confirmed: false, bytesSent: 16 });
});
