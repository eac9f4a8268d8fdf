import type { NatsConnection } from "@nats-io/transport-node";
import { CanopyError, ErrorCode, Facts, errorMessage, isOnline, type Facts as FactsT } from "@canopy/protocol";
import { PresenceView } from "../registry/presence.js";

export interface KnownDevice {
  id: string;
  groups: string[];
  /** Hub receive time of the last status record (not the device clock). */
  seenAt: number | undefined;
  online: boolean;
  /** The facts of the last status record, validated on demand (only silent devices need them). */
  lastFacts(): FactsT | undefined;
}

export interface Target {
  group?: string | undefined;
  device?: string | undefined;
}

/**
 * The devices a query is addressed to, as the hub knows them: registry (KV `devices`) filtered by
 * group or device, joined with presence (KV `status`). Online ones are the expected answerers.
 * Read from the connection's in-memory PresenceView: the first query on a connection reads both
 * buckets once, later ones read nothing (at 5,000 devices the read cost more than the fan-out).
 * Records are checked field by field rather than with the full schemas, for the same reason.
 */
export async function targetDevices(nc: NatsConnection, target: Target, now = Date.now()): Promise<KnownDevice[]> {
  let view: PresenceView;
  try {
    view = await PresenceView.for(nc);
  } catch (err) {
    throw hubError(err);
  }
  return view.list(target).map((r) => {
    const at = r.status?.at;
    const heartbeatMs = r.status?.heartbeatMs;
    const online =
      r.seenAt !== undefined && typeof at === "number" && typeof heartbeatMs === "number" && heartbeatMs > 0 &&
      isOnline({ at: r.seenAt, heartbeatMs, state: r.status?.state === "stopping" ? "stopping" : "online" }, now);
    return {
      id: r.id,
      groups: r.groups,
      seenAt: r.seenAt,
      online,
      lastFacts: () => {
        const f = Facts.safeParse(r.status?.facts);
        return f.success ? f.data : undefined;
      },
    };
  });
}

function hubError(err: unknown): CanopyError {
  return new CanopyError(ErrorCode.Unavailable, `cannot read the registry/presence buckets: ${errorMessage(err)} (is this a Canopy hub?)`, { cause: err });
}
