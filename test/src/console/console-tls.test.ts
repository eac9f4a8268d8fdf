import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { request } from "node:https";
import { join } from "node:path";
import { Fleet, runCanopy, tempDir, type TempDir } from "../harness/index.js";
import { consoleUrl, mintToken } from "./helpers.js";

// The console over HTTPS when the hub is given a certificate: a self-signed one made with openssl.
let fleet: Fleet;
let certs: TempDir;
let ca: Buffer;

function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, string | string[] | undefined> }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { ca, headers }, (res) => {
      res.resume();
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers }));
    });
    req.on("error", reject);
    req.end();
  });
}

before(async () => {
  certs = await tempDir("canopy-console-tls-");
  const cert = join(certs.path, "console.crt");
  const key = join(certs.path, "console.key");
  execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", cert], { stdio: "ignore" });
  ca = readFileSync(cert);
  fleet = await Fleet.start({ hubArgs: ["--console-port", "0", "--console-cert", cert, "--console-key", key] });
});

after(async () => {
  await fleet?.stop();
  await certs?.remove();
});

test("with a certificate the console is HTTPS: Bearer API works and the login cookie is Secure", async () => {
  const base = consoleUrl(fleet);
  assert.match(base, /^https:\/\/127\.0\.0\.1:\d+$/);
  const token = await mintToken(fleet);
  assert.equal((await get(`${base}/api/session`)).status, 401);
  assert.equal((await get(`${base}/api/session`, { Authorization: `Bearer ${token}` })).status, 200);
  const login = await get(`${base}/?token=${token}`);
  assert.equal(login.status, 303);
  assert.match(String(login.headers["set-cookie"]), /HttpOnly; SameSite=Strict; Path=\/; Max-Age=\d+; Secure/);
});

test("hub start refuses half or unreadable TLS flags (exit 2) before starting anything", async () => {
  const dir = join(certs.path, "hub2");
  const half = await runCanopy(["hub", "start", "--data", dir, "--console-cert", join(certs.path, "console.crt")]);
  assert.equal(half.code, 2, half.stderr);
  const missing = await runCanopy(["hub", "start", "--data", dir, "--console-cert", "/nonexistent.crt", "--console-key", "/nonexistent.key"]);
  assert.equal(missing.code, 2, missing.stderr);
  assert.match(missing.stderr, /cannot read \/nonexistent\.crt/);
});
