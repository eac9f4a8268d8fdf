import { chmodSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { CanopyError, ErrorCode, decodeJoinToken, parseBundle, type EnrollBundle, type TlsFilesConfig } from "@canopy/protocol";

/**
 * Enrollment on the device: a bundle (`--bundle FILE`) or join token (`--join TOKEN`) from
 * `canopy device add` is written under `<data>/identity/` (0600 files in a 0700 folder) and used
 * from then on, so a restart needs only `--data`. The seed in `device.creds` is this device's identity.
 */
export interface Enrollment {
  device: string;
  hub: string[];
  credentialsFile: string;
  tls?: TlsFilesConfig;
}

const Stored = z.object({ device: z.string(), hub: z.array(z.string()), tls: z.boolean() });

export function readBundleArg(f: { bundle?: string | undefined; join?: string | undefined }): EnrollBundle | undefined {
  if (f.bundle && f.join) throw new CanopyError(ErrorCode.InvalidInput, "give --bundle or --join, not both");
  if (f.join) return decodeJoinToken(f.join);
  if (!f.bundle) return undefined;
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(f.bundle, "utf8"));
  } catch (err) {
    throw new CanopyError(ErrorCode.InvalidInput, `cannot read bundle ${f.bundle}: ${(err as Error).message}`);
  }
  return parseBundle(json, `bundle ${f.bundle}`);
}

/** Writes the bundle's secrets under DATA and returns the enrollment they make. */
export function storeEnrollment(dataDir: string, b: EnrollBundle): Enrollment {
  const dir = identityDir(dataDir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  const secret = (name: string, text: string): void => {
    writeFileSync(join(dir, name), text, { mode: 0o600 });
    chmodSync(join(dir, name), 0o600);
  };
  secret("device.creds", b.creds);
  const tls = Boolean(b.ca && b.cert && b.key);
  if (b.ca && b.cert && b.key) {
    secret("ca.pem", b.ca);
    secret("cert.pem", b.cert);
    secret("key.pem", b.key);
  }
  secret("enrollment.json", JSON.stringify({ device: b.device, hub: b.hub, tls } satisfies z.infer<typeof Stored>) + "\n");
  return toEnrollment(dir, { device: b.device, hub: b.hub, tls });
}

/** The enrollment stored by an earlier run, if any. */
export function storedEnrollment(dataDir: string): Enrollment | undefined {
  const dir = identityDir(dataDir);
  let raw: string;
  try {
    raw = readFileSync(join(dir, "enrollment.json"), "utf8");
  } catch {
    return undefined;
  }
  const r = Stored.safeParse(JSON.parse(raw));
  if (!r.success) throw new CanopyError(ErrorCode.InvalidInput, `${join(dir, "enrollment.json")} is damaged; enroll again with --bundle`);
  return toEnrollment(dir, r.data);
}

function toEnrollment(dir: string, s: z.infer<typeof Stored>): Enrollment {
  return {
    device: s.device,
    hub: s.hub,
    credentialsFile: join(dir, "device.creds"),
    ...(s.tls ? { tls: { caFile: join(dir, "ca.pem"), certFile: join(dir, "cert.pem"), keyFile: join(dir, "key.pem") } } : {}),
  };
}

function identityDir(dataDir: string): string {
  return join(dataDir, "identity");
}
