import { factAt } from "@canopy/protocol";
import { bytes } from "../cli/output.js";
import type { QueryResult, SilentDevice } from "./run.js";

/** Columns of the table when the operator names none. */
export const DEFAULT_FIELDS = ["os.platform", "os.arch", "mem.available", "cpu.load", "agent.version"];

export type RowSource = "live" | "silent" | "offline";

export interface DeviceRow {
  id: string;
  source: RowSource;
  matched: boolean | null;
  error?: { code: string; message: string };
  latencyMs?: number;
  /** How old the facts shown are (silent devices: age of the hub's last status record). */
  factsAgeMs?: number | null;
  values?: Record<string, unknown>;
  facts?: Record<string, unknown>;
}

/**
 * The rows an operator sees: answers (matching ones; every one under --explain), then, with
 * --include-offline, the addressed devices that stayed silent, filled from their last status record.
 */
export function rows(r: QueryResult, o: { explain: boolean; includeOffline: boolean; fields: string[]; facts: boolean }): DeviceRow[] {
  const live: DeviceRow[] = r.answers
    .filter((a) => a.matched || o.explain)
    .map((a) => ({
      id: a.device,
      source: "live" as const,
      matched: a.matched,
      latencyMs: a.latencyMs,
      ...(a.error ? { error: a.error } : {}),
      ...(a.values ? { values: a.values } : {}),
      ...(a.facts ? { facts: a.facts } : {}),
    }));
  if (!o.includeOffline) return live;
  const silent = r.silent.map((s): DeviceRow => {
    const facts = lastKnownFacts(s);
    return {
      id: s.device,
      source: s.expected ? "silent" : "offline",
      matched: null,
      factsAgeMs: s.factsAgeMs ?? null,
      ...(o.fields.length ? { values: Object.fromEntries(o.fields.map((f) => [f, factAt(facts, f) ?? null])) } : {}),
      ...(o.facts && s.facts ? { facts } : {}),
    };
  });
  return [...live, ...silent];
}

/** The facts shape queries use, rebuilt from a status record (what the hub last heard). */
export function lastKnownFacts(s: SilentDevice): Record<string, unknown> {
  const f = s.facts;
  return {
    device: s.device,
    os: { ...(f?.os ?? {}), ...(f?.uptime === undefined ? {} : { uptime: f.uptime }) },
    cpu: f?.cpu ?? {},
    mem: f?.mem ?? {},
    disk: f?.disk ?? {},
    net: f?.net ?? {},
    labels: s.groups,
  };
}

export function cell(field: string, v: unknown): string {
  if (v === null || v === undefined) return "-";
  if (typeof v === "number" && /^(mem|disk)\.(total|available|used)$/.test(field)) return bytes(v);
  if (typeof v === "string") return v;
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  if (Array.isArray(v) && v.every((x) => typeof x === "string")) return v.join(",") || "-";
  if (Array.isArray(v) && v.every((x) => typeof x === "object" && x !== null && "id" in x)) {
    return v.map((x: { id: string; board?: string }) => (x.board ? `${x.id}:${x.board}` : x.id)).join(",") || "-";
  }
  return JSON.stringify(v);
}
