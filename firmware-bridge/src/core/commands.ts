import type { McuCommandResult } from "@canopy/protocol";

export type CommandAnswer = (status: McuCommandResult["status"], detail: string) => void;

/** One command waiting for its MCU's ack. `linkId` is the 16-bit id written on the wire. */
export interface PendingCommand {
  linkId: number;
  id: string;
  name: string;
  timer: NodeJS.Timeout;
  /** Tells the agent's request how the command ended (called once). */
  answer: CommandAnswer;
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

  add(id: string, name: string, timeoutMs: number, answer: CommandAnswer, onTimeout: (p: PendingCommand) => void): PendingCommand | undefined {
    if (this.byLinkId.size >= this.max) return undefined;
    let linkId = this.nextLinkId;
    while (this.byLinkId.has(linkId)) linkId = (linkId % 0xffff) + 1;
    this.nextLinkId = (linkId % 0xffff) + 1;
    const p: PendingCommand = {
      linkId,
      id,
      name,
      answer,
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

/** A command held for an offline MCU until it comes back (or `waitMs` passes). */
export interface HeldCommand {
  deliver(): void;
  timer: NodeJS.Timeout;
}

/** Commands held for offline MCUs, bounded per MCU; released in arrival order when the MCU attaches. */
export class HeldCommands {
  private readonly byMcu = new Map<string, HeldCommand[]>();

  constructor(private readonly maxPerMcu = 64) {}

  hold(mcu: string, waitMs: number, deliver: () => void, expire: () => void): boolean {
    const list = this.byMcu.get(mcu) ?? [];
    if (list.length >= this.maxPerMcu) return false;
    const held: HeldCommand = {
      deliver,
      timer: setTimeout(() => {
        const l = this.byMcu.get(mcu);
        const i = l?.indexOf(held) ?? -1;
        if (l && i >= 0) l.splice(i, 1);
        if (l?.length === 0) this.byMcu.delete(mcu);
        expire();
      }, waitMs),
    };
    held.timer.unref();
    list.push(held);
    this.byMcu.set(mcu, list);
    return true;
  }

  release(mcu: string): void {
    const list = this.byMcu.get(mcu);
    if (!list) return;
    this.byMcu.delete(mcu);
    for (const h of list) {
      clearTimeout(h.timer);
      h.deliver();
    }
  }

  clear(): void {
    for (const list of this.byMcu.values()) for (const h of list) clearTimeout(h.timer);
    this.byMcu.clear();
  }
}
