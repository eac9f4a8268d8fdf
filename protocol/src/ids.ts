import { InvalidIdError, TOKEN_PATH_RULE_TEXT } from "./errors.js";

/** Device, group, MCU and command ids. Nothing else may become a subject token. */
export const ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
export const ID_RULE = "^[A-Za-z0-9_-]{1,64}$";

export type IdKind = "device id" | "group id" | "mcu id" | "command id" | "key" | "context name" | "board" | "id";

export function isValidId(value: unknown): value is string {
  return typeof value === "string" && ID_PATTERN.test(value);
}

/** Returns the id unchanged, or throws an `InvalidIdError` naming the rule. */
export function checkId(value: unknown, kind: IdKind = "id"): string {
  if (!isValidId(value)) throw new InvalidIdError(kind, String(value));
  return value;
}

/**
 * Config keys and metric paths are dot-separated tokens, each a valid id
 * (e.g. `log.level`, `bridge.serial.0`). At most 16 tokens.
 */
export const TOKEN_PATH_PATTERN = /^[A-Za-z0-9_-]{1,64}(\.[A-Za-z0-9_-]{1,64}){0,15}$/;

export function isValidTokenPath(value: unknown): value is string {
  return typeof value === "string" && TOKEN_PATH_PATTERN.test(value);
}

export function checkTokenPath(value: unknown, kind: "key" | "metric" | "subject suffix" = "key"): string {
  if (!isValidTokenPath(value)) {
    throw new InvalidIdError(kind, String(value), TOKEN_PATH_RULE_TEXT);
  }
  return value;
}
