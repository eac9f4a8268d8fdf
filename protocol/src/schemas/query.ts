import { z } from "zod";
import { Id, Timestamp } from "./common.js";

/**
 * Live fleet queries (`q.all`, `q.group.<g>`, `q.dev.<dev>`): the collector sends a CEL expression,
 * every addressed agent evaluates it on its own facts and answers. The vocabulary an expression may
 * use is declared here once, as CEL type names, so the collector (which type-checks before sending)
 * and every agent (which evaluates) build the same CEL environment. Protocol has no CEL dependency:
 * the parts register these declarations with their CEL library.
 */

/** Object types used inside lists. */
export const QUERY_TYPES = {
  Mcu: { id: "string", board: "string", firmware: "string", online: "bool" },
  NetInterface: { name: "string", ip4: "string", mac: "string" },
} as const satisfies Record<string, Record<string, string>>;

export type QueryFieldType = string | { readonly [field: string]: QueryFieldType };

/**
 * Top-level variables. A string is a CEL type; an object is a schema (fields with CEL types).
 * Integers are CEL `int` (counts, bytes, seconds); fractions are `double`. A fact a device does not
 * have is absent: `has(cpu.temperature)` guards it, and reading it is an evaluation error (no match).
 */
export const QUERY_VARIABLES = {
  device: "string",
  os: { platform: "string", distro: "string", release: "string", arch: "string", kernel: "string", hostname: "string", uptime: "int" },
  cpu: { model: "string", cores: "int", load: "double", temperature: "double" },
  mem: { total: "int", available: "int", used: "int" },
  disk: { total: "int", available: "int", used: "int" },
  net: { interfaces: "list<NetInterface>" },
  agent: { version: "string", uptime: "int" },
  labels: "list<string>",
  config: "map<string, dyn>",
  mcus: "list<Mcu>",
  up: { messages: "int", bytes: "int", pending: "int", full: "bool" },
} as const satisfies Record<string, QueryFieldType>;

export type QueryVariable = keyof typeof QUERY_VARIABLES;
export const QUERY_ROOTS = Object.keys(QUERY_VARIABLES) as QueryVariable[];

/** Facts as plain JSON (what an agent assembles and what replies carry). */
export interface QueryFacts {
  device: string;
  os: Record<string, string | number | undefined>;
  cpu: Record<string, string | number | undefined>;
  mem: Record<string, number | undefined>;
  disk: Record<string, number | undefined>;
  net: { interfaces?: { name?: string | undefined; ip4?: string | undefined; mac?: string | undefined }[] | undefined };
  agent: { version: string; uptime: number };
  labels: string[];
  config: Record<string, unknown>;
  mcus: { id: string; board: string; firmware: string; online: boolean }[];
  up: { messages?: number; bytes?: number; pending?: number; full?: boolean };
}

/** `--fields` entries: a known root and up to 7 more tokens (`os.platform`, `mcus`, `config.log.level`). */
export const FIELD_PATH_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_-]{1,64}){0,7}$/;
export const FieldPath = z
  .string()
  .regex(FIELD_PATH_PATTERN, "must be a dotted path such as os.platform")
  .refine((p) => (QUERY_ROOTS as string[]).includes(p.split(".")[0] ?? ""), {
    message: `must start with one of: ${QUERY_ROOTS.join(", ")}`,
  });

export const MAX_QUERY_EXPR = 4096;

export const QueryRequest = z.object({
  /** Query id: lets an agent log and a collector drop replies of an earlier query. */
  id: z.string().min(1).max(64),
  expr: z.string().max(MAX_QUERY_EXPR),
  /** Every device answers matched / not matched / error, with the reason. */
  explain: z.boolean().default(false),
  /** Values to return from a matching device; empty = none. */
  fields: z.array(FieldPath).max(32).default([]),
  /** Return the whole fact set of a matching device. */
  facts: z.boolean().default(false),
});
export type QueryRequest = z.output<typeof QueryRequest>;
export type QueryRequestInput = z.input<typeof QueryRequest>;

export const QueryReply = z.object({
  id: z.string(),
  device: Id,
  /**
   * Every addressed device answers, so the collector can stop as soon as all expected devices did;
   * a non-match is a bare `{matched:false}` (no facts, no values) unless the query asked to explain.
   */
  matched: z.boolean(),
  /** The expression could not be evaluated here (missing fact, runtime type error); counts as no match. */
  error: z.object({ code: z.string(), message: z.string() }).optional(),
  values: z.record(z.string(), z.unknown()).optional(),
  facts: z.record(z.string(), z.unknown()).optional(),
  /** Device clock when the reply was built. */
  at: Timestamp.optional(),
});
export type QueryReply = z.infer<typeof QueryReply>;

/** Reads a dotted path out of plain facts (array indexes allowed); undefined when absent. */
export function factAt(facts: unknown, path: string): unknown {
  let v: unknown = facts;
  for (const token of path.split(".")) {
    if (v === null || v === undefined) return undefined;
    if (Array.isArray(v)) v = /^\d+$/.test(token) ? v[Number(token)] : undefined;
    else if (typeof v === "object") v = Object.prototype.hasOwnProperty.call(v, token) ? (v as Record<string, unknown>)[token] : undefined;
    else return undefined;
  }
  return v;
}
