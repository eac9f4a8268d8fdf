import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import type { Msg, NatsConnection, Subscription } from "@nats-io/nats-core";
import {
  BridgeFlashRequest,
  Subjects,
  decode,
  errorMessage,
  isValidId,
  sleep,
  type BridgeFlashResult,
  type FlashEvent,
  type FlashState,
} from "@canopy/protocol";
import type { McuHub } from "../core/hub.js";
import type { Logger } from "../log.js";
import type { UpPublisher } from "../nats/publisher.js";
import type { McuRegistry } from "../registry/registry.js";
import { FlashError, type Flasher, type FlashPhase, type FlashProgress, type FlashResult } from "./flasher.js";
import type { FlasherRegistry } from "./registry.js";

const STATE_OF: Record<FlashPhase, FlashState> = {
  preparing: "flashing",
  flashing: "flashing",
  verifying: "verifying",
  booting: "booting",
  confirming: "booting",
};
/** How long the MCU's serial link may take to close its port for the flasher. */
const SUSPEND_MS = 15_000;
/** How long past its deadline a flasher that does not end is given before it is cut off. */
const OVERRUN_MS = 3_000;
/** Progress events go upstream at most this often (the terminal one always). */
const PROGRESS_EVERY_MS = 500;

export interface FlashServiceOptions {
  device: string;
  hub: McuHub;
  registry: McuRegistry;
  publisher: UpPublisher;
  flashers: FlasherRegistry;
  log: Logger;
}

/**
 * Flashes on the agent's request (`local.<dev>.mcu.<mcu>.flash`, leaf-local): takes the MCU's serial
 * port from its link, runs the named flasher with the verified image the agent cached, publishes
 * progress on `up.<dev>.evt.mcu.<mcu>.flash`, gives the port back, and answers how it ended.
 */
export class FlashService {
  private sub: Subscription | undefined;
  private readonly busy = new Set<string>();
  private readonly stopping = new AbortController();

  constructor(private readonly o: FlashServiceOptions) {}

  listen(nc: NatsConnection): void {
    this.sub = nc.subscribe(Subjects.localMcuFlashes(this.o.device), {
      callback: (err, msg) => {
        if (!err) void this.onRequest(msg);
      },
    });
  }

  stop(): void {
    this.stopping.abort();
    this.sub?.unsubscribe();
  }

  private async onRequest(msg: Msg): Promise<void> {
    const mcu = msg.subject.split(".")[3] ?? "";
    const answer = (r: BridgeFlashResult): void => void (msg.reply && msg.respond(JSON.stringify(r)));
    let req: BridgeFlashRequest;
    try {
      req = decode(BridgeFlashRequest, msg.data, 16 * 1024);
    } catch (err) {
      return answer({ state: "failed", detail: `bad flash request: ${errorMessage(err)}`, bytesSent: 0 });
    }
    if (!isValidId(mcu) || this.busy.has(mcu)) return answer({ state: "failed", detail: `a flash of ${mcu} is already running`, bytesSent: 0 });
    this.busy.add(mcu);
    try {
      const r = await this.flash(mcu, req);
      await this.o.registry.flashed(mcu, { state: r.state, version: req.version, sha256: req.sha256, at: Date.now(), detail: r.detail }, r.state === "confirmed" ? req.sha256 : undefined, r.runningVersion);
      answer(r);
    } catch (err) {
      answer({ state: "failed", detail: errorMessage(err), bytesSent: 0 });
    } finally {
      this.busy.delete(mcu);
    }
  }

