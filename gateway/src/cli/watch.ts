import type { Command } from "commander";
import type { NatsConnection } from "@nats-io/transport-node";
import { parseDuration, sleep } from "@canopy/protocol";
import { shutdownSignal, withHub } from "./context.js";
import { printJson } from "./output.js";

export interface WatchFlags {
  watch?: string | boolean;
  json?: boolean;
}

/** Adds `--watch [interval]` to a read command. */
export function watchOption(cmd: Command): Command {
  return cmd.option("-W, --watch [interval]", "redraw every interval (default 2s) until Ctrl-C; with --json, one JSON document per line");
}

/**
 * Runs `render` once, or with --watch on one connection every interval until Ctrl-C: a terminal is
 * cleared between frames; a pipe gets the frames one after another. Exit code of the last frame.
 */
export async function watched(cmd: Command, o: WatchFlags, render: (nc: NatsConnection, json: (v: unknown) => void) => Promise<void>): Promise<void> {
  if (o.watch === undefined || o.watch === false) return withHub(cmd, (nc) => render(nc, printJson));
  const everyMs = o.watch === true ? 2_000 : parseDuration(o.watch, "--watch");
  const { signal } = shutdownSignal();
  const tty = process.stdout.isTTY === true && o.json !== true;
  await withHub(
    cmd,
    async (nc) => {
      while (!signal.aborted) {
        process.exitCode = 0;
        if (tty) process.stdout.write(`\x1b[H\x1b[2J${cmd.name()} every ${everyMs / 1000}s — ${new Date().toISOString()}\n\n`);
        await render(nc, (v) => process.stdout.write(JSON.stringify(v) + "\n"));
        if (!(await sleep(everyMs, signal))) break;
      }
    },
    { reconnect: true },
  );
}
