import { readFile } from "node:fs/promises";
import type { NatsConnection, Subscription, Msg } from "@nats-io/transport-node";
import { Kvm, type KV } from "@nats-io/kv";
import { z } from "zod";
import { Assets, CanopyError, ErrorCode, Id, Subjects, decode, encode, errorMessage, type EnrollBundle } from "@canopy/protocol";
import type { Logger } from "../logging.js";
import { mintDeviceUser } from "./device.js";
import { issueCert } from "./tls.js";
import { Revoker } from "./revoke.js";
import type { Identity } from "./init.js";
import { hubReplicas } from "../hub/provision.js";

export const MintRequest = z.object({ device: Id });
export const RevokeRequest = z.object({ device: Id, keep: z.string().optional() });
const MintReply = z.object({ ok: z.literal(true), userKey: z.string(), bundle: z.unknown() });
const RevokeReply = z.object({ ok: z.literal(true), revoked: z.array(z.string()) });
const ErrorReply = z.object({ ok: z.literal(false), error: z.object({ code: z.string(), message: z.string() }) });
export const IdentityReply = z.union([MintReply, RevokeReply, ErrorReply]);
export type IdentityReply = z.infer<typeof IdentityReply>;

/** KV `identity`: per device, the public keys of every user minted for it and not yet revoked. */
interface KeysRecord {
  keys: string[];
}

/**
 * The gateway that holds the hub's identity answers `canopy.identity.mint` / `.revoke` (queue group:
 * any one of several). Only admin credentials can publish there: device users' allow-lists do not
 * name these subjects. Replies carry secrets (creds, TLS key) and are never logged.
 */
export class IdentityService {
  private subs: Subscription[] = [];
  private kv: KV | undefined;
  private readonly revoker: Revoker;

  constructor(
    private readonly nc: NatsConnection,
    private readonly identity: Identity,
    private readonly opts: { hubUrl: string; leafUrls: string[] },
    private readonly log: Logger,
  ) {
    this.revoker = new Revoker(identity, opts.hubUrl);
  }

  async start(): Promise<void> {
    this.kv = await new Kvm(this.nc).create(Assets.kvIdentity, { history: 1, replicas: await hubReplicas(this.nc) });
    this.subs = [
      this.nc.subscribe(Subjects.identityMint, { queue: "identity", callback: (_e, m) => void this.answer(m, () => this.mint(m)) }),
      this.nc.subscribe(Subjects.identityRevoke, { queue: "identity", callback: (_e, m) => void this.answer(m, () => this.revoke(m)) }),
    ];
  }

  stop(): void {
    for (const s of this.subs) s.unsubscribe();
  }

  private async answer(m: Msg, fn: () => Promise<object>): Promise<void> {
    try {
      m.respond(encode({ ok: true, ...(await fn()) }));
    } catch (err) {
      const code = err instanceof CanopyError ? err.code : ErrorCode.Internal;
      this.log.warn({ subject: m.subject, err: errorMessage(err) }, "identity request failed");
      m.respond(encode({ ok: false, error: { code, message: errorMessage(err) } }));
    }
  }

  private async mint(m: Msg): Promise<{ userKey: string; bundle: EnrollBundle }> {
    const { device } = decode(MintRequest, m.data, 4096);
    const user = await mintDeviceUser(this.identity, device);
    await this.updateKeys(device, (keys) => [...keys, user.userKey]);
    const pem = await issueCert(this.identity.tls, device, [], "clientAuth");
    this.log.info({ device, userKey: user.userKey }, "device credentials minted");
    const ca = await readFile(this.identity.tls.caCert, "utf8");
    return {
      userKey: user.userKey,
      bundle: { v: 1, device, hub: this.opts.leafUrls, creds: user.creds, ca, cert: pem.cert, key: pem.key },
    };
  }

  private async revoke(m: Msg): Promise<{ revoked: string[] }> {
    const { device, keep } = decode(RevokeRequest, m.data, 4096);
    const keys = (await this.readKeys(device)).filter((k) => k !== keep);
    await this.revoker.revoke(keys);
    await this.updateKeys(device, (current) => current.filter((k) => !keys.includes(k)));
    this.log.info({ device, revoked: keys }, "device credentials revoked");
    return { revoked: keys };
  }

  private async readKeys(device: string): Promise<string[]> {
    const e = await this.kv?.get(device);
    return e && e.operation === "PUT" ? (e.json<KeysRecord>().keys ?? []) : [];
  }

  private async updateKeys(device: string, change: (keys: string[]) => string[]): Promise<void> {
    const kv = this.kv;
    if (!kv) throw new CanopyError(ErrorCode.Unavailable, "identity service not started");
    for (let i = 0; i < 16; i++) {
      const e = await kv.get(device);
      const keys = change(e && e.operation === "PUT" ? (e.json<KeysRecord>().keys ?? []) : []);
      try {
        if (e) await kv.update(device, JSON.stringify({ keys }), e.revision);
        else await kv.create(device, JSON.stringify({ keys }));
        return;
      } catch {
        /* raced with another writer: read again */
      }
    }
    throw new CanopyError(ErrorCode.Conflict, `identity record of ${device} kept changing`);
  }
}
