import { createServer } from "node:net";
import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

/**
 * A port that is free on 127.0.0.1 right now, picked *below* the kernel's ephemeral range: a port
 * from the ephemeral range (what `listen(0)` hands out) can be taken by any outgoing connection —
 * a route or leaf link dialling out, another test's client — in the moment between this check and
 * the server binding it, and the server then fails with "address already in use" (seen in CI as a
 * hub node that never came up). Below the range only explicit binds compete. Ports are not handed
 * out twice by one process.
 */
export async function freePort(): Promise<number> {
  const [low, high] = portWindow();
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = low + Math.floor(Math.random() * (high - low));
    if (handedOut.has(port)) continue;
    if (await canBind(port)) {
      handedOut.add(port);
      return port;
    }
  }
  return listenAny(); // a crowded window: fall back to whatever the OS gives
}

const handedOut = new Set<number>();

/** [low, high) below the ephemeral range (32768 on Linux by default), at least 5,000 ports wide. */
function portWindow(): [number, number] {
  let ephemeralLow = 32768;
  try {
    ephemeralLow = Number(readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/)[0]) || ephemeralLow;
  } catch {
    /* not Linux: keep the default */
  }
  const high = Math.min(ephemeralLow, 65536);
  return high - 5_000 >= 10_000 ? [Math.max(10_000, high - 20_000), high] : [high, 65536];
}

function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.unref();
    srv.once("error", () => resolve(false));
    srv.listen({ port, host: "127.0.0.1", exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

function listenAny(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export interface TempDir {
  path: string;
  remove(): Promise<void>;
}

export async function tempDir(prefix = "canopy-test-"): Promise<TempDir> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  return { path, remove: () => rm(path, { recursive: true, force: true }) };
}
