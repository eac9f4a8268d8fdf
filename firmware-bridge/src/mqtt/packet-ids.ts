/**
 * Packet ids a client has used on one connection (a fixed 8 KiB bitmap). A client may resend an
 * unacknowledged PUBLISH only after reconnecting [MQTT-4.4.0-1], so only the first use of an id on a
 * connection can be a resend — whatever its DUP flag says.
 */
export class UsedPacketIds {
  private bits: Uint8Array | undefined;

  /** True the first time `id` is seen on this connection. */
  first(id: number): boolean {
    const bits = (this.bits ??= new Uint8Array(8192));
    const i = (id >> 3) & 0x1fff;
    const mask = 1 << (id & 7);
    const had = ((bits[i] ?? 0) & mask) !== 0;
    bits[i] = (bits[i] ?? 0) | mask;
    return !had;
  }
}

/** The dedup key of a client's QoS 1 packet id (see registry/store.ts). */
export const mqttDedupKey = (clientId: string, messageId: number): string => `m:${clientId}/${messageId}`;
