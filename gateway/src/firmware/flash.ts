import type { NatsConnection } from "@nats-io/transport-node";
import {
  CanopyError,
  ErrorCode,
  FLASH_TERMINAL,
  FlashEvent,
  Subjects,
  checkId,
  parseFlashFailure,
  type CommandRecord,
  type FlashArgsInput,
} from "@canopy/protocol";
import { CommandSender, waitForCommands } from "../commands/index.js";
import { tail } from "../upstream/tail.js";
import { FirmwareStore } from "./store.js";

/** After the command ended, how long the terminal flash event may take to reach the hub. */
const EVENT_GRACE_MS = 5_000;

export interface FlashOrder {
  device: string;
  mcu: string;
  board: string;
  version: string;
  applyAt?: number;
  confirmWithinMs?: number;
  flasher?: string;
  ttlMs?: number;
  by: string;
  /** Command id to use (rollouts: one per MCU, so a repeated step finds it instead of sending again). */
  commandId?: string;
}

/** Where a flash ended (or stands, when the wait ran out). */
export interface FlashOutcome {
  device: string;
  mcu: string;
  id: string;
  state: FlashEvent["state"];
  detail: string;
  version: string;
  runningVersion?: string;
}

/** Looks the image up (it must exist) and queues `firmware.flash` on the device's command path. */
export async function sendFlash(nc: NatsConnection, o: FlashOrder): Promise<{ record: CommandRecord; args: FlashArgsInput }> {
  checkId(o.device, "device id");
  checkId(o.mcu, "mcu id");
  const m = await (await FirmwareStore.open(nc)).get(o.board, o.version);
  if (!m) throw new CanopyError(ErrorCode.NotFound, `no firmware ${o.board}@${o.version} in the store (canopy firmware list)`);
  const args: FlashArgsInput = {
    mcu: o.mcu,
    board: m.board,
    version: m.version,
    sha256: m.sha256,
    size: m.size,
    format: m.format,
    ...(m.signature ? { signature: m.signature } : {}),
    ...(o.flasher ? { flasher: o.flasher } : {}),
    ...(o.applyAt !== undefined ? { applyAt: o.applyAt } : {}),
    ...(o.confirmWithinMs !== undefined ? { confirmWithinMs: o.confirmWithinMs } : {}),
  };
  const sender = await CommandSender.open(nc);
  const record = await sender.send({ device: o.device, name: "firmware.flash", args, ttlMs: o.ttlMs ?? 86_400_000, by: o.by, ...(o.commandId ? { id: o.commandId } : {}) });
  return { record, args };
}

/**
 * Follows one flash: progress events as they reach the hub (`onEvent`), and the command's terminal
 * state, whichever says "done" first. A command that ended without a flash event (rejected, expired,
 * cancelled) is a `failed` flash that says so.
 */
export async function watchFlash(
  nc: NatsConnection,
  rec: Pick<CommandRecord, "id" | "device" | "createdAt">,
  mcu: string,
  version: string,
  timeoutMs: number,
  onEvent: (e: FlashEvent) => void,
  signal?: AbortSignal,
): Promise<FlashOutcome> {
  const stop = new AbortController();
  const both = signal ? AbortSignal.any([signal, stop.signal]) : stop.signal;
  const base = { device: rec.device, mcu, id: rec.id, version };
  const fromEvents = (async (): Promise<FlashOutcome | undefined> => {
    const since = Math.max(1_000, Date.now() - rec.createdAt + 5_000);
    for await (const r of tail(nc, { device: rec.device, subject: Subjects.mcuFlashEvent(rec.device, mcu), sinceMs: since, follow: true, signal: both })) {
      const parsed = FlashEvent.safeParse(safeJson(r.payload));
      if (!parsed.success || parsed.data.id !== rec.id) continue;
      onEvent(parsed.data);
      const e = parsed.data;
      if (FLASH_TERMINAL.has(e.state)) return { ...base, state: e.state, detail: e.detail, ...(e.runningVersion ? { runningVersion: e.runningVersion } : {}) };
    }
    return undefined;
  })();
  const fromCommand = (async (): Promise<FlashOutcome | undefined> => {
    const { records } = await waitForCommands(await CommandSender.open(nc).then((s) => s.store), [rec], timeoutMs, both);
    const r = records[0];
    if (!r) return undefined;
    if (r.state === "succeeded") {
      const e = FlashEvent.safeParse(r.result);
      return { ...base, state: "confirmed", detail: e.success ? e.data.detail : "confirmed", ...(e.success && e.data.runningVersion ? { runningVersion: e.data.runningVersion } : {}) };
    }
    if (r.state === "failed") return { ...base, ...parseFlashFailure(r.error?.message ?? "") };
    if (r.state === "rejected" || r.state === "expired" || r.state === "cancelled") {
      return { ...base, state: "failed", detail: `the flash command was ${r.state}: ${r.error?.message ?? ""}` };
    }
    return { ...base, state: r.state === "running" ? "flashing" : "queued", detail: `not finished within ${timeoutMs} ms` };
  })();
  try {
    // The terminal event carries the most (the version the MCU runs); the command's end is the
    // fallback when no flash event will come (rejected, expired) or it is slow to arrive.
    const tagged = await Promise.race([fromEvents.then((o) => ({ o, ev: true })), fromCommand.then((o) => ({ o, ev: false }))]);
    if (tagged.ev && tagged.o) return tagged.o;
    const cmd = tagged.ev ? await fromCommand : tagged.o;
    const grace = new Promise<undefined>((r) => setTimeout(r, EVENT_GRACE_MS, undefined));
    const ev = cmd && FLASH_TERMINAL.has(cmd.state) ? await Promise.race([fromEvents, grace]) : undefined;
    return ev ?? cmd ?? { ...base, state: "queued", detail: "no news" };
  } finally {
    stop.abort();
    await Promise.allSettled([fromEvents, fromCommand]);
  }
}

function safeJson(s: string): unknown {
  try {
    return JSON.parse(s);
  } catch {
    return undefined;
  }
}
