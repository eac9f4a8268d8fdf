import { createServer } from "node:net";
import { readFileSync } from "node:fs";

/**
 * A TCP port free on `host` right now, for a server that will bind it a moment later (a nats-server
 * given `port: N` in its config, or restarted on the same port).
 *
 * Picked *below* the kernel's ephemeral range: a port from that range (what `listen(0)` hands out)
 * can be taken by any outgoing connection — a route or leaf link dialling out — between this check
 * and the server binding it, and the server then fails with "address already in use" (seen as a hub
 * cluster node that never came up). Below the range only explicit binds compete. One process never
 * hands the same port out twice. Falls back to any free port when the window is crowded.
 */
export async function freePort(host = "127.0.0.1"): Promise<number> {
  const [low, high] = portWindow();
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = low + Math.floor(Math.random() * (high - low));
    if (handedOut.has(port)) continue;
    if (await canBind(port, host)) {
      handedOut.add(port);
      return port;
    }
  }
  return listenAny(host);
}

const handedOut = new Set<number>();

/** [low, high): up to 20,000 ports right below the ephemeral range (32768 on Linux by default). */
export function portWindow(): [number, number] {
  let ephemeralLow = 32768;
  try {
    ephemeralLow = Number(readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/)[0]) || ephemeralLow;
  } catch {
    /* not Linux: keep the default */
  }
  const high = Math.min(ephemeralLow, 65536);
  // A range set unusually low leaves no room below it: use the ports above it instead.
  return high - 5_000 >= 10_000 ? [Math.max(10_000, high - 20_000), high] : [high, 65536];
}

function canBind(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.unref();
    srv.once("error", () => resolve(false));
    srv.listen({ port, host, exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

function listenAny(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once("error", reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}
