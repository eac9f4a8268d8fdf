import { QueryRequest, Subjects, decode, encode, errorMessage, factAt, isValidId, type QueryFacts, type QueryReply } from "@canopy/protocol";
import { toCelContext, type QueryCompiler } from "./cel.js";

export type FactsProvider = () => Promise<QueryFacts> | QueryFacts;

/** Requests are small (an expression and some field names); anything larger is not a query. */
const MAX_REQUEST_BYTES = 16 * 1024;

/**
 * The last request decoded in this process, by its bytes. A simulator's thousands of devices receive
 * the same bytes for one query: they share one decode as they share one compile (an agent decodes
 * each query once anyway). The decoded request is never modified.
 */
let lastDecoded: { bytes: Buffer; req: QueryRequest } | undefined;

function decodeRequest(data: Uint8Array): QueryRequest {
  const bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (lastDecoded && lastDecoded.bytes.equals(bytes)) return lastDecoded.req;
  const req = decode(QueryRequest, bytes, MAX_REQUEST_BYTES);
  lastDecoded = { bytes: Buffer.from(bytes), req };
  return req;
}

/**
 * Answers one query for one device: decode, compile (cached), evaluate on the device's facts, reply.
 * Shared by the real agent and the fleet simulator so both evaluate the same way. Never throws: a bad
 * request or an expression that fails here becomes a reply, so a daemon never crashes on input.
 */
export class QueryResponder {
  constructor(
    private readonly device: string,
    private readonly facts: FactsProvider,
    private readonly compiler: QueryCompiler,
  ) {}

  async answer(data: Uint8Array): Promise<Uint8Array> {
    return encode(await this.reply(data));
  }

  /**
   * The answer and where it goes: `qr.<this device>.<query id>`, the one reply subject this device's
   * credentials may publish. A request whose id cannot make a subject gets no answer.
   */
  async answerOn(data: Uint8Array): Promise<{ subject: string; data: Uint8Array } | undefined> {
    const reply = await this.reply(data);
    if (!isValidId(reply.id)) return undefined;
    return { subject: Subjects.queryReply(this.device, reply.id), data: encode(reply) };
  }

  async reply(data: Uint8Array): Promise<QueryReply> {
    let req: QueryRequest;
    try {
      req = decodeRequest(data);
    } catch (err) {
      return { id: "", device: this.device, matched: false, error: { code: "INVALID_INPUT", message: errorMessage(err) } };
    }
    let facts: QueryFacts;
    try {
      // No await for facts already at hand, nor for a compiled expression (below): a simulator
      // answers thousands of times per query, and each await is one more microtask per answer.
      const f = this.facts();
      facts = f instanceof Promise ? await f : f;
    } catch (err) {
      return { id: req.id, device: this.device, matched: false, error: { code: "FACTS_UNAVAILABLE", message: errorMessage(err) } };
    }
    let matched = false;
    let error: QueryReply["error"];
    try {
      const expr = req.expr.trim() === "" ? "true" : req.expr;
      const compiled = this.compiler.cached(expr) ?? (await this.compiler.compile(expr));
      matched = compiled(toCelContext(facts)) === true;
    } catch (err) {
      error = celError(err);
    }
    if (!matched && !req.explain) return { id: req.id, device: this.device, matched: false };
    const reply: QueryReply = { id: req.id, device: this.device, matched, at: Date.now() };
    if (error) reply.error = error;
    if (req.fields.length) reply.values = Object.fromEntries(req.fields.map((f) => [f, factAt(facts, f) ?? null]));
    if (req.facts) reply.facts = facts as unknown as Record<string, unknown>;
    return reply;
  }
}

/** The CEL library's errors carry a code and a one-line summary; the message adds a source excerpt. */
function celError(err: unknown): { code: string; message: string } {
  const e = err as { code?: unknown; summary?: unknown; message?: unknown };
  const message = typeof e.summary === "string" && e.summary ? e.summary : errorMessage(err).split("\n")[0] ?? "error";
  return { code: typeof e.code === "string" ? e.code : "EVAL_ERROR", message };
}
