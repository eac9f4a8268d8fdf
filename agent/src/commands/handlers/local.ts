import type { NatsConnection } from "@nats-io/transport-node";
import { CanopyError, ErrorCode, encode, errorMessage, parseError } from "@canopy/protocol";

/**
 * A core request to a leaf-local service (`local.>` never crosses the leaf link). No responder or no
 * answer becomes a clear UNAVAILABLE / TIMEOUT; a reply `{error: {code, message}}` becomes that error.
 */
export async function localRequest(
  nc: NatsConnection,
  subject: string,
  body: unknown,
  timeoutMs: number,
  signal: AbortSignal,
  who: string,
): Promise<unknown> {
  if (signal.aborted) throw new CanopyError(ErrorCode.Cancelled, "cancelled before the request was sent");
  let reply;
  try {
    reply = await Promise.race([
      nc.request(subject, encode(body), { timeout: timeoutMs }),
      new Promise<never>((_, reject) =>
        signal.addEventListener("abort", () => reject(new CanopyError(ErrorCode.Cancelled, "cancelled while waiting for a reply")), { once: true }),
      ),
    ]);
  } catch (err) {
    if (err instanceof CanopyError) throw err;
    const msg = errorMessage(err);
    if (/no responders|503/i.test(msg)) throw new CanopyError(ErrorCode.Unavailable, `${who} is not running: nobody answers on ${subject}`);
    if (/timeout/i.test(msg)) throw new CanopyError(ErrorCode.Timeout, `${who} did not answer on ${subject} within ${timeoutMs} ms`);
    throw new CanopyError(ErrorCode.Unavailable, `request to ${who} on ${subject} failed: ${msg}`, { cause: err });
  }
  const text = reply.string();
  if (text === "") return null;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { reply: text };
  }
  if (value && typeof value === "object" && "error" in value && (value as { error: unknown }).error) {
    const e = (value as { error: unknown }).error;
    throw typeof e === "string" ? new CanopyError(ErrorCode.Internal, `${who}: ${e}`) : parseError(e);
  }
  return value;
}
