import type { Command } from "commander";
import type { NatsConnection } from "@nats-io/transport-node";
import { CanopyError, ErrorCode, checkId, parseDuration, parseError } from "@canopy/protocol";
import { CONSOLE_TOKEN_SUBJECT, type TokenReply, type TokenRequest } from "../../http/token-service.js";
import { DEFAULT_TOKEN_TTL_MS, MAX_TOKEN_TTL_MS } from "../../http/tokens.js";
import { withHub } from "../context.js";
import { printJson } from "../output.js";

interface MintFlags {
  readOnly?: boolean;
  ttl?: string;
  json?: boolean;
}

async function ask(nc: NatsConnection, req: TokenRequest): Promise<TokenReply> {
  let reply: TokenReply;
  try {
    reply = (await nc.request(CONSOLE_TOKEN_SUBJECT, JSON.stringify(req), { timeout: 5_000 })).json<TokenReply>();
  } catch (err) {
    throw new CanopyError(ErrorCode.Unavailable, "no hub with a console answered (is 'canopy hub start' running with its gateway and console?)", { cause: err });
  }
  if (!reply.ok) throw parseError(reply.error);
  return reply;
}

function ttlOf(text: string | undefined): number {
  const ms = text === undefined ? DEFAULT_TOKEN_TTL_MS : parseDuration(text, "--ttl");
  if (!(ms > 0 && ms <= MAX_TOKEN_TTL_MS)) throw new CanopyError(ErrorCode.InvalidInput, "--ttl must be more than 0 and at most 90d");
  return ms;
}

function mintOptions(cmd: Command): Command {
  return cmd
    .option("--read-only", "the token can look but not change anything (sending commands, aborting rollouts: 403)")
    .option("--ttl <duration>", "how long the token is valid (max 90d)", "12h")
    .option("--json", "print {token, id, readOnly, expiresAt, url} as JSON");
}

/** `canopy console token|open|revoke`: tokens for the web console the hub serves. */
export function registerConsole(program: Command): void {
  const cons = program.command("console").description("the web console served by the hub: login tokens and links");
  mintOptions(cons.command("token"))
    .description("mint a console login token (the token alone on the last line); use it as 'Authorization: Bearer <token>'")
    .addHelpText("after", "\nExamples:\n  canopy console token\n  canopy console token --read-only --ttl 7d\n  TOKEN=$(canopy console token | tail -n1); curl -H \"Authorization: Bearer $TOKEN\" http://127.0.0.1:8420/api/fleet")
    .action(async (o: MintFlags, cmd: Command) => {
      const ttlMs = ttlOf(o.ttl);
      await withHub(cmd, async (nc) => {
        const r = await ask(nc, { op: "mint", readOnly: o.readOnly === true, ttlMs });
        if (o.json) return printJson({ token: r.token, id: r.id, readOnly: r.readOnly, expiresAt: r.expiresAt, url: r.url });
        process.stdout.write(`console token ${r.id} (${r.readOnly ? "read-only" : "read-write"}), expires ${new Date(r.expiresAt ?? 0).toISOString()}; console at ${r.url}\n`);
        process.stdout.write(`${r.token}\n`);
      });
    });
  mintOptions(cons.command("open"))
    .description("print a console URL that logs a browser in once (then a cookie keeps the session)")
    .addHelpText("after", "\nExamples:\n  canopy console open\n  xdg-open \"$(canopy console open --read-only)\"")
    .action(async (o: MintFlags, cmd: Command) => {
      const ttlMs = ttlOf(o.ttl);
      await withHub(cmd, async (nc) => {
        const r = await ask(nc, { op: "mint", readOnly: o.readOnly === true, ttlMs });
        const url = `${r.url}/?token=${encodeURIComponent(r.token ?? "")}`;
        if (o.json) return printJson({ url, id: r.id, readOnly: r.readOnly, expiresAt: r.expiresAt });
        process.stdout.write(`${url}\n`);
      });
    });
  cons
    .command("revoke [id]")
    .description("revoke one console token by id, or every token with --all (the hub rotates its secret)")
    .option("--all", "void every console token minted so far")
    .addHelpText("after", "\nExamples:\n  canopy console revoke 3f9a1c22b7e0\n  canopy console revoke --all")
    .action(async (id: string | undefined, o: { all?: boolean }, cmd: Command) => {
      if ((id === undefined) === (o.all !== true)) throw new CanopyError(ErrorCode.InvalidInput, "give a token id or --all");
      if (id !== undefined) checkId(id, "id");
      await withHub(cmd, async (nc) => {
        await ask(nc, id === undefined ? { op: "rotate" } : { op: "revoke", id });
        process.stdout.write(id === undefined ? "every console token revoked\n" : `console token ${id} revoked\n`);
      });
    });
}