  private async flash(mcu: string, req: BridgeFlashRequest): Promise<BridgeFlashResult> {
    const flasher = this.o.flashers.get(req.flasher);
    if (!flasher) return { state: "failed", detail: `no flasher ${req.flasher}; this bridge has: ${this.o.flashers.names.join(", ")}`, bytesSent: 0 };
    const data = await readFile(req.path);
    const sha = createHash("sha256").update(data).digest("hex");
    if (sha !== req.sha256 || data.length !== req.size) return { state: "failed", detail: `cached image hashes ${sha}, expected ${req.sha256}`, bytesSent: 0 };
    const session = this.o.hub.session(mcu);
    if (!session) return { state: "failed", detail: `mcu ${mcu} is offline`, bytesSent: 0 };
    if (!session.link.suspend) return { state: "failed", detail: `mcu ${mcu} is on ${session.link.name}: flasher ${req.flasher} needs a serial link`, bytesSent: 0 };
    // The link must let go of the port first; that is bounded too (nothing waits forever). If it lets go
    // after we gave up, it gets the port straight back.
    const taking = session.link.suspend();
    const waited = new AbortController();
    const port = await Promise.race([taking, sleep(SUSPEND_MS, waited.signal).then(() => undefined)]);
    waited.abort();
    if (!port) {
      void taking.then((p) => p.resume());
      return { state: "failed", detail: `the link on ${mcu}'s port did not let go of it within ${SUSPEND_MS} ms; not flashed`, bytesSent: 0 };
    }
    this.o.log.info({ mcu, version: req.version, port: port.path, flasher: req.flasher }, "flashing");
    const progress = new ProgressRelay((ev) => this.publish(mcu, req, ev));
    // A flasher must end by its deadline; one that does not (a tool or a native call that hangs) is
    // cut off OVERRUN_MS later, so the agent always gets an answer and the port goes back to the link.
    const overrun = new AbortController();
    const cutOff = sleep(req.deadlineMs + OVERRUN_MS, overrun.signal).then((ran) => {
      if (ran) throw new FlashError("timeout", `flasher ${req.flasher} did not end within its deadline (${req.deadlineMs} ms); cut off`);
      return undefined as never;
    });
    try {
      const r = await Promise.race([
        flasher.flash({
          port: port.path,
          baud: port.baudRate,
          image: { data, format: req.format, sha256: req.sha256, version: req.version, board: req.board },
          signal: AbortSignal.any([this.stopping.signal, overrun.signal]),
          deadlineMs: req.deadlineMs,
          onProgress: (p) => progress.push(p),
          // `mcu`: a banner must name this MCU to confirm (avrdude); the Canopy bootloader ignores it.
          options: { confirmWithinMs: String(req.confirmWithinMs), mcu },
        }),
        cutOff,
      ]);
      return flashOutcome(flasher, req, r);
    } catch (err) {
      if (err instanceof FlashError && /cut off$/.test(err.message)) this.o.log.error({ mcu, flasher: req.flasher, deadlineMs: req.deadlineMs }, "flasher overran its deadline: cut off");
      const code = err instanceof FlashError ? `${err.code}: ` : "";
      return { state: "failed", detail: `${code}${errorMessage(err)}`, bytesSent: 0 };
    } finally {
      overrun.abort();
      port.resume();
    }
  }

  private publish(mcu: string, req: BridgeFlashRequest, p: { state: FlashState; bytes: number; total: number; rate: number; detail: string }): void {
    const ev: FlashEvent = { id: req.id, mcu, version: req.version, sha256: req.sha256, at: Date.now(), ...p };
    this.o.publisher.publish(Subjects.mcuFlashEvent(this.o.device, mcu), Buffer.from(JSON.stringify(ev))).catch(() => {});
  }
}

/**
 * How a flash that ran to the end came out. Not confirmed means `rolled_back` only where the target
 * boots on trial and reverts by itself; a flasher without a trial boot (avrdude) left the new image in
 * place, so the flash `failed`: the MCU came up with another version, or never said which it runs.
 */
export function flashOutcome(flasher: Pick<Flasher, "name" | "trialBoot">, req: Pick<BridgeFlashRequest, "version" | "confirmWithinMs">, r: FlashResult): BridgeFlashResult {
  const running = r.bootedVersion ? { runningVersion: r.bootedVersion } : {};
  if (r.confirmed) return { state: "confirmed", detail: `${req.version} booted and confirmed`, runningVersion: r.bootedVersion ?? req.version, bytesSent: r.bytesSent };
  if (flasher.trialBoot) {
    return {
      state: "rolled_back",
      detail: `${req.version} did not confirm within ${req.confirmWithinMs} ms; the bootloader reverted to ${r.bootedVersion ?? "the previous image"}`,
      ...running,
      bytesSent: r.bytesSent,
    };
  }
  const why = !r.bootedVersion
    ? "the MCU never reported which version it runs (no banner)"
    : r.bootedVersion !== req.version
      ? `the MCU then reported version ${r.bootedVersion}, not ${req.version}`
      : "its banner named another MCU";
  return { state: "failed", detail: `unconfirmed: ${flasher.name} wrote and verified ${req.version}, but ${why}; ${flasher.name} targets have no trial boot, nothing was reverted`, ...running, bytesSent: r.bytesSent };
}

/** Turns flasher progress into throttled events with a rate per phase. */
class ProgressRelay {
  private phase: FlashState | undefined;
  private phaseStart = { at: 0, bytes: 0 };
  private lastSent = 0;

  constructor(private readonly send: (p: { state: FlashState; bytes: number; total: number; rate: number; detail: string }) => void) {}

  push(p: FlashProgress): void {
    const state = STATE_OF[p.phase];
    const now = Date.now();
    const changed = state !== this.phase;
    if (changed) {
      this.phase = state;
      this.phaseStart = { at: now, bytes: p.bytes };
    }
    if (!changed && now - this.lastSent < PROGRESS_EVERY_MS && p.bytes < p.total) return;
    this.lastSent = now;
    const secs = (now - this.phaseStart.at) / 1000;
    const rate = secs > 0 ? Math.round((p.bytes - this.phaseStart.bytes) / secs) : 0;
    this.send({ state, bytes: p.bytes, total: p.total, rate, detail: p.detail ?? "" });
  }
}
