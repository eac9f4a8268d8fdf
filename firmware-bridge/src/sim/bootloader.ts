import { createHash } from "node:crypto";
import { BootCodec, BootOp, BootStatus } from "../flash/canopy-protocol.js";

/** An image containing this marker boots but never confirms (a "bad firmware" for rollback tests). */
export const NEVER_CONFIRM_MARKER = "CANOPY-NEVER-CONFIRM";
const MAX_IMAGE = 1024 * 1024;

export interface BootReply {
  op: number;
  status: number;
  body: Uint8Array;
}

export interface BootHost {
  /** The MCU "reboots" into `version` (sends a fresh hello). */
  reboot(version: string): void;
  /** Sends the new app's CONFIRM (repeated until acked or the trial ends). */
  sendConfirm(version: string): void;
  report(rec: Record<string, unknown>): void;
  /** The running boot's nonce (the one its hellos carry), for INFO; absent = an older bootloader. */
  bootNonce?(): number;
}

/**
 * The device side of the Canopy serial bootloader, as a real one would keep it: an active slot, a
 * staging slot filled by WRITEs in order (resumable: BEGIN with the same hash answers the offset
 * held), FINISH hashes the staging slot, ACTIVATE(trial) boots it and reverts unless the new app's
 * CONFIRM is acknowledged within the deadline.
 */
export class SimBootloader {
  active: { version: string; sha256: string };
  private previous: { version: string; sha256: string } | undefined;
  private staging: { sha256: string; size: number; version: string; data: Buffer; written: number; verified: boolean } | undefined;
  private trial: { timer: NodeJS.Timeout; confirmTimer: NodeJS.Timeout | undefined } | undefined;
  private booting = false;
  writes = 0;
  duplicateWrites = 0;

  constructor(version: string, private readonly host: BootHost, readonly board: string) {
    this.active = { version, sha256: "" };
  }

  handle(op: number, body: Uint8Array): BootReply {
    const ok = (b: Uint8Array = new Uint8Array()): BootReply => ({ op, status: BootStatus.Ok, body: b });
    const st = (status: number, b: Uint8Array = new Uint8Array()): BootReply => ({ op, status, body: b });
    switch (op) {
      case BootOp.Info:
        return ok(BootCodec.info({ board: this.board, version: this.active.version, sha256: this.active.sha256, maxChunk: 512, maxImage: MAX_IMAGE, ...(this.host.bootNonce ? { boot: this.host.bootNonce() } : {}) }));
      case BootOp.Begin: {
        const b = BootCodec.parseBegin(body);
        if (b.size > MAX_IMAGE) return st(BootStatus.TooBig);
        if (!this.staging || this.staging.sha256 !== b.sha256 || this.staging.size !== b.size) {
          this.staging = { ...b, data: Buffer.alloc(b.size), written: 0, verified: false };
        }
        this.host.report({ event: "boot-begin", resume: this.staging.written, size: b.size });
        return ok(BootCodec.offset(this.staging.written));
      }
      case BootOp.Write: {
        const s = this.staging;
        if (!s) return st(BootStatus.BadState, BootCodec.offset(0));
        const w = BootCodec.parseWrite(body);
        this.writes++;
        if (w.offset !== s.written || w.offset + w.data.length > s.size) {
          if (w.offset < s.written) this.duplicateWrites++;
          return st(BootStatus.NakOffset, BootCodec.offset(s.written));
        }
        w.data.copy(s.data, w.offset);
        s.written += w.data.length;
        if (s.written % 8192 < w.data.length) this.host.report({ event: "boot-progress", written: s.written, size: s.size });
        return ok(BootCodec.offset(s.written));
      }
      case BootOp.Finish: {
        const s = this.staging;
        if (!s || s.written !== s.size) return st(BootStatus.BadState, BootCodec.hash(""));
        const h = createHash("sha256").update(s.data).digest("hex");
        s.verified = h === s.sha256;
        return st(s.verified ? BootStatus.Ok : BootStatus.BadHash, BootCodec.hash(h));
      }
      case BootOp.Activate: {
        const s = this.staging;
        // A resent ACTIVATE (its answer was lost) while the image boots or runs on trial: same answer.
        if (!s && (this.trial || this.booting)) return ok();
        if (!s?.verified) return st(BootStatus.BadState);
        this.booting = true;
        const a = BootCodec.parseActivate(body);
        this.staging = undefined;
        setTimeout(() => this.boot(s, a.confirmWithinMs), 50);
        return ok();
      }
      case BootOp.Confirm:
        this.confirmed();
        return ok();
      default:
        return st(BootStatus.BadState);
    }
  }

  private boot(s: NonNullable<SimBootloader["staging"]>, confirmWithinMs: number): void {
    this.booting = false;
    this.previous = this.active;
    this.active = { version: s.version, sha256: s.sha256 };
    const good = !s.data.includes(NEVER_CONFIRM_MARKER);
    this.host.report({ event: "boot-trial", version: s.version, good, writes: this.writes, duplicateWrites: this.duplicateWrites });
    this.host.reboot(s.version);
    const timer = setTimeout(() => this.revert(), confirmWithinMs);
    const confirmTimer = good ? setInterval(() => this.host.sendConfirm(s.version), 300) : undefined;
    this.trial = { timer, confirmTimer };
    if (good) this.host.sendConfirm(s.version);
  }

  private confirmed(): void {
    if (!this.trial) return;
    clearTimeout(this.trial.timer);
    clearInterval(this.trial.confirmTimer);
    this.trial = undefined;
    this.previous = undefined;
    this.host.report({ event: "boot-confirmed", version: this.active.version });
  }

  private revert(): void {
    if (!this.trial || !this.previous) return;
    clearInterval(this.trial.confirmTimer);
    this.trial = undefined;
    this.active = this.previous;
    this.previous = undefined;
    this.host.report({ event: "boot-reverted", version: this.active.version });
    this.host.reboot(this.active.version);
  }

  stop(): void {
    if (this.trial) {
      clearTimeout(this.trial.timer);
      clearInterval(this.trial.confirmTimer);
    }
  }
}
