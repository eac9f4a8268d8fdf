import type { NatsConnection } from "@nats-io/transport-node";
import { Subjects, encode, isValidId, type QueryRequest, type QueryReply as QueryReplyT } from "@canopy/protocol";

export interface Answer extends QueryReplyT {
  /** Milliseconds from sending the query to this answer. */
  latencyMs: number;
}

export interface Scatter {
  /** Every distinct device's answer so far (the first one wins). */
  readonly answers: Map<string, Answer>;
  /**
   * Resolves once every device in `expected` answered, the deadline passed, or `signal` aborted.
   * Call it when the expected set is known: replies that arrived meanwhile already count.
   */
  until(expected: ReadonlySet<string>): Promise<{ timedOut: boolean }>;
  close(): void;
}

/**
 * Scatter-gather over core NATS: subscribe to `qr.*.<query id>`, publish the request, collect distinct
 * device answers. Each device may publish only under its own `qr.<dev>.>` (its credentials), so the
 * device an answer counts for is taken from the subject; an answer whose body names another device is
 * dropped as spoofed. The subscription exists before the publish (both go out on the same connection,
 * in order), so no early answer is lost. Answers from devices the caller did not expect (unenrolled,
 * presence not yet written) are kept too.
 */
export function scatter(
  nc: NatsConnection,
  subject: string,
  req: QueryRequest,
  opts: { timeoutMs: number; signal?: AbortSignal | undefined; onAnswer?: ((a: Answer) => void) | undefined },
): Scatter {
  const answers = new Map<string, Answer>();
  const sentAt = performance.now();
  let expected: ReadonlySet<string> | undefined;
  let missing = Number.POSITIVE_INFINITY;
  let finish: ((timedOut: boolean) => void) | undefined;
  const done = new Promise<{ timedOut: boolean }>((resolve) => {
    finish = (timedOut) => resolve({ timedOut });
  });

  const sub = nc.subscribe(Subjects.queryReplies(req.id), {
    callback: (err, msg) => {
      if (err) return;
      // `qr.<device>.<id>`: the device is the second token (read without splitting the subject).
      const s = msg.subject;
      const from = s.slice(s.indexOf(".") + 1, s.lastIndexOf("."));
      if (answers.has(from)) return;
      const reply = parseReply(msg.data);
      if (!reply) return; // a malformed answer is not an answer; that device stays silent
      if (reply.device !== from) return; // claims another device: spoofed
      if (reply.id !== req.id) return;
      const answer = reply as Answer;
      answer.latencyMs = Math.round(performance.now() - sentAt);
      answers.set(reply.device, answer);
      opts.onAnswer?.(answer);
      if (expected?.has(reply.device) && --missing <= 0) finish?.(false);
    },
  });
  nc.publish(subject, encode(req));

  const timer = setTimeout(() => finish?.(true), opts.timeoutMs);
  const onAbort = (): void => finish?.(true);
  opts.signal?.addEventListener("abort", onAbort, { once: true });

  return {
    answers,
    until(exp) {
      expected = exp;
      missing = [...exp].filter((d) => !answers.has(d)).length;
      if (missing <= 0) finish?.(false);
      return done;
    },
    close() {
      clearTimeout(timer);
      opts.signal?.removeEventListener("abort", onAbort);
      sub.unsubscribe();
    },
  };
}

const MAX_REPLY_BYTES = 4 << 20;
const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === "object" && !Array.isArray(v);

/**
 * The `QueryReply` schema, checked by hand: thousands of answers arrive within milliseconds and a
 * schema parse of each one costs more than the network. Unknown or mistyped optional parts are dropped.
 */
export function parseReply(data: Uint8Array): QueryReplyT | undefined {
  if (data.byteLength > MAX_REPLY_BYTES) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString("utf8"));
  } catch {
    return undefined;
  }
  if (!isObject(v) || typeof v.id !== "string" || !isValidId(v.device) || typeof v.matched !== "boolean") return undefined;
  const reply: QueryReplyT = { id: v.id, device: v.device, matched: v.matched };
  const e = v.error;
  if (isObject(e) && typeof e.code === "string" && typeof e.message === "string") reply.error = { code: e.code, message: e.message };
  if (isObject(v.values)) reply.values = v.values;
  if (isObject(v.facts)) reply.facts = v.facts;
  if (typeof v.at === "number" && Number.isInteger(v.at) && v.at >= 0) reply.at = v.at;
  return reply;
}
