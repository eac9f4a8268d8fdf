/**
 * `matches()` runs JavaScript's backtracking RegExp (the CEL library's built-in, which cannot be
 * replaced): `"a"*30+"!"` against `^(a+)+$` took ~11 s of CPU per agent and silenced every heartbeat.
 * So a query may use only patterns that cannot backtrack badly, checked before evaluation on both
 * sides (the CLI at the door, every agent again): a string literal (never a value from facts), at
 * most 256 characters, no backreferences or lookaround, and no quantified group that itself
 * contains a quantifier or an alternation (star height 1: `(a+)+`, `(a|a)*`, `(\w+\s?)*` are refused).
 * Such patterns run in time linear in the input for practical purposes.
 */
export const MAX_REGEX_LENGTH = 256;

export class UnsafeRegexError extends Error {
  override readonly name = "UnsafeRegexError";
  readonly code = "unsafe_regex";
}

/** Throws UnsafeRegexError for the first `matches()` in the AST whose pattern is not provably safe. */
export function checkQueryRegexes(ast: unknown): void {
  walk(ast, (node) => {
    const n = node as { op?: unknown; args?: unknown };
    if (n.op !== "rcall" && n.op !== "call") return;
    const args = Array.isArray(n.args) ? n.args : [];
    if (args[0] !== "matches") return;
    const callArgs: unknown[] = n.op === "rcall" ? (Array.isArray(args[2]) ? args[2] : []) : Array.isArray(args[1]) ? args[1].slice(1) : [];
    const pattern = callArgs[0] as { op?: unknown; args?: unknown } | undefined;
    if (!pattern || pattern.op !== "value" || typeof pattern.args !== "string") {
      throw new UnsafeRegexError("matches() takes a string literal pattern only");
    }
    const why = unsafeRegexReason(pattern.args);
    if (why) throw new UnsafeRegexError(`matches(${JSON.stringify(pattern.args)}) refused: ${why}`);
  });
}

/** Why `pattern` could backtrack super-linearly (or is invalid), or undefined when it is safe. */
export function unsafeRegexReason(pattern: string): string | undefined {
  if (pattern.length > MAX_REGEX_LENGTH) return `longer than ${MAX_REGEX_LENGTH} characters`;
  try {
    new RegExp(pattern);
  } catch (err) {
    return (err as Error).message;
  }
  if (/\\[1-9]|\\k</.test(pattern)) return "backreferences are not allowed";
  if (/\(\?<?[=!]/.test(pattern)) return "lookaround is not allowed";
  // Track, per open group, whether it contains a quantifier or an alternation.
  const stack: { risky: boolean }[] = [];
  let i = 0;
  while (i < pattern.length) {
    const c = pattern[i];
    if (c === "\\") {
      i += 2;
      continue;
    }
    if (c === "[") {
      i = skipClass(pattern, i);
      continue;
    }
    if (c === "(") {
      stack.push({ risky: false });
      i++;
      continue;
    }
    if (c === "|" && stack.length > 0) (stack[stack.length - 1] as { risky: boolean }).risky = true;
    if (c === ")") {
      const group = stack.pop();
      const next = pattern[i + 1];
      const quantified = next === "*" || next === "+" || next === "?" || next === "{";
      if (group?.risky && quantified && next !== "?") return "a repeated group contains a quantifier or alternation (nested repetition)";
      if (stack.length > 0 && (group?.risky || quantified)) (stack[stack.length - 1] as { risky: boolean }).risky = true;
      i++;
      continue;
    }
    if ((c === "*" || c === "+" || c === "{") && stack.length > 0) (stack[stack.length - 1] as { risky: boolean }).risky = true;
    i++;
  }
  return undefined;
}

function skipClass(p: string, start: number): number {
  let i = start + 1;
  while (i < p.length && p[i] !== "]") i += p[i] === "\\" ? 2 : 1;
  return i + 1;
}

function walk(node: unknown, visit: (n: object) => void): void {
  if (Array.isArray(node)) {
    for (const x of node) walk(x, visit);
    return;
  }
  if (node === null || typeof node !== "object") return;
  visit(node);
  walk((node as { args?: unknown }).args, visit);
}
