import assert from "node:assert/strict";
import { Fleet, CanopyProcess, freePort } from "../harness/index.js";
import { waitFor } from "@canopy/protocol";

/** The console URL the hub printed in its hub-ready line. */
export function consoleUrl(fleet: Fleet): string {
  const url = (fleet.hub as { console?: string }).console;
  assert.ok(url, "the hub printed no console URL (started with --console-port?)");
  return url;
}

/** `canopy console token [--read-only]`: the token is alone on the last line. */
export async function mintToken(fleet: Fleet, readOnly = false): Promise<string> {
  const r = await fleet.cli(["console", "token", ...(readOnly ? ["--read-only"] : [])]);
  assert.equal(r.code, 0, r.stderr);
  const token = r.stdout.trim().split("\n").at(-1) ?? "";
  assert.match(token, /^cnp1\.[\w-]+\.[\w-]+$/);
  return token;
}

export async function api(base: string, path: string, token: string | undefined, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  if (token) headers.set("Authorization", `Bearer ${token}`);
  if (init.body !== undefined) headers.set("Content-Type", "application/json");
  return fetch(`${base}${path}`, { ...init, headers });
}

/** A simulated MCU on the device's bridge MQTT listener (retried until the bridge listens). */
export async function attachSimMcu(mqttPort: number, id: string, rate: number): Promise<CanopyProcess> {
  return waitFor(
    async () => {
      const p = new CanopyProcess(["sim", "mcu", "--id", id, "--mqtt", `127.0.0.1:${mqttPort}`, "--rate", String(rate)]);
      const ok = await p.waitForOutput(/connected|online|hello|publish/i, 3_000).then(() => true, () => false);
      if (ok && p.running) return p;
      await p.stop();
      return undefined;
    },
    { timeoutMs: 90_000, intervalMs: 500, what: `sim MCU ${id} connected to the bridge` },
  );
}

export { freePort };
