import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { createAccount, createOperator, createUser, fromSeed, type KeyPair } from "@nats-io/nkeys";
import { encodeOperator, encodeUser, fmtCreds } from "@nats-io/jwt";
import { CanopyError, ErrorCode } from "@canopy/protocol";
import { encodeCanopyAccount, encodeSystemAccount } from "./account.js";
import { ensureTls, type TlsFiles } from "./tls.js";

/**
 * The hub's identity (decentralized JWT, operator mode): an operator, the system account `SYS`, the
 * `CANOPY` account (JetStream on, a signing key that signs every user), admin and system users, and the
 * CA of the leaf link. Everything lives under one directory, secrets 0600 in 0700 folders:
 *
 *   keys/{operator,sys,account,account-signing}.nk   seeds
 *   identity.json                                      public keys and the current JWTs
 *   creds/admin.creds, creds/sys.creds                 operator and system users
 *   tls/                                               CA and hub certificate (see tls.ts)
 *
 * `initIdentity` makes it on first use and loads it after; `hub init --dir` and `hub start` share it.
 */
export interface Identity {
  dir: string;
  operator: { pub: string; jwt: string; kp: KeyPair };
  sys: { pub: string; jwt: string };
  account: { pub: string; jwt: string; kp: KeyPair; signing: KeyPair };
  adminCreds: string;
  sysCreds: string;
  tls: TlsFiles;
}

interface IdentityFile {
  v: 1;
  operator: { pub: string; jwt: string };
  sys: { pub: string; jwt: string };
  account: { pub: string; jwt: string; signingKey: string };
}

export const ACCOUNT_NAME = "CANOPY";

export async function initIdentity(dirArg: string, opts: { tlsHosts?: string[] } = {}): Promise<Identity> {
  const dir = resolve(dirArg);
  const keysDir = join(dir, "keys");
  const credsDir = join(dir, "creds");
  await mkdir(keysDir, { recursive: true, mode: 0o700 });
  await mkdir(credsDir, { recursive: true, mode: 0o700 });
  await chmod(keysDir, 0o700);
  await chmod(credsDir, 0o700);
  const operatorKp = await seedFile(join(keysDir, "operator.nk"), createOperator);
  const sysKp = await seedFile(join(keysDir, "sys.nk"), createAccount);
  const accountKp = await seedFile(join(keysDir, "account.nk"), createAccount);
  const signingKp = await seedFile(join(keysDir, "account-signing.nk"), createAccount);
  const file = join(dir, "identity.json");
  let id = await readIdentityFile(file);
  if (!id || id.operator.pub !== operatorKp.getPublicKey() || id.account.pub !== accountKp.getPublicKey()) {
    const sysPub = sysKp.getPublicKey();
    id = {
      v: 1,
      operator: { pub: operatorKp.getPublicKey(), jwt: await encodeOperator("canopy", operatorKp, { system_account: sysPub }) },
      sys: { pub: sysPub, jwt: await encodeSystemAccount(sysKp, operatorKp) },
      account: {
        pub: accountKp.getPublicKey(),
        jwt: await encodeCanopyAccount(accountKp, operatorKp, signingKp.getPublicKey(), {}),
        signingKey: signingKp.getPublicKey(),
      },
    };
    await writeSecret(file, JSON.stringify(id, null, 2) + "\n");
  }
  const adminCreds = join(credsDir, "admin.creds");
  const sysCreds = join(credsDir, "sys.creds");
  await ensureCreds(adminCreds, async (u) => encodeUser("admin", u, accountKp, {}, { signer: signingKp }));
  await ensureCreds(sysCreds, async (u) => encodeUser("sys", u, sysKp));
  const tls = await ensureTls(join(dir, "tls"), opts.tlsHosts ?? []);
  return {
    dir,
    operator: { pub: id.operator.pub, jwt: id.operator.jwt, kp: operatorKp },
    sys: id.sys,
    account: { pub: id.account.pub, jwt: id.account.jwt, kp: accountKp, signing: signingKp },
    adminCreds,
    sysCreds,
    tls,
  };
}

/** Records a re-signed account JWT (after a revocation) so the next hub start preloads it. */
export async function saveAccountJwt(identity: Identity, jwt: string): Promise<void> {
  const file = join(identity.dir, "identity.json");
  const id = await readIdentityFile(file);
  if (!id) throw new CanopyError(ErrorCode.NotFound, `no identity in ${identity.dir}`);
  id.account.jwt = jwt;
  identity.account.jwt = jwt;
  await writeSecret(file, JSON.stringify(id, null, 2) + "\n");
}

/** Writes `text` readable by the owner only (0600), replacing the file atomically enough for one writer. */
export async function writeSecret(path: string, text: string | Uint8Array): Promise<void> {
  await writeFile(path, text, { mode: 0o600 });
  await chmod(path, 0o600);
}

async function seedFile(path: string, create: () => KeyPair): Promise<KeyPair> {
  try {
    return fromSeed(new TextEncoder().encode((await readFile(path, "utf8")).trim()));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") {
      throw new CanopyError(ErrorCode.Internal, `cannot read key ${path}: ${(err as Error).message}`, { cause: err });
    }
  }
  const kp = create();
  await writeSecret(path, new TextDecoder().decode(kp.getSeed()) + "\n");
  return kp;
}

async function ensureCreds(path: string, encode: (user: KeyPair) => Promise<string>): Promise<void> {
  try {
    await readFile(path);
    await chmod(path, 0o600);
    return;
  } catch {
    /* missing: mint */
  }
  const u = createUser();
  await writeSecret(path, fmtCreds(await encode(u), u));
}

async function readIdentityFile(path: string): Promise<IdentityFile | undefined> {
  try {
    return JSON.parse(await readFile(path, "utf8")) as IdentityFile;
  } catch {
    return undefined;
  }
}
