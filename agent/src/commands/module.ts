import { jetstream, DeliverPolicy, type ConsumerMessages } from "@nats-io/jetstream";
import { Assets, CommandSubjects } from "@canopy/protocol";
import type { AgentContext, AgentModule } from "../context.js";
import { logRingOf } from "../logging.js";
import { ACK_WAIT_MS, ensureAgentConsumer, ensureCmdMirror } from "./stream.js";
import { Executor } from "./executor.js";
import { CommandJournal } from "./journal.js";
import { HandlerRegistry, type CommandHandler } from "./registry.js";
import { builtinHandlers } from "./handlers/index.js";

/**
 * Remote commands on the device: hub `CMD` → filtered mirror `CMD` on the leaf → local durable
 * consumer `agent` → executor (journal in LMDB, results on `up.<dev>.evt.cmd.<id>` via UP).
 * A second, ordered consumer watches only `cmd.<dev>._cancel.>` so a cancel reaches a running
 * handler even while the durable consumer is busy with it.
 */
export class CommandsModule implements AgentModule {
  readonly name = "commands";
  private readonly abort = new AbortController();
  private readonly loops: Promise<void>[] = [];
  private readonly subs: ConsumerMessages[] = [];
  private executor: Executor | undefined;
  private ticker: NodeJS.Timeout | undefined;

  constructor(private readonly handlers: CommandHandler[] = builtinHandlers()) {}

  async start(ctx: AgentContext): Promise<void> {
    const log = ctx.log.child({ component: "commands" });
    const signal = AbortSignal.any([ctx.signal, this.abort.signal]);
    // A quarter of what the leaf may store, at most 64 MiB: UP has half, the rest is headroom.
    await ensureCmdMirror(ctx.jsm, ctx.device, Math.min(64 * 2 ** 20, Math.floor(ctx.leafMaxFileStore / 4)));
    const consumer = await ensureAgentConsumer(ctx.jsm, ctx.state);
    const pruned = await new CommandJournal(ctx.state).prune();
    const registry = new HandlerRegistry(this.handlers);
    const executor = new Executor({
      device: ctx.device,
      jsm: ctx.jsm,
      state: ctx.state,
      publisher: ctx.publisher,
      clock: ctx.clock,
      registry,
      handlerCtx: { device: ctx.device, nc: ctx.nc, state: ctx.state, options: ctx.options, facts: ctx.facts, log, logs: logRingOf(ctx.log), publisher: ctx.publisher },
      log,
      onRestart: () => {
        log.warn("agent.restart: stopping the agent for its service manager to start it again");
        process.kill(process.pid, "SIGTERM");
      },
    });
    this.executor = executor;

    const js = jetstream(ctx.nc);
    const cancels = await (
      await js.consumers.get(Assets.cmdStream, { filter_subjects: `cmd.${ctx.device}._cancel.>`, deliver_policy: DeliverPolicy.New })
    ).consume();
    const commands = await (await js.consumers.get(Assets.cmdStream, Assets.cmdConsumer)).consume({ max_messages: 64 });
    this.subs.push(cancels, commands);

    const cancelPrefix = CommandSubjects.cancel(ctx.device, "x").slice(0, -1);
    this.loops.push(
      (async () => {
        for await (const m of cancels) executor.cancel(m.subject.slice(cancelPrefix.length));
      })(),
      (async () => {
        for await (const m of commands) executor.accept(m);
      })(),
      executor.run(signal),
    );
    // Progress acks for everything held (queued or running), well inside ack_wait.
    this.ticker = setInterval(() => {
      for (const m of executor.heldMessages()) m.working();
    }, ACK_WAIT_MS / 3);
    this.ticker.unref();
    log.info({ handlers: registry.names, consumer, pruned }, "commands ready");
  }

  async stop(): Promise<void> {
    clearInterval(this.ticker);
    this.executor?.shutdown();
    this.abort.abort();
    for (const s of this.subs) s.stop();
    await Promise.allSettled(this.loops);
  }
}
