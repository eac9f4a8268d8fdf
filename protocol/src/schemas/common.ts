import { z } from "zod";
import { ID_PATTERN, TOKEN_PATH_PATTERN } from "../ids.js";
import { CanopyError, ErrorCode } from "../errors.js";

export const Id = z.string().regex(ID_PATTERN, "must match ^[A-Za-z0-9_-]{1,64}$");
export const TokenPath = z.string().regex(TOKEN_PATH_PATTERN, "must be dot-separated tokens of [A-Za-z0-9_-]");
/** Milliseconds since the epoch. */
export const Timestamp = z.number().int().nonnegative();

/** Parses JSON bytes against a schema; throws INVALID_INPUT naming the bad field. Caps size first. */
export function decode<T>(schema: z.ZodType<T>, data: Uint8Array | string, maxBytes = 1 << 20): T {
  const size = typeof data === "string" ? Buffer.byteLength(data) : data.byteLength;
  if (size > maxBytes) {
    throw new CanopyError(ErrorCode.InvalidInput, `message of ${size} bytes exceeds the ${maxBytes}-byte cap`);
  }
  let value: unknown;
  try {
    value = JSON.parse(typeof data === "string" ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString("utf8"));
  } catch (err) {
    throw new CanopyError(ErrorCode.InvalidInput, "message is not valid JSON", { cause: err });
  }
  return check(schema, value);
}

export function check<T>(schema: z.ZodType<T>, value: unknown): T {
  const r = schema.safeParse(value);
  if (!r.success) throw new CanopyError(ErrorCode.InvalidInput, describeIssues(r.error));
  return r.data;
}

export function describeIssues(err: z.ZodError): string {
  return err.issues
    .slice(0, 5)
    .map((i) => `${i.path.length ? i.path.join(".") : "value"}: ${i.message}`)
    .join("; ");
}

export function encode(value: unknown): Uint8Array {
  return Buffer.from(JSON.stringify(value));
}
