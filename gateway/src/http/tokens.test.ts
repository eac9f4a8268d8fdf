import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConsoleTokens } from "./tokens.js";

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "canopy-tokens-"));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test("a minted token verifies with its grants; tampering, expiry and garbage do not", () =>
  withDir(async (dir) => {
    const t = await ConsoleTokens.open(dir);
    const now = 1_000_000;
    const m = t.mint({ readOnly: true, ttlMs: 60_000 }, now);
    assert.deepEqual(t.verify(m.token, now + 1), { id: m.id, readOnly: true, issuedAt: now, expiresAt: now + 60_000 });
    assert.equal(t.verify(m.token, now + 60_000), undefined, "expired");
    const [p, payload, sig] = m.token.split(".");
    const forged = Buffer.from(JSON.stringify({ id: m.id, ro: false, iat: now, exp: now + 60_000 })).toString("base64url");
    assert.equal(t.verify(`${p}.${forged}.${sig}`, now), undefined, "payload changed, signature kept");
    assert.equal(t.verify(`${p}.${payload}.${sig}x`, now), undefined);
    for (const bad of [undefined, "", "cnp1", "cnp1.a.b.c", "x".repeat(600), `cnp2.${payload}.${sig}`]) assert.equal(t.verify(bad, now), undefined, String(bad).slice(0, 20));
    assert.throws(() => t.mint({ readOnly: false, ttlMs: 0 }), /lifetime/);
  }));

test("the secret is 0600 and survives a reopen; revoke and rotate void tokens", () =>
  withDir(async (dir) => {
    const a = await ConsoleTokens.open(dir);
    assert.equal((await stat(join(dir, "console", "secret"))).mode & 0o777, 0o600);
    const m1 = a.mint({ readOnly: false });
    const m2 = a.mint({ readOnly: false });
    const b = await ConsoleTokens.open(dir);
    assert.ok(b.verify(m1.token), "same secret after a restart");
    await b.revoke(m1.id, m1.expiresAt);
    assert.equal(b.verify(m1.token), undefined);
    assert.ok(b.verify(m2.token));
    assert.equal((await ConsoleTokens.open(dir)).verify(m1.token), undefined, "revocation persists");
    await b.rotate();
    assert.equal(b.verify(m2.token), undefined, "rotation voids every token");
    assert.ok(b.verify(b.mint({ readOnly: true }).token));
  }));
