import { z } from "zod";
import { checkId, checkTokenPath } from "../ids.js";
import { CanopyError, ErrorCode } from "../errors.js";
import { Id, Timestamp, TokenPath } from "./common.js";

/**
 * Remote commands (issue 6). The gateway publishes a `CommandRequest` to the hub stream `CMD` on
 * `cmd.<dev>.<name>` with `Nats-Msg-Id` = command id; a cancel is a `CommandCancel` on
 * `cmd.<dev>._cancel.<id>` in the same stream, so it reaches an offline device the same way.
 * The agent reports `CommandEvent`s on `up.<dev>.evt.cmd.<id>` (store-and-forward through UP).
 *
 * Guarantee: a command is delivered at least once and STARTED at most once. A command whose handler
 * was running when the agent died (power cut, SIGKILL) is never started again unless its handler is
 * declared re-runnable (idempotent built-ins such as `ping`, `sysinfo`): it ends `interrupted`, since
 * nobody can know how far it got. TTLs are judged on the hub's clock, not the device's.
 */
export const CommandState = z.enum([
  "queued",
  "delivered",
  "running",
  "succeeded",
  "failed",
  "rejected",
  "expired",
  "cancelled",
  "interrupted",
]);
export type CommandState = z.infer<typeof CommandState>;

export const TERMINAL_STATES: ReadonlySet<CommandState> = new Set<CommandState>([
  "succeeded",
  "failed",
  "rejected",
  "expired",
  "cancelled",
  "interrupted",
]);

export function isTerminal(s: CommandState): boolean {
  return TERMINAL_STATES.has(s);
}

/** Order of progress: a later report never moves a command back (events can arrive out of order). */
export function stateRank(s: CommandState): number {
  return s === "queued" ? 0 : s === "delivered" ? 1 : s === "running" ? 2 : 3;
}

/** Command names are token paths (`ping`, `config.reload`, `mcu.blink`); a leading `_` is reserved. */
export const CommandName = TokenPath.refine((n) => !n.startsWith("_"), "names starting with '_' are reserved");

/** Longest TTL: the hub CMD stream's max_age (30 days). */
export const MAX_COMMAND_TTL_MS = 30 * 86_400_000;
export const DEFAULT_COMMAND_TTL_MS = 86_400_000;

export const CommandRequest = z.object({
  id: Id,
  device: Id,
  name: CommandName,
  args: z.record(z.string(), z.unknown()).default({}),
  /** Gateway clock, ms since epoch. */
  createdAt: Timestamp,
  ttlMs: z.number().int().positive().max(MAX_COMMAND_TTL_MS),
  by: z.string().max(128).optional(),
});
export type CommandRequest = z.infer<typeof CommandRequest>;

export const CommandCancel = z.object({ id: Id, device: Id, at: Timestamp });
export type CommandCancel = z.infer<typeof CommandCancel>;

export const CommandError = z.object({ code: z.string(), message: z.string() });

/**
 * What the agent reports on `up.<dev>.evt.cmd.<id>`. Timestamps are hub time as the agent measured it
 * (device clock only until its first measurement, see the agent's HubClock).
 */
export const CommandEvent = z.object({
  id: Id,
  device: Id,
  state: CommandState,
  at: Timestamp,
  deliveredAt: Timestamp.optional(),
  startedAt: Timestamp.optional(),
  finishedAt: Timestamp.optional(),
  result: z.unknown().optional(),
  error: CommandError.optional(),
  /** True when a redelivered command was answered from the journal instead of being run again. */
  replay: z.boolean().optional(),
});
export type CommandEvent = z.infer<typeof CommandEvent>;

/** KV `commands`, key `<dev>.<id>`: the latest state of one command, with every state's timestamp. */
export const CommandRecord = z.object({
  id: Id,
  device: Id,
  name: CommandName,
  args: z.record(z.string(), z.unknown()).default({}),
  createdAt: Timestamp,
  ttlMs: z.number().int().positive(),
  state: CommandState,
  /** When each state was reached (device clock for device-reported states). */
  times: z.record(z.string(), Timestamp).default({}),
  updatedAt: Timestamp,
  cancelRequestedAt: Timestamp.optional(),
  result: z.unknown().optional(),
  error: CommandError.optional(),
  by: z.string().optional(),
  /** Set when the gateway concluded `expired` itself (TTL passed, never delivered); a later device report wins. */
  inferred: z.boolean().optional(),
  /** Sequence in the hub's CMD of a request whose args held secrets: erased once the command ended. */
  secretSeq: z.number().int().positive().optional(),
});
export type CommandRecord = z.infer<typeof CommandRecord>;

export const CommandSubjects = {
  request: (dev: string, name: string): string => {
    const n = checkTokenPath(name, "subject suffix");
    if (n.startsWith("_")) throw new CanopyError(ErrorCode.InvalidInput, `command name ${n}: names starting with '_' are reserved`);
    return `cmd.${checkId(dev, "device id")}.${n}`;
  },
  cancel: (dev: string, id: string): string => `cmd.${checkId(dev, "device id")}._cancel.${checkId(id, "command id")}`,
  /** Every device's command events, as the hub's FLEET_UP shards hold them. */
  allEvents: "up.*.evt.cmd.*",
} as const;

/** KV key of a command record: `<dev>.<id>`, so `<dev>.*` lists one device and `*.<id>` finds an id. */
export function commandKey(dev: string, id: string): string {
  return `${checkId(dev, "device id")}.${checkId(id, "command id")}`;
}
