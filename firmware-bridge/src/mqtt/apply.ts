import type { McuHub, McuSession } from "../core/hub.js";
import type { Routed } from "./profiles/types.js";

/** How a QoS 1 PUBLISH is recognised if it comes again (see UsedPacketIds, UpPublisher). */
export interface PublishDedup {
  base: string;
  retransmit: boolean;
  maybeResend: boolean;
}

/** The dedup key of the i-th stored output of one PUBLISH (a Tasmota SENSOR makes several). */
export const outputKey = (base: string, i: number): string => (i === 0 ? base : `${base}#${i}`);

/**
 * Carries out what a profile made of one PUBLISH. Resolves once every reading and event is in the UP
 * stream (the PUBACK waits for that); they are published in order, so an MCU's order is kept.
 */
export function applyRouted(r: Routed, s: McuSession, hub: McuHub, rehello: (board: string, firmware: string) => void, dedup?: PublishDedup): Promise<unknown> {
  const work: Array<Promise<unknown>> = [];
  let stored = 0;
  for (const o of r.outputs) {
    if (o.kind === "tlm" || o.kind === "evt") {
      const d = dedup && { key: outputKey(dedup.base, stored++), boot: 0, retransmit: dedup.retransmit, maybeResend: dedup.maybeResend };
      work.push(o.kind === "tlm" ? s.telemetry(o.path, o.payload, d) : s.event(o.path, o.payload, d));
    } else if (o.kind === "ack") {
      if (!o.optional || hub.pendingFor(s.id).size > 0) work.push(s.commandAck(o.match, o.ok, o.detail));
    } else {
      rehello(o.board, o.firmware);
    }
  }
  return work.length === 1 ? (work[0] as Promise<unknown>) : Promise.all(work);
}
