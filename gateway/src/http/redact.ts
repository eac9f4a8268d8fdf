import { REDACTED, SECRET_KEY as SECRET } from "@canopy/protocol";

/** Keys whose values the console never shows (wifi passwords in command args, secrets in config): protocol's SECRET_KEY. */
export { REDACTED };

export function isSecretKey(key: string): boolean {
  return SECRET.test(key);
}

/** A deep copy with every secret-looking key's value replaced (bounded depth). */
export function redact<T>(value: T, depth = 0): T {
  if (depth > 8 || value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1)) as T;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) out[k] = isSecretKey(k) ? REDACTED : redact(v, depth + 1);
  return out as T;
}
