import { CanopyError, CommandName, ErrorCode, MAX_COMMAND_TTL_MS, check, checkId, parseDuration } from "@canopy/protocol";
import { CommandSender, CommandStore } from "../commands/index.js";
import { ConfigService } from "../config/operations.js";
import { Registry } from "../registry/devices.js";
import { toRow } from "./feed.js";
import { REDACTED, isSecretKey, redact } from "./redact.js";
import { readJson } from "./respond.js";
import { route, type ApiRequest, type Route } from "./routes.js";
import { metricsOf, recentEvents, series } from "./telemetry.js";

const MAX_WINDOW_MS = 7 * 86_400_000;

function windowParam(url: URL, name: string, fallback: string): number {
  const ms = parseDuration(url.searchParams.get(name) ?? fallback, name);
  if (!(ms > 0 && ms <= MAX_WINDOW_MS)) throw new CanopyError(ErrorCode.InvalidInput, `${name} must be more than 0 and at most 7d`);
  return ms;
}

function intParam(url: URL, name: string, fallback: number, max: number): number {
  const raw = url.searchParams.get(name);
  const n = raw === null ? fallback : Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > max) throw new CanopyError(ErrorCode.InvalidInput, `${name} must be an integer from 1 to ${max}`);
  return n;
}

/** Registry record, presence, facts, MCUs and backlog of one device. */
async function device({ params, services }: ApiRequest): Promise<unknown> {
  const id = checkId(params.id, "device id");
  const reg = await Registry.open(services.nc);
  const record = await reg.get(id);
  if (!record) throw new CanopyError(ErrorCode.NotFound, `device ${id} is not enrolled`);
  const now = Date.now();
  const view = (await reg.view(now)).find((v) => v.record.id === id);
  const backlog = services.feed.backlogOf(id) ?? null;
  const status = view?.status;
  return {
    row: view ? toRow(view, backlog?.pending ?? null) : null,
    record,
    facts: status?.facts ?? null,
    up: status?.up ?? null,
    mcus: (status?.mcus ?? []).map((m) => ({ ...m, online: m.online && (view?.online ?? false) })),
    agent: status?.agent ?? null,
    natsServer: status?.natsServer ?? null,
    startedAt: status?.startedAt ?? null,
    backlog,
  };
}

async function sendCommand({ req, params, session, services }: ApiRequest): Promise<unknown> {
  const id = checkId(params.id, "device id");
  const body = await readJson(req);
  const name = check(CommandName, body.name);
  const args = body.args ?? {};
  if (typeof args !== "object" || args === null || Array.isArray(args)) throw new CanopyError(ErrorCode.InvalidInput, "args must be a JSON object");
  const ttlMs = body.ttl === undefined ? undefined : parseDuration(String(body.ttl), "ttl");
  if (ttlMs !== undefined && !(ttlMs > 0 && ttlMs <= MAX_COMMAND_TTL_MS)) throw new CanopyError(ErrorCode.InvalidInput, "ttl must be more than 0 and at most 30d");
  if (!(await (await Registry.open(services.nc)).get(id))) throw new CanopyError(ErrorCode.NotFound, `device ${id} is not enrolled`);
  const sender = await CommandSender.open(services.nc);
  const rec = await sender.send({ device: id, name, args: args as Record<string, unknown>, ...(ttlMs ? { ttlMs } : {}), by: `console:${session.id}` });
  return redact(rec);
}

export function deviceRoutes(): Route[] {
  return [
    route("GET", "/api/devices/:id", device),
    route("GET", "/api/devices/:id/metrics", async ({ params, services }) => metricsOf(services.nc, checkId(params.id, "device id"))),
    route("GET", "/api/devices/:id/telemetry", async ({ params, url, services }) => {
      const metric = url.searchParams.get("metric");
      if (!metric) throw new CanopyError(ErrorCode.InvalidInput, "give ?metric=<name> (see /api/devices/<id>/metrics)");
      return series(services.nc, checkId(params.id, "device id"), metric, windowParam(url, "since", "1h"));
    }),
    route("GET", "/api/devices/:id/events", async ({ params, url, services }) =>
      redact(await recentEvents(services.nc, checkId(params.id, "device id"), windowParam(url, "since", "1d"), intParam(url, "limit", 200, 1_000))),
    ),
    route("GET", "/api/devices/:id/config", async ({ params, services }) => {
      const view = await (await ConfigService.open(services.nc)).show(checkId(params.id, "device id"));
      return { ...view, keys: view.keys.map((k) => (isSecretKey(k.key) ? { ...k, value: REDACTED } : k)) };
    }),
    route("GET", "/api/devices/:id/commands", async ({ params, url, services }) =>
      redact(await (await CommandStore.open(services.nc)).list({ device: checkId(params.id, "device id"), limit: intParam(url, "limit", 50, 500) })),
    ),
    route("POST", "/api/devices/:id/commands", sendCommand, true),
    route("GET", "/api/commands/:id", async ({ params, services }) => redact((await (await CommandStore.open(services.nc)).require(checkId(params.id, "command id"))).record)),
  ];
}
