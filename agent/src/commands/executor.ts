import type { JetStreamManager, JsMsg } from "@nats-io/jetstream";
import {
  Assets,
  hasSecrets,
  Backoff,
  CommandRequest,
  CommandSubjects,
  ErrorCode,
  Subjects,
  decode,
  errorMessage,
  isValidId,
  sleep,
  type CommandEvent,
} from "@canopy/protocol";
import type { AgentState } from "../state/store.js";
import type { UpPublisher } from "../up/publisher.js";
import type { Logger } from "../logging.js";
import type { HubClock } from "../clock/hub-clock.js";
import { CommandJournal } from "./journal.js";
import type { HandlerContext, HandlerRegistry } from "./registry.js";
import { runHandler, type AbortReason } from "./outcome.js";

/** A command that took longer than this to reach the device arrived in a catch-up burst. */
const LATE_MS = 1_000;
/**
 * `delivered` and `running` are published only for a command still in that state after this long. A
 * command that ends sooner sends its terminal event alone: it carries `deliveredAt` and `startedAt`,
 * so the hub's record gets the same times, and a command costs one message through the outbox, the
 * leaf, the hub's UP stream and its ingest instead of two or three.
 */
export const PROGRESS_EVENT_MS = 200;

interface Held {
  id: string;
  /** Every delivery of this command we hold (a redelivery may arrive while it waits); all get acked. */
  msgs: JsMsg[];
  req: CommandRequest | undefined;
  invalid: string | undefined;
  deliveredAt: number;
  /** The `delivered` or `running` event waiting for PROGRESS_EVENT_MS; cleared when the next one is due. */
  progress?: NodeJS.Timeout;
}

export interface ExecutorDeps {
  device: string;
  jsm: JetStreamManager;
  state: AgentState;
  publisher: UpPublisher;
  registry: HandlerRegistry;
  handlerCtx: Omit<HandlerContext, "requestRestart" | "command">;
  log: Logger;
  /** TTLs are judged on hub time; without a measurement the executor holds TTL decisions. */
  clock: HubClock;
  /** Called once a restart-requesting command's result is durable and acked. */
  onRestart: () => void;
}

/**
 * Runs the device's commands in stream order, one at a time (a concurrent handler lets the next
 * command start). Per command: journal check (replay / interrupted) → TTL → cancel → args → journal
 * `running` (flushed) → handler → journal result + outbox (flushed) → ack.
 */
export class Executor {
  private readonly queue: Held[] = [];
  private readonly held = new Map<string, Held>();
  private readonly running = new Map<string, AbortController>();
  private readonly inFlight = new Set<Promise<void>>();
  /** Results being made durable and then acked, off the run loop (see `finish`). */
  private readonly acking = new Set<Promise<void>>();
  private readonly cancelRequested = new Set<string>();
  private readonly journal: CommandJournal;
  private readonly backoff = new Backoff({ initialMs: 250, maxMs: 10_000 });
  private wake: (() => void) | undefined;
  private restartRequested = false;
  private readonly startedAt: number;
  private holdingLogged = false;
  executed = 0;

  constructor(private readonly d: ExecutorDeps) {
    this.journal = new CommandJournal(d.state);
    this.startedAt = d.clock.now();
  }

  get queued(): number {
    return this.queue.length;
  }

  /** A message from the local consumer. Never throws: bad input is rejected or terminated. */
  accept(m: JsMsg): void {
    const cancelPrefix = `cmd.${this.d.device}._cancel.`;
    if (m.subject.startsWith(cancelPrefix)) {
      this.cancel(m.subject.slice(cancelPrefix.length));
      m.ack();
      return;
    }
    let req: CommandRequest | undefined;
    let invalid: string | undefined;
    try {
      req = decode(CommandRequest, m.data, 256 * 1024);
      if (req.device !== this.d.device) invalid = `command for device ${req.device} reached ${this.d.device}`;
    } catch (err) {
      invalid = `malformed command: ${errorMessage(err)}`;
    }
    const id = req?.id ?? m.headers?.get("Nats-Msg-Id");
    if (!id || !isValidId(id)) {
      this.d.log.warn({ subject: m.subject, seq: m.seq, invalid }, "dropping a command without a valid id");
      m.term();
      return;
    }
    const existing = this.held.get(id);
    if (existing) {
      existing.msgs.push(m);
      return;
    }
    const h: Held = { id, msgs: [m], req, invalid, deliveredAt: this.d.clock.now() };
    const waits = this.queue.length > 0 || this.running.size > 0;
    this.held.set(id, h);
    this.queue.push(h);
    if (waits && req && !invalid && !this.journal.get(id)) {
      this.progress(h, { id, device: this.d.device, state: "delivered", at: h.deliveredAt, deliveredAt: h.deliveredAt });
    }
    this.wake?.();
  }

