import assert from "node:assert/strict";
import { waitFor, type CommandRecord } from "@canopy/protocol";
import { CanopyProcess, json, type Fleet } from "../harness/index.js";

export interface McuRow {
  device: string;
  id: string;
  board: string;
  firmware: string;
  online: boolean;
  link: string;
}

/** `canopy mcu list --device D --json` until `ok` holds for the rows. */
export async function mcuRows(fleet: Fleet, device: string, ok: (rows: McuRow[]) => boolean, what: string, timeoutMs = 30_000): Promise<McuRow[]> {
  return waitFor(
    async () => {
      const r = await fleet.cli(["mcu", "list", "--device", device, "--json"]);
      assert.equal(r.code, 0, r.stderr);
      const rows = json<McuRow[]>(r);
      return ok(rows) ? rows : undefined;
    },
    { timeoutMs, intervalMs: 500, what },
  );
}

export function online(rows: McuRow[], ids: string[]): boolean {
  return ids.every((id) => rows.find((m) => m.id === id)?.online);
}

/** `canopy cmd send … --wait --json` through the real CLI: the command records it printed. */
export async function sendWait(fleet: Fleet, args: string[], timeout = "60s"): Promise<CommandRecord[]> {
  const r = await fleet.cli(["cmd", "send", ...args, "--wait", "--timeout", timeout, "--json"], 90_000);
  const records = json<CommandRecord[]>(r);
  assert.ok(Array.isArray(records) && records.length > 0, `cmd send ${args.join(" ")}: ${r.stderr}`);
  return records;
}

/**
 * A sim MCU on MQTT, started once the (agent-supervised) bridge's listener takes connections: the
 * bridge is a child of the agent and may not listen yet when the agent reports ready.
 */
export async function mqttSim(port: number, args: string[]): Promise<CanopyProcess> {
  return waitFor(
    async () => {
      const p = new CanopyProcess(["sim", "mcu", "--mqtt", `127.0.0.1:${port}`, ...args]);
      const ok = await p.waitForOutput(/connected|online|hello|publish/i, 15_000).then(() => true, () => false);
      if (ok && p.running) return p;
      await p.stop();
      return undefined;
    },
    { timeoutMs: 90_000, intervalMs: 500, what: "sim MCU connected to the bridge's MQTT listener" },
  );
}
