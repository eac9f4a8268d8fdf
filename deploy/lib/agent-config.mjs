#!/usr/bin/env node
// Writes a device's /etc/canopy from an enrollment bundle (JSON file) or a one-line join token
// (`canopy1.<base64url(JSON bundle)>`), for deploy/install.sh:
//   agent.json  {device, hub, data, credentials?, tls?, bridge}   0600
//   device.creds, ca.pem, cert.pem, key.pem (those the bundle holds)  0600
// Usage: node agent-config.mjs (--join TOKEN | --bundle FILE) (--out DIR | --check) [--data DIR] [--no-bridge]
// Exit 2 on bad input, with a message naming what is wrong. Uses @canopy/protocol's bundle parser
// when the installed tree has one, so the format stays the one the hub writes.
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";

const ID = /^[A-Za-z0-9_-]{1,64}$/;
const HUB_URL = /^(nats-leaf|tls):\/\/[^\s,]+$/;
const TOKEN_PREFIX = "canopy1.";

function fail(msg) {
  process.stderr.write(`canopy install: ${msg}\n`);
  process.exit(2);
}

function args(argv) {
  const o = { bridge: true, data: "/var/lib/canopy" };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => argv[++i] ?? fail(`${a} needs a value`);
    if (a === "--join") o.join = value();
    else if (a === "--bundle") o.bundle = value();
    else if (a === "--out") o.out = value();
    else if (a === "--data") o.data = value();
    else if (a === "--no-bridge") o.bridge = false;
    else if (a === "--check") o.check = true;
    else fail(`unknown argument ${a}`);
  }
  if (!o.out && !o.check) fail("--out DIR (or --check) is required");
  if (Boolean(o.join) === Boolean(o.bundle)) fail("give exactly one of --join TOKEN or --bundle FILE");
  return o;
}

function decodeToken(token) {
  const t = token.trim();
  if (!t.startsWith(TOKEN_PREFIX)) fail("join token: not a Canopy join token (expected canopy1.…)");
  try {
    return JSON.parse(Buffer.from(t.slice(TOKEN_PREFIX.length), "base64url").toString("utf8"));
  } catch {
    return fail("join token: damaged (not base64url JSON)");
  }
}

function check(b, what) {
  if (!b || typeof b !== "object") fail(`${what}: not a JSON object`);
  if (typeof b.device !== "string" || !ID.test(b.device)) fail(`${what}: device must match ${ID}`);
  if (!Array.isArray(b.hub) || b.hub.length === 0 || !b.hub.every((u) => typeof u === "string" && HUB_URL.test(u))) {
    fail(`${what}: hub must be a non-empty list of nats-leaf://HOST:PORT or tls://HOST:PORT`);
  }
  for (const k of ["creds", "ca", "cert", "key"]) {
    if (b[k] !== undefined && (typeof b[k] !== "string" || b[k].length > 16_384)) fail(`${what}: ${k} must be text (at most 16 KiB)`);
  }
  return b;
}

async function protocolParser() {
  try {
    const p = await import(new URL("../../node_modules/@canopy/protocol/dist/index.js", import.meta.url).href);
    return typeof p.parseBundle === "function" ? p : undefined;
  } catch {
    return undefined;
  }
}

const o = args(process.argv.slice(2));
const what = o.join ? "join token" : `bundle ${o.bundle}`;
let raw;
if (o.join) raw = decodeToken(o.join);
else {
  try {
    raw = JSON.parse(readFileSync(o.bundle, "utf8"));
  } catch (err) {
    fail(`cannot read ${what}: ${err.message}`);
  }
}
const p = await protocolParser();
let bundle;
try {
  bundle = p ? p.parseBundle(raw, what) : raw;
} catch (err) {
  fail(err.message);
}
check(bundle, what);
if (o.check) process.exit(0);

mkdirSync(o.out, { recursive: true, mode: 0o750 });
const secret = (name, text) => {
  const file = join(o.out, name);
  writeFileSync(file, text.endsWith("\n") ? text : `${text}\n`, { mode: 0o600 });
  return file;
};
const config = { device: bundle.device, hub: bundle.hub, data: o.data };
if (bundle.creds) config.credentials = secret("device.creds", bundle.creds);
if (bundle.cert && bundle.key && bundle.ca) {
  config.tls = { certFile: secret("cert.pem", bundle.cert), keyFile: secret("key.pem", bundle.key), caFile: secret("ca.pem", bundle.ca) };
} else if (bundle.ca) secret("ca.pem", bundle.ca);
// USB-serial MCUs appear under /dev/canopy/ (deploy/udev/99-canopy-serial.rules); the bridge picks
// them up as they are plugged in.
if (o.bridge) config.bridge = { serial: ["/dev/canopy/*"] };
writeFileSync(join(o.out, "agent.json"), JSON.stringify(config, null, 2) + "\n", { mode: 0o600 });
process.stdout.write(JSON.stringify({ device: bundle.device, hub: bundle.hub, credentials: Boolean(bundle.creds) }) + "\n");
