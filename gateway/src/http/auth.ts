import type { IncomingMessage, ServerResponse } from "node:http";
import { CanopyError, ErrorCode } from "@canopy/protocol";
import type { ConsoleTokens, Session } from "./tokens.js";

export const COOKIE = "canopy_console";

function cookieToken(req: IncomingMessage): string | undefined {
  for (const part of (req.headers.cookie ?? "").split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === COOKIE) return decodeURIComponent(part.slice(eq + 1).trim());
  }
  return undefined;
}

/** `Authorization: Bearer <token>` (API clients) or the session cookie (the browser). */
export function sessionOf(tokens: ConsoleTokens, req: IncomingMessage): Session {
  const auth = req.headers.authorization;
  const token = auth?.startsWith("Bearer ") ? auth.slice(7).trim() : cookieToken(req);
  const session = tokens.verify(token);
  if (!session) {
    throw new CanopyError(ErrorCode.Unauthorized, token ? "the console token is invalid, expired or revoked" : "log in with a console token (canopy console token)");
  }
  return session;
}

export function requireWrite(session: Session): void {
  if (session.readOnly) throw new CanopyError(ErrorCode.Forbidden, "this console token is read-only");
}

/** HttpOnly (scripts never see it), SameSite=Strict (no cross-site requests carry it), expiring with the token. */
export function setSessionCookie(res: ServerResponse, token: string, session: Session, secure: boolean): void {
  const maxAge = Math.max(0, Math.floor((session.expiresAt - Date.now()) / 1000));
  res.setHeader("Set-Cookie", `${COOKIE}=${encodeURIComponent(token)}; HttpOnly; SameSite=Strict; Path=/; Max-Age=${maxAge}${secure ? "; Secure" : ""}`);
}

export function clearSessionCookie(res: ServerResponse, secure: boolean): void {
  res.setHeader("Set-Cookie", `${COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0${secure ? "; Secure" : ""}`);
}

/**
 * `GET /any/page?token=…`: log the browser in once — verify, set the cookie, and redirect to the same
 * page without the token so it does not stay in the address bar or history. True when handled.
 */
export function loginFromUrl(tokens: ConsoleTokens, url: URL, res: ServerResponse, secure: boolean): boolean {
  const token = url.searchParams.get("token");
  if (token === null) return false;
  const session = tokens.verify(token);
  url.searchParams.delete("token");
  const target = `${url.pathname}${url.search}${url.hash}`;
  if (!session) {
    res.writeHead(401, { "Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-store" });
    res.end("This console link's token is invalid, expired or revoked. Mint a new one: canopy console open\n");
    return true;
  }
  setSessionCookie(res, token, session, secure);
  res.writeHead(303, { Location: target, "Cache-Control": "no-store" });
  res.end();
  return true;
}
