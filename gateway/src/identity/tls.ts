import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { access, chmod, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { isIP } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { CanopyError, ErrorCode } from "@canopy/protocol";

const execFileP = promisify(execFile);

/**
 * The leaf link's TLS: a CA made with the hub's identity, a hub server certificate (SANs: loopback plus
 * the hosts devices dial), and a client certificate per device signed by the same CA. Made with the
 * `openssl` command (Debian's package), P-256 keys; keys 0600.
 */
export interface TlsFiles {
  dir: string;
  caCert: string;
  caKey: string;
  serverCert: string;
  serverKey: string;
}

const DAYS = "3650";

export async function ensureTls(dir: string, hosts: string[]): Promise<TlsFiles> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
  const f: TlsFiles = {
    dir,
    caCert: join(dir, "ca.pem"),
    caKey: join(dir, "ca.key"),
    serverCert: join(dir, "hub.pem"),
    serverKey: join(dir, "hub.key"),
  };
  if (!(await exists(f.caKey))) {
    await openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
      "-keyout", f.caKey, "-out", f.caCert, "-days", DAYS, "-subj", "/CN=Canopy fleet CA",
      "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"]);
    await chmod(f.caKey, 0o600);
  }
  const sans = [...new Set(["localhost", "127.0.0.1", "::1", ...hosts])];
  const sanFile = join(dir, "hub.sans");
  const wanted = sans.join(",");
  const have = await readFile(sanFile, "utf8").catch(() => "");
  if (have !== wanted || !(await exists(f.serverKey))) {
    const pem = await issueCert(f, "canopy-hub", sans, "serverAuth,clientAuth");
    await writeFile(f.serverKey, pem.key, { mode: 0o600 });
    await writeFile(f.serverCert, pem.cert);
    await writeFile(sanFile, wanted);
  }
  return f;
}

/** A key and a certificate signed by the fleet CA, returned as PEM text (nothing left on disk). */
export async function issueCert(
  ca: Pick<TlsFiles, "caCert" | "caKey">,
  commonName: string,
  sans: string[],
  usage: string,
): Promise<{ key: string; cert: string }> {
  const tmp = await mkdtemp(join(tmpdir(), "canopy-cert-"));
  try {
    const key = join(tmp, "key.pem");
    const csr = join(tmp, "req.csr");
    const cert = join(tmp, "cert.pem");
    const ext = join(tmp, "ext.cnf");
    await openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
      "-keyout", key, "-out", csr, "-subj", `/CN=${commonName}`]);
    const altNames = sans.map((s) => (isIP(s) ? `IP:${s}` : `DNS:${s}`)).join(",");
    await writeFile(ext, [
      "basicConstraints=CA:FALSE",
      "keyUsage=critical,digitalSignature,keyEncipherment",
      `extendedKeyUsage=${usage}`,
      ...(altNames ? [`subjectAltName=${altNames}`] : []),
    ].join("\n") + "\n");
    await openssl(["x509", "-req", "-in", csr, "-CA", ca.caCert, "-CAkey", ca.caKey, "-set_serial", `0x${randomBytes(16).toString("hex")}`,
      "-out", cert, "-days", DAYS, "-extfile", ext]);
    return { key: await readFile(key, "utf8"), cert: await readFile(cert, "utf8") };
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

async function openssl(args: string[]): Promise<void> {
  try {
    await execFileP("openssl", args, { timeout: 30_000 });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === "ENOENT") {
      throw new CanopyError(ErrorCode.Unavailable, "openssl not found; install it with: sudo apt-get install -y openssl", { cause: err });
    }
    throw new CanopyError(ErrorCode.Internal, `openssl ${args[0]} failed: ${e.stderr ?? e.message}`, { cause: err });
  }
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(() => true, () => false);
}
