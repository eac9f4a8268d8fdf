import type { Database } from "lmdb";

/** Frames an MCU may be ahead of the next expected one before the gap is given up (16-bit seq space). */
const HALF = 0x8000;
/** A gap no resend filled within this long is given up (an MCU that dropped a frame must not stall the link). */
const GAP_GIVE_UP_MS = 10_000;

export type OrderVerdict = "take" | "resend" | "early";

/**
 * Keeps one MCU's binary frames in order into UP. The MCU resends unacked frames (selective repeat,
 * window 32), so after a bridge restart or a frame lost before the MCU's hello, a later frame can
 * arrive before an earlier one's resend: taking it would store the readings out of order. A frame is
 * taken only when it is the next expected one (`early` ones are left unacked, and the MCU sends
 * them again after the gap); frames behind are resends of frames already taken (the dedup path
 * stores them once). The cursor (boot nonce, next seq) is persisted in `meta` so a restarted bridge
 * continues where it stopped, and it moves only past frames that are SETTLED (stored in UP, or
 * refused), in take order: a frame taken but not yet stored when the bridge died is expected again
 * after the restart, so the MCU's resend of it is stored before any later frame (were the cursor
 * past it, a later frame still in the pty could be taken first and the resend land behind it).
 */
export class FrameOrder {
  private boot = -1;
  private next = 0;
  /** Seqs the MCU spent on hellos within this boot: never data, skipped when reached. */
  private readonly hellos = new Set<number>();
  private gapSince = 0;
  /** Taken frames not settled yet, in take order (at most the MCU's window, bounded anyway). */
  private readonly unsettled: number[] = [];
  private readonly settledEarly = new Set<number>();

  constructor(
    private readonly meta: Database<number, string> | undefined,
    private readonly mcu: string,
    /** A gap was given up: `expected` never came within GAP_GIVE_UP_MS, `taken` was taken instead. */
    private readonly onGiveUp: (expected: number, taken: number, waitedMs: number) => void = () => {},
  ) {}

  private get key(): string {
    return `serialNext:${this.mcu}`;
  }

  /** The MCU said hello with its boot nonce; a new boot starts after the hello's seq. */
  hello(boot: number, seq: number): void {
    if (this.boot !== boot) {
      const saved = this.meta?.get(this.key);
      if (saved !== undefined && Math.floor(saved / 0x10000) === boot) {
        this.boot = boot;
        this.next = saved % 0x10000;
      } else {
        this.boot = boot;
        this.next = (seq + 1) & 0xffff;
        this.hellos.clear();
        this.unsettled.length = 0;
        this.settledEarly.clear();
        this.save();
        return;
      }
    }
    if (((seq - this.next) & 0xffff) < HALF) this.hellos.add(seq);
    this.skipHellos();
  }

  check(seq: number, now = Date.now()): OrderVerdict {
    const d = (seq - this.next) & 0xffff;
    if (d >= HALF) return "resend";
    if (d !== 0) {
      if (this.gapSince === 0) this.gapSince = now;
      if (now - this.gapSince < GAP_GIVE_UP_MS) return "early";
      this.onGiveUp(this.next, seq, now - this.gapSince);
    }
    this.gapSince = 0;
    this.next = (seq + 1) & 0xffff;
    this.skipHellos();
    this.unsettled.push(seq);
    // Bounded: frames that never settle (the bridge stopping) must not grow it; the cursor moves on.
    if (this.unsettled.length > 1024) this.settled(this.unsettled[0] as number, true);
    return "take";
  }

  /** A taken frame is stored in UP (or refused for good): the persisted cursor may move past it. */
  settled(seq: number, force = false): void {
    if (!force && !this.unsettled.includes(seq)) return;
    this.settledEarly.add(seq);
    let moved = false;
    while (this.unsettled.length > 0 && this.settledEarly.delete(this.unsettled[0] as number)) {
      this.unsettled.shift();
      moved = true;
    }
    if (moved) this.save();
  }

  private skipHellos(): void {
    while (this.hellos.delete(this.next)) this.next = (this.next + 1) & 0xffff;
    if (this.hellos.size > 64) this.hellos.clear();
  }

  private save(): void {
    const cursor = this.unsettled[0] ?? this.next;
    void this.meta?.put(this.key, this.boot * 0x10000 + cursor).catch(() => {});
  }
}
