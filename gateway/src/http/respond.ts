import type { IncomingMessage, ServerResponse } from "node:http";
import { CanopyError, ErrorCode, errorMessage } from "@canopy/protocol";

/** Largest JSON body the API reads; anything bigger is refused before it is buffered. */
export const MAX_BODY_BYTES = 64 * 1024;

const STATUS: Partial<Record<string, number>> = {
  [ErrorCode.InvalidId]: 400,
  [ErrorCode.InvalidInput]: 400,
  [ErrorCode.Unauthorized]: 401,
  [ErrorCode.Forbidden]: 403,
  [ErrorCode.NotFound]: 404,
  [ErrorCode.Conflict]: 409,
  [ErrorCode.AlreadyExists]: 409,
  [ErrorCode.Timeout]: 504,
  [ErrorCode.Unavailable]: 503,
};

/** Headers on every response: no framing, no sniffing, no referrer (a login URL carries a token). */
export function baseHeaders(res: ServerResponse): void {
  res.setHeader("X-Content-Type-Options", "nosniff");
  res.setHeader("X-Frame-Options", "DENY");
  res.setHeader("Referrer-Policy", "no-referrer");
  res.setHeader(
    "Content-Security-Policy",
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  );
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "Content-Type": "application/json; charset=utf-8", "Cache-Control": "no-store", "Content-Length": Buffer.byteLength(text) });
  res.end(text);
}

/** A typed error as `{error: {code, message}}` with its HTTP status; never a stack trace. */
export function sendError(res: ServerResponse, err: unknown): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (err instanceof CanopyError) {
    sendJson(res, STATUS[err.code] ?? 500, { error: { code: err.code, message: err.message } });
    return;
  }
  sendJson(res, 500, { error: { code: ErrorCode.Internal, message: errorMessage(err) } });
}

/** Reads a JSON object body (Content-Type application/json, at most MAX_BODY_BYTES). */
export async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  if (!/^application\/json\b/i.test(req.headers["content-type"] ?? "")) {
    throw new CanopyError(ErrorCode.InvalidInput, "send the body as Content-Type: application/json");
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new CanopyError(ErrorCode.InvalidInput, `body larger than ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk as Buffer);
  }
  let v: unknown;
  try {
    v = JSON.parse(Buffer.concat(chunks).toString("utf8") || "{}");
  } catch {
    throw new CanopyError(ErrorCode.InvalidInput, "body is not valid JSON");
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new CanopyError(ErrorCode.InvalidInput, "body must be a JSON object");
  return v as Record<string, unknown>;
}
