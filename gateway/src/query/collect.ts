import type { NatsConnection } from "@nats-io/transport-node";
import { createInbox } from "@nats-io/nats-core";
import { QueryReply, decode, encode, type QueryRequest, type QueryReply as QueryReplyT } from "@canopy/protocol";

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
 * Scatter-gather over core NATS: publish the request with a private inbox as reply subject, then
 * collect distinct device answers. The subscription exists before the publish (both go out on the
 * same connection, in order), so no early answer is lost. Answers from devices the caller did not
 * expect (unenrolled, presence not yet written) are kept too.
 */
export function scatter(
  nc: NatsConnection,
  subject: string,
  req: QueryRequest,
  opts: { timeoutMs: number; signal?: AbortSignal | undefined },
): Scatter {
  const answers = new Map<string, Answer>();
  const inbox = createInbox();
  const sentAt = performance.now();
  let expected: ReadonlySet<string> | undefined;
  let missing = Number.POSITIVE_INFINITY;
  let finish: ((timedOut: boolean) => void) | undefined;
  const done = new Promise<{ timedOut: boolean }>((resolve) => {
    finish = (timedOut) => resolve({ timedOut });
  });

  const sub = nc.subscribe(inbox, {
    callback: (err, msg) => {
      if (err) return;
      let reply: QueryReplyT;
      try {
        reply = decode(QueryReply, msg.data, 4 << 20);
      } catch {
        return; // a malformed answer is not an answer; that device stays silent
      }
      if (reply.id !== req.id && reply.id !== "") return;
      if (answers.has(reply.device)) return;
      answers.set(reply.device, { ...reply, latencyMs: Math.round(performance.now() - sentAt) });
      if (expected?.has(reply.device) && --missing <= 0) finish?.(false);
    },
  });
  nc.publish(subject, encode(req), { reply: inbox });

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
