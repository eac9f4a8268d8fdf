/** One command waiting for its MCU's ack. `linkId` is the 16-bit id written on the wire. */
export interface PendingCommand {
  linkId: number;
  id: string;
  name: string;
  timer: NodeJS.Timeout;
}

/**
 * Commands in flight to one MCU. Acks are matched by the 16-bit link id (serial, and MQTT 5
 * correlation data) or, for MQTT 3.1.1 clients that cannot echo an id, to the oldest pending command
 * of the same name.
 */
export class PendingCommands {
  private nextLinkId = 1;
  private readonly byLinkId = new Map<number, PendingCommand>();

  constructor(private readonly max = 256) {}

  get size(): number {
    return this.byLinkId.size;
  }

  add(id: string, name: string, timeoutMs: number, onTimeout: (p: PendingCommand) => void): PendingCommand | undefined {
    if (this.byLinkId.size >= this.max) return undefined;
    let linkId = this.nextLinkId;
    while (this.byLinkId.has(linkId)) linkId = (linkId % 0xffff) + 1;
    this.nextLinkId = (linkId % 0xffff) + 1;
    const p: PendingCommand = {
      linkId,
      id,
      name,
      timer: setTimeout(() => {
        this.byLinkId.delete(linkId);
        onTimeout(p);
      }, timeoutMs),
    };
    p.timer.unref();
    this.byLinkId.set(linkId, p);
    return p;
  }

  takeByLinkId(linkId: number): PendingCommand | undefined {
    const p = this.byLinkId.get(linkId);
    if (p) this.settle(p);
    return p;
  }

  takeOldestByName(name: string): PendingCommand | undefined {
    for (const p of this.byLinkId.values()) {
      if (p.name === name) {
        this.settle(p);
        return p;
      }
    }
    return undefined;
  }

  clear(): void {
    for (const p of this.byLinkId.values()) clearTimeout(p.timer);
    this.byLinkId.clear();
  }

  private settle(p: PendingCommand): void {
    clearTimeout(p.timer);
    this.byLinkId.delete(p.linkId);
  }
}
