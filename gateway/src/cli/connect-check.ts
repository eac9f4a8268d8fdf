import { createConnection } from "node:net";
import type { NatsConnection } from "@nats-io/transport-node";
import { RequestError, TimeoutError } from "@nats-io/nats-core";
import { Assets, CanopyError, ErrorCode } from "@canopy/protocol";
import { connectHub } from "../nats.js";
import type { Target } from "./contexts/resolve.js";

/** Whatever the server at the other end does, an operator command knows within this time. */
export const CONNECT_TIMEOUT_MS = 5_000;
const HUB_DOMAIN = "hub";

/**
 * Connects an operator command to the hub and checks it is one: NATS that answers within 5 s (an HTTP
 * port never sends the NATS INFO line), with JetStream in domain `hub` and Canopy's registry stream.
 */
export async function connectOperator(target: Target, opts: { name?: string; reconnect?: boolean } = {}): Promise<NatsConnection> {
  await probeNats(target);
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(notNats(target, undefined)), CONNECT_TIMEOUT_MS + 500);
  });
  const attempt = connectHub(
    { server: target.server, ...(target.creds ? { creds: target.creds } : {}), ...(target.ca ? { ca: target.ca } : {}) },
    { name: opts.name ?? "canopy-cli", daemon: opts.reconnect === true },
  );
  let nc: NatsConnection;
  try {
    nc = await Promise.race([attempt, deadline]);
  } catch (err) {
    attempt.then((late) => late.close(), () => {});
    if (err instanceof CanopyError && isTimeout(err.cause)) throw notNats(target, err);
    throw err;
  } finally {
    clearTimeout(timer);
  }
  try {
    await checkCanopyHub(nc, target.server);
  } catch (err) {
    await nc.close().catch(() => {});
    throw err;
  }
  return nc;
}

/** A NATS server sends its INFO line as soon as a client connects; an HTTP server waits for a request. */
const INFO_WAIT_MS = 3_000;

/**
 * Opens a plain TCP connection first and reads the first bytes, so a wrong port is named within
 * ~3 s instead of after the client's full connect timeout. Refused connections are left to
 * connectHub, which says how to start a hub.
 */
export async function probeNats(target: Target): Promise<void> {
  let host: string;
  let port: number;
  try {
    const u = new URL(target.server.replace(/^(nats|tls):/, "http:"));
    host = u.hostname.replace(/^\[|\]$/g, "");
    port = Number(u.port || 4222);
  } catch {
    throw new CanopyError(ErrorCode.InvalidInput, `--server ${JSON.stringify(target.server)} is not a URL like nats://HOST:PORT`);
  }
  const first = await new Promise<string | "refused">((resolve) => {
    const sock = createConnection({ host, port });
    const done = (v: string): void => {
      clearTimeout(timer);
      sock.destroy();
      resolve(v);
    };
    const timer = setTimeout(() => done(""), INFO_WAIT_MS);
    sock.once("data", (d: Buffer) => done(d.toString("latin1", 0, Math.min(d.length, 64))));
    sock.once("error", () => done("refused"));
    sock.once("end", () => done(""));
  });
  if (first === "refused" || first.startsWith("INFO")) return;
  const said = first.trim().split(/\r?\n/)[0] ?? "";
  throw new CanopyError(
    ErrorCode.Unavailable,
    `${target.server} is not a NATS server (${said ? `it answered ${JSON.stringify(said.slice(0, 40))}` : `no NATS greeting within ${INFO_WAIT_MS / 1000} s`}; from ${target.from}${target.context ? ` '${target.context}'` : ""}); ` +
      `is it an HTTP or monitoring port? Use the hub's client port (the 'client' URL 'canopy hub start' prints)`,
  );
}

/** JetStream account info says which domain answers; the registry's KV stream marks a Canopy hub. */
export async function checkCanopyHub(nc: NatsConnection, url: string): Promise<void> {
  const not = (why: string): CanopyError =>
    new CanopyError(ErrorCode.Unavailable, `${url} is a NATS server but not a Canopy hub (${why}); start one with 'canopy hub start'`);
  const info = await apiRequest(nc, "$JS.API.INFO");
  if (info === "no-responders") throw not("JetStream is not enabled");
  const domain = typeof info === "object" && info !== null ? (info as { domain?: unknown }).domain : undefined;
  if (domain !== HUB_DOMAIN) throw not(`no '${HUB_DOMAIN}' JetStream domain${typeof domain === "string" ? `; its domain is '${domain}'` : ""}`);
  const stream = await apiRequest(nc, `$JS.API.STREAM.INFO.KV_${Assets.kvDevices}`);
  const code = typeof stream === "object" && stream !== null ? (stream as { error?: { code?: number } }).error?.code : undefined;
  if (stream === "no-responders" || code === 404) throw not("no Canopy streams: the gateway has not provisioned it");
}

async function apiRequest(nc: NatsConnection, subject: string): Promise<unknown> {
  try {
    const m = await nc.request(subject, "", { timeout: 3_000 });
    return m.json<unknown>();
  } catch (err) {
    if (err instanceof RequestError && err.isNoResponders()) return "no-responders";
    if (isTimeout(err)) throw new CanopyError(ErrorCode.Timeout, `${subject}: no answer within 3 s`, { cause: err });
    throw err;
  }
}

function isTimeout(err: unknown): boolean {
  return err instanceof TimeoutError || (err instanceof RequestError && err.cause instanceof TimeoutError);
}

function notNats(target: Target, cause: unknown): CanopyError {
  return new CanopyError(
    ErrorCode.Unavailable,
    `no NATS server answered at ${target.server} within ${CONNECT_TIMEOUT_MS / 1000} s (from ${target.from}${target.context ? ` '${target.context}'` : ""}); ` +
      `is it an HTTP or monitoring port? Use the hub's client port (the 'client' URL 'canopy hub start' prints)`,
    { cause },
  );
}
