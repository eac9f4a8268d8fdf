import { createUser } from "@nats-io/nkeys";
import { encodeUser, fmtCreds, type Permissions } from "@nats-io/jwt";
import { Assets, HUB_DOMAIN, Subjects, checkId } from "@canopy/protocol";
import type { Identity } from "./init.js";

/**
 * A device's NATS user: it may connect only as a leaf node (`allowed_connection_types: LEAFNODE`), and
 * its allow-lists name only its own subjects. From the hub's point of view on a leaf connection, `pub`
 * is what the leaf may send into the hub and `sub` what the hub may deliver to the leaf.
 * nats-server ≥ 2.14 enforces both at the hub, also against a raw leaf-protocol client (DESIGN.md).
 */
export function devicePermissions(device: string): Permissions {
  const d = checkId(device, "device id");
  const hubApi = `$JS.${HUB_DOMAIN}.API`;
  const devApi = Subjects.deviceJsApi(d);
  const cfgStream = `KV_${Assets.kvConfig}`;
  const fwStream = `OBJ_${Assets.objFirmware}`;
  return {
    pub: {
      allow: [
        `up.${d}.>`,
        // its own filtered mirrors of the hub's CMD and config KV (the filter must match the subject)
        `${hubApi}.CONSUMER.CREATE.${Assets.cmdStream}.*.cmd.${d}.>`,
        `${hubApi}.CONSUMER.CREATE.${cfgStream}.*.$KV.${Assets.kvConfig}.${d}.>`,
        `$JS.FC.${Assets.cmdStream}.>`,
        `$JS.FC.${cfgStream}.>`,
        // the hub's source of its UP delivers on its own prefix
        `${Subjects.sourceDeliver(d)}.>`,
        "$JSC.R.>",
        // presence: its own key in KV status and KV beat (JetStream publishes, direct gets), its own
        // registry record (direct get)
        Subjects.statusPut(d),
        Subjects.statusGet(d),
        Subjects.beatPut(d),
        Subjects.beatGet(d),
        Subjects.registryGet(d),
        // firmware images (read-only): stream info, the object's meta, its chunks by sequence (resume)
        `${hubApi}.STREAM.INFO.${fwStream}`,
        `${hubApi}.STREAM.MSG.GET.${fwStream}`,
        `${hubApi}.DIRECT.GET.${fwStream}`,
        `${hubApi}.DIRECT.GET.${fwStream}.>`,
        // answers to live queries and gateway probes: only on its own reply subject
        `${Subjects.queryReplyPrefix}.${d}.>`,
      ],
    },
    sub: {
      allow: [
        `cmd.${d}.>`,
        Subjects.queryAll,
        "q.group.*",
        Subjects.queryDevice(d),
        Subjects.registryNotice(d),
        `${devApi}.CONSUMER.CREATE.${Assets.upStream}`,
        `${devApi}.CONSUMER.CREATE.${Assets.upStream}.>`,
        // the gateway's probe before it revives a stalled source (answered on qr.<dev>.…)
        `${devApi}.STREAM.INFO.${Assets.upStream}`,
        `$JS.FC.${Assets.upStream}.>`,
        `${Subjects.mirrorDeliver(d)}.>`,
        "$JSC.R.>",
        `${Subjects.deviceInboxPrefix(d)}.>`,
      ],
    },
  };
}

export interface DeviceUser {
  device: string;
  /** Public nkey of the user: what a revocation names. */
  userKey: string;
  /** The .creds text (JWT + seed): a secret. */
  creds: string;
}

/** Mints a new user (a new nkey every time) for `device`, signed by the account's signing key. */
export async function mintDeviceUser(identity: Identity, device: string): Promise<DeviceUser> {
  const d = checkId(device, "device id");
  const u = createUser();
  const jwt = await encodeUser(
    d,
    u,
    identity.account.kp,
    { ...devicePermissions(d), allowed_connection_types: ["LEAFNODE"], subs: -1, data: -1, payload: -1 },
    { signer: identity.account.signing },
  );
  return { device: d, userKey: u.getPublicKey(), creds: new TextDecoder().decode(fmtCreds(jwt, u)) };
}
