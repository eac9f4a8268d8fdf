/**
 * Errors that cross process or wire boundaries carry a stable `code`; `parseError` turns the wire form
 * back into a typed error. Codes are part of the protocol: add, never rename.
 */
export const ErrorCode = {
  InvalidId: "INVALID_ID",
  InvalidInput: "INVALID_INPUT",
  NotFound: "NOT_FOUND",
  AlreadyExists: "ALREADY_EXISTS",
  Conflict: "CONFLICT",
  Timeout: "TIMEOUT",
  Unavailable: "UNAVAILABLE",
  Rejected: "REJECTED",
  Expired: "EXPIRED",
  Cancelled: "CANCELLED",
  Internal: "INTERNAL",
  Unauthorized: "UNAUTHORIZED",
  Forbidden: "FORBIDDEN",
  /** The microcontroller answered a command with an error; the message is its detail. */
  McuError: "MCU_ERROR",
  /** The device's data partition is full: new data is refused until there is room again. */
  DiskFull: "DISK_FULL",
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

const CODES = new Set<string>(Object.values(ErrorCode));

export class CanopyError extends Error {
  override readonly name: string = "CanopyError";
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }

  /** True for errors a caller caused (bad id, bad args): CLIs exit 2 on these. */
  get isUsage(): boolean {
    return this.code === ErrorCode.InvalidId || this.code === ErrorCode.InvalidInput;
  }

  toWire(): WireError {
    return { code: this.code, message: this.message };
  }
}

export const ID_RULE_TEXT =
  "ids must match ^[A-Za-z0-9_-]{1,64}$ (letters, digits, '_' and '-', 1 to 64 characters)";
export const TOKEN_PATH_RULE_TEXT =
  "must be 1 to 16 dot-separated tokens, each matching ^[A-Za-z0-9_-]{1,64}$";

export class InvalidIdError extends CanopyError {
  override readonly name = "InvalidIdError";
  constructor(what: string, value: string, rule = ID_RULE_TEXT) {
    super(ErrorCode.InvalidId, `invalid ${what} ${JSON.stringify(truncate(value, 80))}: ${rule}`);
  }
}

export interface WireError {
  code: ErrorCode;
  message: string;
}

/** Rebuilds a typed error from its wire form; unknown codes become `INTERNAL` rather than throwing. */
export function parseError(value: unknown): CanopyError {
  if (typeof value === "object" && value !== null) {
    const v = value as { code?: unknown; message?: unknown };
    const message = typeof v.message === "string" ? v.message : "unknown error";
    const code = typeof v.code === "string" && CODES.has(v.code) ? (v.code as ErrorCode) : ErrorCode.Internal;
    return new CanopyError(code, message);
  }
  return new CanopyError(ErrorCode.Internal, String(value));
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function truncate(s: string, n: number): string {
  return s.length > n ? `${s.slice(0, n)}…` : s;
}
