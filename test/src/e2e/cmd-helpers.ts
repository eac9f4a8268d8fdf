import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { isTerminal, waitFor, type CommandRecord } from "@canopy/protocol";
import { CommandStore } from "@canopy/gateway/commands/index";
import { Fleet, freePort } from "../harness/index.js";

/** Enables the agent's test-only `test.append` handler (appends a line to a file, optionally holds). */
export const TEST_HANDLERS = { CANOPY_TEST_HANDLERS: "1" };

export class CmdTool {
  private constructor(
    private readonly fleet: Fleet,
    readonly store: CommandStore,
  ) {}

  static async open(fleet: Fleet): Promise<CmdTool> {
    return new CmdTool(fleet, await CommandStore.open(await fleet.hubConnection()));
  }

  /** `canopy cmd send ...` through the real CLI; returns the printed id. */
  async send(args: string[]): Promise<string> {
    const r = await this.fleet.cli(["cmd", "send", ...args]);
    assert.equal(r.code, 0, `cmd send ${args.join(" ")}: ${r.stderr}`);
    return r.stdout.trim();
  }

  async record(id: string): Promise<CommandRecord | undefined> {
    return (await this.store.find(id))?.record;
  }

  async terminal(id: string, timeoutMs = 45_000): Promise<CommandRecord> {
    return waitFor(
      async () => {
        const r = await this.record(id);
        return r && isTerminal(r.state) ? r : undefined;
      },
      { timeoutMs, intervalMs: 200, what: `command ${id} to end` },
    );
  }
}

export function appendArgs(file: string, line: string, holdMs = 0): string[] {
  return ["--args", JSON.stringify({ file, line, holdMs })];
}

export async function fileLines(file: string): Promise<string[]> {
  try {
    return (await readFile(file, "utf8")).split("\n").filter(Boolean);
  } catch {
    return [];
  }
}

/**
 * A fleet whose LinkProxy cuts really isolate a device. With `--leaf-port -1` the hub writes no
 * `leafnodes.advertise`, tells leaves its direct leafnode URL, and a leaf whose proxied link is cut
 * reconnects around the proxy (seen here: a "cut" device got its command 1.6 s later). So: a fixed
 * leaf port, an advertised address nothing listens on, and the proxies aimed at the real port.
 */
export async function isolatableFleet(): Promise<Fleet> {
  const leafPort = await freePort();
  const fleet = await Fleet.start({ hubArgs: ["--leaf-port", String(leafPort), "--advertise", "127.0.0.1:1"] });
  fleet.hub.leafPort = leafPort;
  return fleet;
}
