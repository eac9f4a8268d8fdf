import { createConnection } from "node:net";
import type { NatsConnection } from "@nats-io/transport-node";
import { RequestError, TimeoutError } from "@nats-io/nats-core";
import { Assets, CanopyError, ErrorCode } from "@canopy/protocol";
import { connectHub } from "../nats.js";
import type { Target } from "./contexts/resolve.js";

const HUB_DOMAIN = "hub";

/**
 * Connects an operator command to the hub and checks it is one: NATS that answers within 5 s (an HTTP
 * port never sends the NATS INFO line), with JetStream in domain `hub` and Canopy's registry stream.
 */
export async function connectOperator(target: Target, opts: { name?: string; reconnect?: boolean } = {}): Promise<NatsConnection> {
  // The probe names a wrong port within seconds; past it, the client's own connect timeout applies
  // (a loaded machine can take seconds to finish the handshake and the credentials exchange).
  await probeNats(target);
  const nc = await connectHub(
    { server: target.server, ...(target.creds ? { creds: target.creds } : {}), ...(target.ca ? { ca: target.ca } : {}) },
    { name: opts.name ?? "canopy-cli", daemon: opts.reconnect === true },
  ).catch((err: unknown) => {
    if (err instanceof CanopyError && isTimeout(err.cause)) {
      throw new CanopyError(ErrorCode.Unavailable, `the NATS server at ${target.server} ${origin(target)} greeted but did not complete the connection in time (overloaded, or a TLS/credentials mismatch)`, { cause: err });
    }
    throw err;
  });
  try {
    await checkCanopyHub(nc, target.server);
  } catch (err) {
    await nc.close().catch(() => {});
    throw err;
  }
  return nc;
}

function origin(t: Target): string {
  return t.from === "context" && t.context ? `(from context '${t.context}')` : `(from ${t.from})`;
}

/** A NATS server sends its INFO line as soon as a client connects; an HTTP server waits for a request. */
const INFO_WAIT_MS = 2_800;

/**
 * Opens a plain TCP connection first and reads the first bytes, so a wrong port is named within
 * ~3 s instead of after the client's full connect timeout. Refused connections are left to
 * connectHub, which says how to start a hub.
 */
export async function probeNats(target: Target): Promise<void> {
  // A hub cluster is a comma-separated list (one URL per node): each is checked, a node that is down
  // (refused) is fine as long as the client can reach another.
  const urls = target.server.split(",").map((u) => u.trim());
  await Promise.all(urls.map((server) => probeOne({ ...target, server }, target.server)));
}

async function probeOne(target: Target, given: string): Promise<void> {
  let host: string;
  let port: number;
  try {
    if (!target.server) throw new Error("empty");
    const u = new URL(target.server.replace(/^(nats|tls):/, "http:"));
    host = u.hostname.replace(/^\[|\]$/g, "");
    port = Number(u.port || 4222);
  } catch {
    throw new CanopyError(ErrorCode.InvalidInput, `--server ${JSON.stringify(given)} is not a URL like nats://HOST:PORT (or a comma-separated list of them)`);
  }
  const first = await new Promise<string | "refused">((resolve) => {
    const sock = createConnection({ host, port });
    let timer: NodeJS.Timeout | undefined;
    const done = (v: string): void => {
      clearTimeout(timer);
      sock.destroy();
      resolve(v);
    };
    // Silence for INFO_WAIT_MS: a busy NATS server, or an HTTP server waiting for a request. Ask
    // like an HTTP client would: HTTP answers at once ("HTTP/1.1 400 …"), NATS still greets with
    // INFO (then rejects the line, harmless: the socket is dropped). Total bound: 2 × INFO_WAIT_MS.
    timer = setTimeout(() => {
      sock.write("GET / HTTP/1.0\r\n\r\n");
      timer = setTimeout(() => done(""), INFO_WAIT_MS);
    }, INFO_WAIT_MS);
    sock.once("data", (d: Buffer) => done(d.toString("latin1", 0, Math.min(d.length, 64))));
    sock.once("error", () => done("refused"));
    sock.once("end", () => done(""));
  });
  if (first === "refused" || first.startsWith("INFO")) return;
  const said = first.trim().split(/\r?\n/)[0] ?? "";
  throw new CanopyError(
    ErrorCode.Unavailable,
    `${target.server} ${origin(target)} is not a NATS server (${said ? `it answered ${JSON.stringify(said.slice(0, 40))}` : `no NATS greeting within ${(2 * INFO_WAIT_MS) / 1000} s`}); ` +
      `is it an HTTP or monitoring port? Use the hub's client port (the 'client' URL 'canopy hub start' prints)`,
  );
}

/** JetStream account info says which domain answers; the registry's KV stream marks a Canopy hub. */
export async function checkCanopyHub(nc: NatsConnection, url: string): Promise<void> {
  const not = (why: string): CanopyError =>
    new CanopyError(ErrorCode.Unavailable, `${url} is a NATS server but not a Canopy hub (${why}); start one with 'canopy hub start'`);
  // Only definite answers decide: a slow one (a hub cluster electing its meta or stream leader
  // after a node died) lets the command go on and meet the hub as it is.
  const slow = (err: unknown): "slow" => {
    if (err instanceof CanopyError && err.code === ErrorCode.Timeout) return "slow";
    throw err;
  };
  const info = await apiRequest(nc, "$JS.API.INFO").catch(slow);
  if (info === "no-responders") throw not("JetStream is not enabled");
  if (info === "slow") return;
  const domain = typeof info === "object" && info !== null ? (info as { domain?: unknown }).domain : undefined;
  if (domain !== HUB_DOMAIN) throw not(`no '${HUB_DOMAIN}' JetStream domain${typeof domain === "string" ? `; its domain is '${domain}'` : ""}`);
  const stream = await apiRequest(nc, `$JS.API.STREAM.INFO.KV_${Assets.kvDevices}`).catch(slow);
  const code = typeof stream === "object" && stream !== null ? (stream as { error?: { code?: number } }).error?.code : undefined;
  if (stream === "no-responders" || code === 404) throw not("no Canopy streams: the gateway has not provisioned it");
}

/** A clustered hub elects a JetStream leader for a few seconds after a node dies: allow for it. */
const API_WAIT_MS = 10_000;

async function apiRequest(nc: NatsConnection, subject: string): Promise<unknown> {
  try {
    const m = await nc.request(subject, "", { timeout: API_WAIT_MS });
    return m.json<unknown>();
  } catch (err) {
    if (err instanceof RequestError && err.isNoResponders()) return "no-responders";
    if (isTimeout(err)) throw new CanopyError(ErrorCode.Timeout, `${subject}: no answer within ${API_WAIT_MS / 1000} s`, { cause: err });
    throw err;
  }
}

export function isTimeout(err: unknown): boolean {
  return err instanceof TimeoutError || (err instanceof RequestError && err.cause instanceof TimeoutError);
}
