import { isTerminal, stateRank, type CommandEvent, type CommandRecord } from "@canopy/protocol";

/**
 * Folds a device's event into the command's record. Events may arrive out of order or twice (a
 * replayed result, a shard re-read after a gateway restart): the state only moves forward, the first
 * terminal outcome stands, and each state's timestamp is kept once. Returns undefined if nothing changed.
 */
export function applyEvent(current: CommandRecord, ev: CommandEvent, now = Date.now()): CommandRecord | undefined {
  // The device's word beats the gateway's own conclusion (a TTL that passed while it was offline).
  const rec: CommandRecord = current.inferred ? withoutInference(current) : current;
  const times = { ...rec.times };
  const stamp = (state: string, at: number | undefined): void => {
    if (at !== undefined && times[state] === undefined) times[state] = at;
  };
  stamp("delivered", ev.deliveredAt);
  stamp("running", ev.startedAt);
  stamp(ev.state, ev.state === "delivered" ? ev.deliveredAt ?? ev.at : ev.state === "running" ? ev.startedAt ?? ev.at : ev.finishedAt ?? ev.at);

  let next: CommandRecord = { ...rec, times };
  if (!isTerminal(rec.state) && stateRank(ev.state) > stateRank(rec.state)) {
    next = { ...next, state: ev.state };
    if (isTerminal(ev.state)) {
      if (ev.result !== undefined) next.result = ev.result;
      if (ev.error !== undefined) next.error = ev.error;
    }
  }
  const changed = current.inferred || next.state !== rec.state || Object.keys(times).length !== Object.keys(rec.times).length;
  return changed ? { ...next, updatedAt: now } : undefined;
}

/**
 * The gateway's own verdict on a command still `queued` after its TTL: the device can no longer run
 * it (it checks the TTL on arrival), so the index says `expired` instead of `queued` forever.
 */
export function inferExpiry(rec: CommandRecord, now = Date.now()): CommandRecord | undefined {
  if (rec.state !== "queued" || now <= rec.createdAt + rec.ttlMs) return undefined;
  return {
    ...rec,
    state: "expired",
    inferred: true,
    times: { ...rec.times, expired: now },
    error: { code: "EXPIRED", message: "the device did not receive it within its TTL (concluded by the gateway)" },
    updatedAt: now,
  };
}

function withoutInference(r: CommandRecord): CommandRecord {
  const { inferred: _i, error: _e, ...rest } = r;
  const times = { ...r.times };
  delete times[r.state];
  return { ...rest, state: "queued", times };
}

/** A record for an event whose command the index does not know (its entry expired or was lost). */
export function recordFromEvent(ev: CommandEvent, now = Date.now()): CommandRecord {
  const base: CommandRecord = {
    id: ev.id,
    device: ev.device,
    name: "unknown",
    args: {},
    createdAt: ev.deliveredAt ?? ev.at,
    ttlMs: 1,
    state: "queued",
    times: {},
    updatedAt: now,
  };
  return applyEvent(base, ev, now) ?? base;
}
