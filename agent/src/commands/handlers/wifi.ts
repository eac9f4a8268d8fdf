import { createRequire } from "node:module";
import { access, constants } from "node:fs/promises";
import { delimiter, join } from "node:path";
import { z } from "zod";
import { CanopyError, ErrorCode, errorMessage } from "@canopy/protocol";
import { defineHandler, type CommandHandler } from "../registry.js";

interface NodeWifi {
  init(o: { iface: string | null }): void;
  scan(): Promise<Array<{ ssid: string; bssid: string; channel: number; frequency: number; signal_level: number; quality: number; security: string }>>;
  connect(o: { ssid: string; password?: string }): Promise<void>;
}

async function onPath(bin: string): Promise<boolean> {
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    if (!dir) continue;
    try {
      await access(join(dir, bin), constants.X_OK);
      return true;
    } catch {
      /* keep looking */
    }
  }
  return false;
}

/** node-wifi drives NetworkManager's nmcli on Linux; without it (or without Wi-Fi) say so plainly. */
async function wifi(iface: string | undefined): Promise<NodeWifi> {
  if (process.platform === "linux" && !(await onPath("nmcli"))) {
    throw new CanopyError(ErrorCode.Unavailable, "wifi commands need NetworkManager: nmcli is not installed on this device");
  }
  const w = createRequire(import.meta.url)("node-wifi") as NodeWifi;
  w.init({ iface: iface ?? null });
  return w;
}

function failure(what: string, err: unknown): CanopyError {
  if (err instanceof CanopyError) return err;
  return new CanopyError(ErrorCode.Unavailable, `${what} failed (no Wi-Fi interface or NetworkManager refused): ${errorMessage(err).trim()}`);
}

export const wifiScan = defineHandler({
  name: "wifi.scan",
  args: z.object({ iface: z.string().regex(/^[A-Za-z0-9_.-]{1,32}$/).optional() }).strict(),
  timeoutMs: 60_000,
  concurrent: true,
  async run(args) {
    try {
      const networks = await (await wifi(args.iface)).scan();
      return { networks: networks.map((n) => ({ ssid: n.ssid, bssid: n.bssid, channel: n.channel, signal: n.signal_level, quality: n.quality, security: n.security })) };
    } catch (err) {
      throw failure("wifi scan", err);
    }
  },
});

export const wifiConnect = defineHandler({
  name: "wifi.connect",
  args: z
    .object({
      ssid: z.string().min(1).max(32),
      password: z.string().min(8).max(63).optional(),
      iface: z.string().regex(/^[A-Za-z0-9_.-]{1,32}$/).optional(),
    })
    .strict(),
  timeoutMs: 90_000,
  async run(args) {
    try {
      await (await wifi(args.iface)).connect({ ssid: args.ssid, ...(args.password ? { password: args.password } : {}) });
      return { connected: true, ssid: args.ssid };
    } catch (err) {
      throw failure(`wifi connect to ${JSON.stringify(args.ssid)}`, err);
    }
  },
});

export const wifiHandlers: CommandHandler[] = [wifiScan, wifiConnect];