  /** A cancel request: queued commands will not start; a running one gets its AbortSignal fired. */
  cancel(id: string): void {
    if (!isValidId(id)) return;
    this.cancelRequested.add(id);
    this.running.get(id)?.abort("cancelled" satisfies AbortReason);
  }

  /** Messages held unacked (queued or running): they get progress acks so ack_wait never expires. */
  heldMessages(): JsMsg[] {
    return [...this.held.values()].flatMap((h) => h.msgs);
  }

  /** Aborts running handlers; their commands end `interrupted` ("the agent stopped while the command ran"). */
  shutdown(): void {
    for (const c of this.running.values()) c.abort("shutdown" satisfies AbortReason);
  }

  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      const h = this.queue.shift();
      if (!h) {
        await new Promise<void>((resolve) => {
          this.wake = resolve;
          signal.addEventListener("abort", () => resolve(), { once: true });
        });
        this.wake = undefined;
        continue;
      }
      try {
        await this.process(h, signal);
        this.backoff.reset();
      } catch (err) {
        // Leaf or disk trouble: keep the command (still unacked) at the head and retry.
        if (signal.aborted) break;
        this.queue.unshift(h);
        const wait = this.backoff.next();
        this.d.log.warn({ id: h.id, err: errorMessage(err), retryInMs: wait }, "command processing failed; will retry");
        await sleep(wait, signal);
      }
    }
    await Promise.allSettled([...this.inFlight, ...this.acking]);
    // Commands left queued: their `delivered` events are not sent by a stopping agent.
    for (const h of this.held.values()) clearTimeout(h.progress);
  }

  private async process(h: Held, signal: AbortSignal): Promise<void> {
    const { device } = this.d;
    const base = { id: h.id, device, deliveredAt: h.deliveredAt };
    const end = (state: CommandEvent["state"], code: string, message: string): Promise<void> => {
      const at = this.d.clock.now();
      return this.finish(h, { ...base, state, at, finishedAt: at, error: { code, message } });
    };
    const j = this.journal.get(h.id);
    if (j?.state === "done") return this.finish(h, { ...j.event, replay: true }, false);
    if (h.invalid || !h.req) return end("rejected", ErrorCode.InvalidInput, h.invalid ?? "malformed command");
    const req = h.req;
    if (j?.state === "running" && !this.rerunnable(req.name)) {
      return end("interrupted", ErrorCode.Unavailable, `the agent stopped while this command ran (started ${new Date(j.startedAt).toISOString()}); not run again: nobody knows how far it got`);
    }
    if ((await this.hubNow(signal)) > req.createdAt + req.ttlMs) return end("expired", ErrorCode.Expired, `not run: older than its TTL of ${req.ttlMs} ms when it reached the device`);
    // The live cancel watcher sees every cancel stored after it started. Only a command that reached
    // us late (offline catch-up, restart) or around our start can have a cancel it missed or that is
    // still in transit behind it: for those, let the mirror catch up and look the cancel up directly.
    const late = h.deliveredAt - req.createdAt > LATE_MS || req.createdAt < this.startedAt + LATE_MS;
    if (late) await this.mirrorCaughtUp(signal);
    if (await this.cancelled(req.id, late)) return end("cancelled", ErrorCode.Cancelled, "cancelled by the operator before it ran");
    let resolved;
    try {
      resolved = this.d.registry.resolve(req.name, req.args);
    } catch (err) {
      return end("rejected", ErrorCode.Rejected, errorMessage(err));
    }
    const { handler, args } = resolved;
    if (!handler.concurrent) await Promise.allSettled([...this.inFlight]);
    if ((await this.hubNow(signal)) > req.createdAt + req.ttlMs) return end("expired", ErrorCode.Expired, `not run: its TTL of ${req.ttlMs} ms passed while it waited`);
    if (this.cancelRequested.has(req.id)) return end("cancelled", ErrorCode.Cancelled, "cancelled by the operator before it ran");

    const startedAt = this.d.clock.now();
    // The `running` mark must be on disk before a handler that may not run twice starts. A rerunnable
    // handler is run again after a crash whatever the journal says, so it gets no mark at all (its
    // result is still durable before the ack): a stream of pings pays no journal write on the run loop.
    if (handler.rerunnable !== true) await this.journal.markRunning(req.id, h.deliveredAt, startedAt);
    this.progress(h, { ...base, state: "running", at: startedAt, startedAt });
    const control = new AbortController();
    this.running.set(req.id, control);
    let restart = false;
    const ctx: HandlerContext = {
      ...this.d.handlerCtx,
      requestRestart: () => (restart = true),
      command: { id: req.id, createdAt: req.createdAt, ttlMs: req.ttlMs, now: () => this.d.clock.now() },
    };
    const exec = runHandler(req, handler, args, ctx, control, { deliveredAt: h.deliveredAt, startedAt }, () => this.d.clock.now())
      .then((ev) => {
        this.running.delete(req.id);
        this.executed++;
        // The run loop goes on as soon as the result is written: the next command's `running` mark
        // waits for the same fsync (LMDB commits in order), so a stream of commands pays one fsync
        // per command instead of two. This one is acked once its result is on disk.
        const acked = this.finish(h, ev).then(
          () => {
            if (restart && ev.state === "succeeded") this.requestRestart();
          },
          (err: unknown) => {
            // Not acked: ack_wait redelivers it, and the journal decides (replay or interrupted).
            this.held.delete(h.id);
            this.d.log.error({ id: req.id, err: errorMessage(err) }, "could not record a command result");
          },
        );
        this.acking.add(acked);
        void acked.finally(() => this.acking.delete(acked));
      })
      .catch((err: unknown) => this.d.log.error({ id: req.id, err: errorMessage(err) }, "could not record a command result"));
    if (!handler.concurrent) return exec;
    this.inFlight.add(exec);
    void exec.finally(() => this.inFlight.delete(exec));
  }

  private rerunnable(name: string): boolean {
    return this.d.registry.find(name)?.rerunnable === true;
  }

  /**
   * Hub time for TTL decisions. Until the agent has measured the hub's clock (or the system clock is
   * NTP-synchronized) it holds: a command is not judged against a clock that may be hours off.
   */
  private async hubNow(signal: AbortSignal): Promise<number> {
    for (;;) {
      const now = this.d.clock.hubNow();
      if (now !== undefined) return now;
      if (!this.holdingLogged) {
        this.holdingLogged = true;
        this.d.log.warn("holding commands until the hub clock is measured (the device clock is not synchronized)");
      }
      await this.d.clock.waitForSample(60_000, signal);
      if (signal.aborted) throw new Error("stopping");
    }
  }

  /** Journal (unless replaying), queue the event in the outbox, make both durable, then ack. */
  private async finish(h: Held, event: CommandEvent, journal = true): Promise<void> {
    clearTimeout(h.progress);
    if (journal) this.journal.recordDone(event);
    this.emit(event);
    await this.d.state.durable();
    for (const m of h.msgs) m.ack();
    // Secret args (a Wi-Fi password) stay on the device no longer than the command: erased from the mirror.
    if (h.req && hasSecrets(h.req.args)) {
      for (const m of h.msgs) await this.d.jsm.streams.deleteMessage(Assets.cmdStream, m.seq, true).catch(() => false);
    }
    this.held.delete(h.id);
    this.cancelRequested.delete(h.id);
    this.d.log.info({ id: h.id, name: h.req?.name, state: event.state, replay: event.replay }, "command finished");
  }

  /** A `delivered` or `running` event, published if the command is still there after PROGRESS_EVENT_MS. */
  private progress(h: Held, event: CommandEvent): void {
    clearTimeout(h.progress);
    h.progress = setTimeout(() => this.emit(event), PROGRESS_EVENT_MS);
  }

  /** Store-and-forward: the outbox write is issued synchronously; sending is retried in the background. */
  private emit(event: CommandEvent): void {
    this.d.publisher.publish(Subjects.commandResult(this.d.device, event.id), JSON.stringify(event)).catch(() => {});
  }

  /**
   * A cancel is published after its command, so while the mirror is catching up (lag > 0) it may
   * be a few messages behind: wait briefly for the mirror before deciding a command may start.
   */
  private async mirrorCaughtUp(signal: AbortSignal): Promise<void> {
    const deadline = Date.now() + 2_000;
    while (Date.now() < deadline && !signal.aborted) {
      const info = await this.d.jsm.streams.info(Assets.cmdStream);
      if (!((info.mirror?.lag ?? 0) > 0)) return;
      await sleep(20, signal);
    }
  }

  private async cancelled(id: string, lookup: boolean): Promise<boolean> {
    if (this.cancelRequested.has(id)) return true;
    if (!lookup) return false;
    const m = await this.d.jsm.streams.getMessage(Assets.cmdStream, { last_by_subj: CommandSubjects.cancel(this.d.device, id) });
    return m !== null;
  }

  private requestRestart(): void {
    if (this.restartRequested) return;
    this.restartRequested = true;
    this.d.onRestart();
  }
}
