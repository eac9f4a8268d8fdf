import type { z } from "zod";
import type { NatsConnection } from "@nats-io/transport-node";
import { CanopyError, ErrorCode, check } from "@canopy/protocol";
import type { AgentState } from "../state/store.js";
import type { AgentOptions } from "../options.js";
import type { FactsSampler } from "../presence/facts.js";
import type { Logger, LogRing } from "../logging.js";
import type { UpPublisher } from "../up/publisher.js";

/** What a handler may use. Everything is device-local: no handler talks to the hub directly. */
export interface HandlerContext {
  device: string;
  /** Local leaf connection (for `local.>` requests to the bridge and config service). */
  nc: NatsConnection;
  state: AgentState;
  options: AgentOptions;
  facts: FactsSampler;
  log: Logger;
  logs: LogRing | undefined;
  /** Store-and-forward upstream (progress events of long commands, e.g. firmware.flash). */
  publisher: Pick<UpPublisher, "publish">;
  /** Stop the agent (for a service manager to restart it) once this command's result is durable and acked. */
  requestRestart(): void;
  /**
   * The command being run: its id and when its TTL ends (gateway clock), and `now()` on the same clock
   * (the hub time the agent measured: the device's own clock may be hours off).
   */
  command: { id: string; createdAt: number; ttlMs: number; now: () => number };
}

export interface CommandHandler<A = unknown> {
  /** Exact name, or a prefix ending in "." (`mcu.`) that takes every name under it. */
  readonly name: string;
  readonly args: z.ZodType<A>;
  /** The handler's AbortSignal fires after this long; the command then fails with TIMEOUT. */
  readonly timeoutMs: number;
  /** Concurrent handlers may run while later commands start; all others run one at a time, in order. */
  readonly concurrent?: boolean;
  /**
   * Idempotent: after a crash mid-run the command is run again instead of ending `interrupted`.
   * Only for handlers whose second run cannot do harm (read-only ones, reloads).
   */
  readonly rerunnable?: boolean;
  /**
   * The handler may wait for its target until the command's TTL ends (an MCU that sleeps): its
   * signal then fires at the TTL (+ `timeoutMs` of grace to finish), not after `timeoutMs`.
   */
  readonly untilTtl?: boolean;
  run(args: A, signal: AbortSignal, ctx: HandlerContext, name: string): Promise<unknown>;
}

/** Ack wait on the device's consumer must exceed this (progress acks cover queued commands too). */
export const MAX_HANDLER_TIMEOUT_MS = 10 * 60_000;

export function defineHandler<A>(h: CommandHandler<A>): CommandHandler<unknown> {
  if (h.timeoutMs > MAX_HANDLER_TIMEOUT_MS) throw new Error(`handler ${h.name}: timeout above ${MAX_HANDLER_TIMEOUT_MS} ms`);
  return h as unknown as CommandHandler<unknown>;
}

export class HandlerRegistry {
  private readonly exact = new Map<string, CommandHandler>();
  private readonly prefixes: CommandHandler[] = [];

  constructor(handlers: CommandHandler[] = []) {
    for (const h of handlers) this.add(h);
  }

  add(h: CommandHandler): this {
    if (h.name.endsWith(".")) this.prefixes.push(h);
    else this.exact.set(h.name, h);
    return this;
  }

  get names(): string[] {
    return [...this.exact.keys(), ...this.prefixes.map((p) => `${p.name}<name>`)].sort();
  }

  find(name: string): CommandHandler | undefined {
    return this.exact.get(name) ?? this.prefixes.find((p) => name.startsWith(p.name) && name.length > p.name.length);
  }

  /** The handler and its parsed args, or a REJECTED error naming the reason. */
  resolve(name: string, rawArgs: unknown): { handler: CommandHandler; args: unknown } {
    const handler = this.find(name);
    if (!handler) {
      throw new CanopyError(ErrorCode.Rejected, `unknown command ${JSON.stringify(name)}; this agent runs: ${this.names.join(", ")}`);
    }
    try {
      return { handler, args: check(handler.args, rawArgs) };
    } catch (err) {
      throw new CanopyError(ErrorCode.Rejected, `bad arguments for ${name}: ${(err as Error).message}`);
    }
  }
}
