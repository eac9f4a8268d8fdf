import type { NatsConnection } from "@nats-io/transport-node";
import { z } from "zod";
import { CanopyError, ErrorCode, checkId, describeIssues, errorMessage } from "@canopy/protocol";
import type { Logger } from "../logging.js";
import type { ConsoleTokens } from "./tokens.js";

/**
 * Console tokens are minted by the hub process that holds the secret, on request over the hub
 * connection: whoever may talk to the hub as an operator may mint one (the same trust as every other
 * operator command). Devices cannot: their users may publish only `up.<dev>.>`.
 */
export const CONSOLE_TOKEN_SUBJECT = "canopy.console.token";

export const TokenRequest = z.discriminatedUnion("op", [
  z.object({ op: z.literal("mint"), readOnly: z.boolean(), ttlMs: z.number().int().positive().optional() }),
  z.object({ op: z.literal("revoke"), id: z.string() }),
  z.object({ op: z.literal("rotate") }),
]);
export type TokenRequest = z.infer<typeof TokenRequest>;

export interface TokenReply {
  ok: boolean;
  error?: { code: string; message: string };
  token?: string;
  id?: string;
  readOnly?: boolean;
  expiresAt?: number;
  /** The console's base URL as the hub sees it. */
  url?: string;
}

export function serveTokenRequests(nc: NatsConnection, tokens: ConsoleTokens, url: () => string, log: Logger): () => void {
  const sub = nc.subscribe(CONSOLE_TOKEN_SUBJECT, {
    queue: "canopy-console",
    callback: (err, msg) => {
      if (err || !msg.reply) return;
      void handle(msg.data)
        .then((reply) => msg.respond(JSON.stringify(reply)))
        .catch(() => undefined);
    },
  });
  async function handle(data: Uint8Array): Promise<TokenReply> {
    try {
      let raw: unknown;
      try {
        raw = JSON.parse(new TextDecoder().decode(data));
      } catch {
        throw new CanopyError(ErrorCode.InvalidInput, "token request is not JSON");
      }
      const parsed = TokenRequest.safeParse(raw);
      if (!parsed.success) throw new CanopyError(ErrorCode.InvalidInput, `token request: ${describeIssues(parsed.error)}`);
      const req = parsed.data;
      if (req.op === "mint") {
        const t = tokens.mint({ readOnly: req.readOnly, ...(req.ttlMs === undefined ? {} : { ttlMs: req.ttlMs }) });
        log.info({ tokenId: t.id, readOnly: t.readOnly, expiresAt: new Date(t.expiresAt).toISOString() }, "console token minted");
        return { ok: true, token: t.token, id: t.id, readOnly: t.readOnly, expiresAt: t.expiresAt, url: url() };
      }
      if (req.op === "revoke") {
        await tokens.revoke(checkId(req.id, "id"));
        log.info({ tokenId: req.id }, "console token revoked");
        return { ok: true, id: req.id };
      }
      await tokens.rotate();
      log.info("console secret rotated: every token minted before is void");
      return { ok: true };
    } catch (err) {
      const code = err instanceof CanopyError ? err.code : ErrorCode.Internal;
      return { ok: false, error: { code, message: errorMessage(err) } };
    }
  }
  return () => sub.unsubscribe();
}
