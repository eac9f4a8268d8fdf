import { randomUUID } from "node:crypto";
import type { NatsConnection } from "@nats-io/transport-node";
import { CanopyError, ErrorCode, FieldPath, Subjects, checkId, describeIssues, type DeviceStatus, type QueryRequest } from "@canopy/protocol";
import { scatter, type Answer } from "./collect.js";
import { compileQuery } from "./compile.js";
import { targetDevices } from "./fleet.js";

export interface QueryOptions {
  /** CEL filter; empty or absent = every addressed device. */
  expr?: string | undefined;
  group?: string | undefined;
  device?: string | undefined;
  timeoutMs: number;
  /** Fact paths each matching device returns. */
  fields?: string[] | undefined;
  /** Return each matching device's whole fact set. */
  facts?: boolean | undefined;
  /** Every device answers matched / not matched / error. */
  explain?: boolean | undefined;
  signal?: AbortSignal | undefined;
  /** Called with each answer as it arrives (the console streams them). */
  onAnswer?: ((a: Answer) => void) | undefined;
}

export interface SilentDevice {
  device: string;
  groups: string[];
  /** Presence said online, yet no answer came before the deadline. */
  expected: boolean;
  /** Age of the last status record the hub holds (facts are that old); undefined = never reported. */
  factsAgeMs: number | undefined;
  facts: DeviceStatus["facts"] | undefined;
}

export interface QuerySummary {
  subject: string;
  /** Enrolled devices the query addressed. */
  targeted: number;
  /** Of those, online by presence: the collector waits for these. */
  expected: number;
  answered: number;
  matched: number;
  /** Answers whose expression failed on the device (counted as not matched). */
  errors: number;
  /** Addressed devices that did not answer (offline or silent). */
  silent: number;
  elapsedMs: number;
  /** True when the deadline ended the collection with expected devices still silent. */
  timedOut: boolean;
}

export interface QueryResult {
  id: string;
  expr: string;
  answers: Answer[];
  silent: SilentDevice[];
  summary: QuerySummary;
}

/** Validates everything that can be validated locally; nothing is published before this passes. */
export function prepareQuery(o: QueryOptions): { subject: string; request: QueryRequest } {
  if (o.group !== undefined && o.device !== undefined) {
    throw new CanopyError(ErrorCode.InvalidInput, "use --group or --device, not both");
  }
  if (!Number.isFinite(o.timeoutMs) || o.timeoutMs <= 0) {
    throw new CanopyError(ErrorCode.InvalidInput, `timeout must be positive, got ${o.timeoutMs} ms`);
  }
  const subject =
    o.device !== undefined ? Subjects.queryDevice(checkId(o.device, "device id"))
    : o.group !== undefined ? Subjects.queryGroup(checkId(o.group, "group id"))
    : Subjects.queryAll;
  const fields = o.fields ?? [];
  for (const f of fields) {
    const r = FieldPath.safeParse(f);
    if (!r.success) throw new CanopyError(ErrorCode.InvalidInput, `field ${JSON.stringify(f)}: ${describeIssues(r.error)}`);
  }
  const expr = compileQuery(o.expr);
  const request: QueryRequest = { id: randomUUID(), expr, explain: o.explain ?? false, fields, facts: o.facts ?? false };
  return { subject, request };
}

/**
 * One live query: compile, fan out, and — while answers arrive — read which addressed devices the
 * hub believes online; stop as soon as all of those answered, or at the timeout.
 */
export async function runQuery(nc: NatsConnection, o: QueryOptions): Promise<QueryResult> {
  const { subject, request } = prepareQuery(o);
  const started = performance.now();
  const s = scatter(nc, subject, request, { timeoutMs: o.timeoutMs, signal: o.signal, onAnswer: o.onAnswer });
  try {
    const known = await targetDevices(nc, { group: o.group, device: o.device });
    const expected = new Set(known.filter((k) => k.online).map((k) => k.id));
    const { timedOut } = await s.until(expected);
    const now = Date.now();
    const answers = [...s.answers.values()].sort((a, b) => a.device.localeCompare(b.device));
    const silent: SilentDevice[] = known
      .filter((k) => !s.answers.has(k.id))
      .map((k) => ({
        device: k.id,
        groups: k.groups,
        expected: k.online,
        factsAgeMs: k.seenAt === undefined ? undefined : Math.max(0, now - k.seenAt),
        facts: k.lastFacts(),
      }));
    return {
      id: request.id,
      expr: request.expr,
      answers,
      silent,
      summary: {
        subject,
        targeted: known.length,
        expected: expected.size,
        answered: answers.length,
        matched: answers.filter((a) => a.matched).length,
        errors: answers.filter((a) => a.error).length,
        silent: silent.length,
        elapsedMs: Math.round(performance.now() - started),
        timedOut: timedOut && [...expected].some((d) => !s.answers.has(d)),
      },
    };
  } finally {
    s.close();
  }
}

/** Ids of the devices that match `expr` now (for `cmd send --where`). */
export async function queryDevices(
  nc: NatsConnection,
  o: { expr: string; group?: string; device?: string; timeoutMs: number },
): Promise<string[]> {
  const r = await runQuery(nc, { expr: o.expr, group: o.group, device: o.device, timeoutMs: o.timeoutMs });
  return r.answers.filter((a) => a.matched).map((a) => a.device);
}
