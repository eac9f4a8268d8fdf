import { CanopyError, ErrorCode, checkId, errorMessage } from "@canopy/protocol";
import { RolloutStore } from "../config/rollouts.js";
import { prepareQuery, runQuery, type QueryOptions } from "../query/index.js";
import { deviceRoutes } from "./device-api.js";
import { readJson } from "./respond.js";
import { route, STREAMED, type ApiRequest, type Route } from "./routes.js";
import type { FleetChange } from "./feed.js";

/** Longest a console query may wait for silent devices. */
const MAX_QUERY_TIMEOUT_MS = 30_000;

async function fleetEvents({ req, res, services }: ApiRequest): Promise<typeof STREAMED> {
  res.writeHead(200, { "Content-Type": "text/event-stream", "Cache-Control": "no-store", Connection: "keep-alive", "X-Accel-Buffering": "no" });
  res.write("retry: 2000\n\n");
  const send = (c: FleetChange): void => void res.write(`event: ${c.kind}\ndata: ${JSON.stringify(c)}\n\n`);
  const unsubscribe = services.feed.subscribe(send);
  // A comment every 15 s keeps proxies from closing an idle stream.
  const ping = setInterval(() => res.write(": ping\n\n"), 15_000);
  const close = (): void => {
    clearInterval(ping);
    unsubscribe();
  };
  req.once("close", close);
  res.once("error", close);
  return STREAMED;
}

async function rollouts({ services }: ApiRequest): Promise<unknown> {
  return (await RolloutStore.open(services.nc)).list();
}

async function abortRollout({ params, services }: ApiRequest): Promise<unknown> {
  return (await RolloutStore.open(services.nc)).requestAbort(checkId(params.id, "id"));
}

function queryOptions(body: Record<string, unknown>): QueryOptions {
  const str = (k: string): string | undefined => {
    const v = body[k];
    if (v === undefined || v === null || v === "") return undefined;
    if (typeof v !== "string") throw new CanopyError(ErrorCode.InvalidInput, `${k} must be a string`);
    return v;
  };
  const timeoutMs = body.timeoutMs === undefined ? 2_000 : Number(body.timeoutMs);
  if (!Number.isInteger(timeoutMs) || timeoutMs <= 0 || timeoutMs > MAX_QUERY_TIMEOUT_MS) {
    throw new CanopyError(ErrorCode.InvalidInput, `timeoutMs must be an integer from 1 to ${MAX_QUERY_TIMEOUT_MS}`);
  }
  return { expr: str("expr"), group: str("group"), device: str("device"), timeoutMs, facts: true };
}

/**
 * `POST /api/query`: one live query, streamed as NDJSON — an `answer` line per device as it answers,
 * then a `done` line with the silent devices (and their fact ages) and the summary.
 */
async function query({ req, res, services }: ApiRequest): Promise<typeof STREAMED> {
  const opts = queryOptions(await readJson(req));
  prepareQuery(opts); // a bad expression is a 400 before anything is sent
  const ac = new AbortController();
  req.once("close", () => ac.abort());
  res.writeHead(200, { "Content-Type": "application/x-ndjson", "Cache-Control": "no-store" });
  const line = (v: unknown): void => void res.write(JSON.stringify(v) + "\n");
  try {
    const result = await runQuery(services.nc, { ...opts, signal: ac.signal, onAnswer: (answer) => line({ type: "answer", answer }) });
    services.metrics.observeQuery(result.summary.elapsedMs / 1000);
    line({ type: "done", id: result.id, expr: result.expr, silent: result.silent, summary: result.summary });
  } catch (err) {
    line({ type: "error", error: { code: err instanceof CanopyError ? err.code : ErrorCode.Internal, message: errorMessage(err) } });
  }
  res.end();
  return STREAMED;
}

export function apiRoutes(): Route[] {
  return [
    route("GET", "/api/session", async ({ session }) => ({ id: session.id, readOnly: session.readOnly, expiresAt: session.expiresAt })),
    route("GET", "/api/fleet", async ({ services }) => services.feed.current()),
    route("GET", "/api/fleet/events", fleetEvents),
    ...deviceRoutes(),
    route("GET", "/api/rollouts", rollouts),
    route("POST", "/api/rollouts/:id/abort", abortRollout, true),
    route("POST", "/api/query", query),
  ];
}
