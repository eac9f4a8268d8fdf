import type { Environment, ParseResult } from "@marcbachmann/cel-js";
import { QUERY_TYPES, QUERY_VARIABLES, checkQueryRegexes, type QueryFacts, type QueryFieldType } from "@canopy/protocol";

export type CompiledQuery = ParseResult;

/**
 * Compiles expressions once per process: a simulator runs thousands of agents that all receive the
 * same expression. Bounded so a stream of distinct expressions cannot grow memory. The CEL library
 * (~8 MiB of RSS) is loaded by the first query, not at start: an idle agent never needs it.
 */
export class QueryCompiler {
  private env: Promise<Environment> | undefined;
  private readonly cache = new Map<string, CompiledQuery>();

  constructor(private readonly max = 64) {}

  /** An expression compiled before, or undefined. */
  cached(expr: string): CompiledQuery | undefined {
    return this.cache.get(expr);
  }

  /** Rejects with the library's ParseError / TypeError; the caller turns it into a reply. */
  async compile(expr: string): Promise<CompiledQuery> {
    const hit = this.cache.get(expr);
    if (hit) return hit;
    this.env ??= import("@canopy/protocol/query-env").then(
      (m) => m.queryEnvironment(),
      (err: unknown) => {
        this.env = undefined; // the next query tries again
        throw err;
      },
    );
    const compiled = (await this.env).parse(expr);
    // Refused here too (not only at the CLI): anyone who can publish q.* must not stall the agent.
    checkQueryRegexes(compiled.ast);
    const checked = compiled.check();
    if (!checked.valid && checked.error) throw checked.error;
    if (checked.type !== "bool") throw new QueryTypeError(`expression must be a bool, got ${checked.type ?? "unknown"}`);
    if (this.cache.size >= this.max) this.cache.delete(this.cache.keys().next().value as string);
    this.cache.set(expr, compiled);
    return compiled;
  }
}

export class QueryTypeError extends Error {
  override readonly name = "QueryTypeError";
  readonly code = "not_bool";
}

/**
 * Plain JSON facts → the values CEL expects: integers as BigInt where the declaration says `int`,
 * absent or mistyped facts dropped (so `has()` is false and reading them is an evaluation error).
 * Lazy: the CEL library reads a variable as `context[name]` when the expression reaches it, so each
 * variable is converted on first read. `true` converts nothing, `cpu.load < 10.0` only `cpu`; it was
 * a third of a simulated fleet's CPU per query to convert every fact for every device.
 */
export function toCelContext(facts: QueryFacts): Record<string, unknown> {
  return new LazyContext(facts) as unknown as Record<string, unknown>;
}

class LazyContext {
  readonly converted = new Map<string, unknown>();
  constructor(readonly facts: QueryFacts) {}
}
for (const [name, decl] of Object.entries(QUERY_VARIABLES)) {
  Object.defineProperty(LazyContext.prototype, name, {
    enumerable: true,
    get(this: LazyContext): unknown {
      if (this.converted.has(name)) return this.converted.get(name);
      const raw = (this.facts as unknown as Record<string, unknown>)[name];
      const v = (name === "config" ? configTree(this.facts.config) : convert(decl, raw)) ?? emptyOf(decl);
      this.converted.set(name, v);
      return v;
    },
  });
}

function emptyOf(decl: QueryFieldType): unknown {
  if (typeof decl !== "string") return {};
  if (decl.startsWith("list<")) return [];
  if (decl.startsWith("map<")) return {};
  return decl === "string" ? "" : undefined;
}

function convert(decl: QueryFieldType, v: unknown): unknown {
  if (v === undefined || v === null) return undefined;
  if (typeof decl !== "string") {
    if (typeof v !== "object" || Array.isArray(v)) return undefined;
    const obj: Record<string, unknown> = {};
    for (const [k, d] of Object.entries(decl)) {
      const c = convert(d, (v as Record<string, unknown>)[k]);
      if (c !== undefined) obj[k] = c;
    }
    return obj;
  }
  switch (decl) {
    case "string":
      return typeof v === "string" ? v : undefined;
    case "bool":
      return typeof v === "boolean" ? v : undefined;
    case "int":
      return typeof v === "number" && Number.isFinite(v) ? BigInt(Math.trunc(v)) : typeof v === "bigint" ? v : undefined;
    case "double":
      return typeof v === "number" && Number.isFinite(v) ? v : undefined;
    default: {
      const list = /^list<(.+)>$/.exec(decl);
      if (!list) return dyn(v);
      if (!Array.isArray(v)) return undefined;
      const item = list[1] as string;
      const itemDecl = (QUERY_TYPES as Record<string, Record<string, string>>)[item] ?? item;
      return v.map((x) => convert(itemDecl, x)).filter((x) => x !== undefined);
    }
  }
}

/** `dyn` values: JSON as is, but whole numbers become CEL ints so `config.port == 8080` holds. */
function dyn(v: unknown): unknown {
  if (typeof v === "number") return Number.isInteger(v) ? BigInt(v) : v;
  if (Array.isArray(v)) return v.map(dyn);
  if (v !== null && typeof v === "object") {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, dyn(x)]));
  }
  return v;
}

/**
 * Effective config is flat (`log.level` → value). Expose it both ways: `config["log.level"]` and
 * `config.log.level`. On a clash (`a` and `a.b` both set) the flat key still works; the tree keeps
 * the first.
 */
export function configTree(flat: Record<string, unknown> | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, raw] of Object.entries(flat ?? {})) {
    const value = dyn(raw);
    if (out[key] === undefined) out[key] = value;
    const parts = key.split(".");
    if (parts.length < 2) continue;
    let node: Record<string, unknown> = out;
    let ok = true;
    for (const p of parts.slice(0, -1)) {
      const next = node[p];
      if (next === undefined) node = node[p] = {};
      else if (typeof next === "object" && next !== null && !Array.isArray(next)) node = next as Record<string, unknown>;
      else {
        ok = false;
        break;
      }
    }
    const last = parts[parts.length - 1] as string;
    if (ok && node[last] === undefined) node[last] = value;
  }
  return out;
}
