import { Environment } from "@marcbachmann/cel-js";
import { CanopyError, ErrorCode, MAX_QUERY_EXPR, checkQueryRegexes } from "@canopy/protocol";
// A subpath, not the index: otherwise every process that imports @canopy/protocol loads CEL (~8 MiB of RSS).
import { queryEnvironment } from "@canopy/protocol/query-env";

export { queryEnvironment };

export class QueryExpressionError extends CanopyError {
  override readonly name = "QueryExpressionError";
  constructor(
    message: string,
    /** 1-based column of the offending token, when the library knows it. */
    readonly column: number | undefined,
    readonly celCode: string,
  ) {
    super(ErrorCode.InvalidInput, message);
  }
}

/**
 * Parses and type-checks an expression before anything is sent: syntax errors, unknown facts
 * (`os.platfrom`) and type errors (`mem.available + "x"`) fail here with their position, and an
 * expression must be a bool. An empty expression means "every device".
 */
export function compileQuery(expr: string | undefined, env: Environment = queryEnvironment()): string {
  const source = expr === undefined || expr.trim() === "" ? "true" : expr;
  if (source.length > MAX_QUERY_EXPR) {
    throw new QueryExpressionError(`query expression is ${source.length} characters; the limit is ${MAX_QUERY_EXPR}`, undefined, "too_long");
  }
  let result;
  try {
    result = env.check(source);
  } catch (err) {
    throw fromCel(err, source);
  }
  if (!result.valid) throw fromCel(result.error, source);
  try {
    checkQueryRegexes(env.parse(source).ast);
  } catch (err) {
    throw new QueryExpressionError(`query expression: ${(err as Error).message}`, undefined, "unsafe_regex");
  }
  if (result.type !== "bool") {
    throw new QueryExpressionError(
      `query expression must be a bool (a filter), but ${JSON.stringify(source)} has type ${result.type ?? "unknown"}`,
      1,
      "not_bool",
    );
  }
  return source;
}

function fromCel(err: unknown, source: string): QueryExpressionError {
  const e = (err ?? {}) as { name?: string; code?: string; summary?: string; message?: string; range?: { start: number } };
  const offset = typeof e.range?.start === "number" ? Math.min(e.range.start, source.length) : undefined;
  const before = offset === undefined ? "" : source.slice(0, offset);
  const line = before.split("\n").length;
  const column = offset === undefined ? undefined : offset - before.lastIndexOf("\n");
  const text = source.split("\n")[line - 1] ?? source;
  const kind = e.name === "ParseError" ? "syntax error" : e.name === "TypeError" ? "type error" : "error";
  const summary = e.summary || (e.message ?? "").split("\n")[0] || "invalid expression";
  const where = column === undefined ? "" : line > 1 ? ` at line ${line} column ${column}` : ` at column ${column}`;
  const excerpt = column === undefined ? "" : `\n  ${text}\n  ${" ".repeat(column - 1)}^`;
  return new QueryExpressionError(`query expression ${kind}${where}: ${summary}${excerpt}`, column, e.code ?? "invalid");
}
