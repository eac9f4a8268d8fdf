import { z } from "zod";
import { CanopyError, ErrorCode, errorMessage } from "@canopy/protocol";
import { AGENT_VERSION } from "../../version.js";
import { defineHandler, type CommandHandler } from "../registry.js";
import { localRequest } from "./local.js";

export const ping = defineHandler({
  name: "ping",
  rerunnable: true,
  args: z.object({}).passthrough(),
  timeoutMs: 5_000,
  async run(_args, _signal, ctx) {
    return { pong: true, device: ctx.device, at: Date.now(), agent: AGENT_VERSION, uptimeS: Math.round(process.uptime()) };
  },
});

export const sysinfo = defineHandler({
  name: "sysinfo",
  rerunnable: true,
  args: z.object({}).strict(),
  timeoutMs: 30_000,
  concurrent: true,
  async run(_args, _signal, ctx) {
    // Loaded by the first sysinfo command, not at start (~5 MiB an idle agent does not need).
    const { default: si } = await import("systeminformation");
    const [os, cpu, mem, load, temp, fs, net, time] = await Promise.all([
      si.osInfo(),
      si.cpu(),
      si.mem(),
      si.currentLoad().catch(() => undefined),
      si.cpuTemperature().catch(() => undefined),
      si.fsSize().catch(() => []),
      si.networkInterfaces().catch(() => []),
      Promise.resolve(si.time()),
    ]);
    return {
      os: { platform: os.platform, distro: os.distro, release: os.release, arch: os.arch, kernel: os.kernel, hostname: os.hostname },
      cpu: { model: `${cpu.manufacturer} ${cpu.brand}`.trim(), cores: cpu.cores, load: load?.currentLoad, temperature: temp?.main },
      mem: { total: mem.total, available: mem.available, used: mem.active },
      disks: fs.map((f) => ({ mount: f.mount, size: f.size, used: f.used, available: f.available })),
      net: (Array.isArray(net) ? net : [net]).filter((i) => !i.internal).map((i) => ({ name: i.iface, ip4: i.ip4, mac: i.mac })),
      uptimeS: time.uptime,
      agent: { version: AGENT_VERSION, pid: process.pid, device: ctx.device },
    };
  },
});

export const logsTail = defineHandler({
  name: "logs.tail",
  rerunnable: true,
  args: z.object({ lines: z.coerce.number().int().min(1).max(2_000).default(100) }).strict(),
  timeoutMs: 5_000,
  concurrent: true,
  async run(args, _signal, ctx) {
    if (!ctx.logs) throw new CanopyError(ErrorCode.Unavailable, "this agent keeps no log buffer");
    // Keep the result well under the UP message size: newest lines win.
    const lines: string[] = [];
    let size = 0;
    for (const line of ctx.logs.tail(args.lines).reverse()) {
      size += line.length + 1;
      if (size > 256 * 1024) break;
      lines.unshift(line);
    }
    return { lines, count: lines.length };
  },
});

export const agentRestart = defineHandler({
  name: "agent.restart",
  args: z.object({}).strict(),
  timeoutMs: 5_000,
  async run(_args, _signal, ctx) {
    ctx.requestRestart();
    return { restarting: true, note: "the agent exits after this result is stored; its service manager starts it again" };
  },
});

/** Answered on the leaf by the config module (`local.config.reload`). */
export const configReload = defineHandler({
  name: "config.reload",
  rerunnable: true,
  args: z.object({}).passthrough(),
  timeoutMs: 30_000,
  async run(args, signal, ctx) {
    try {
      const reply = await localRequest(ctx.nc, "local.config.reload", args, 25_000, signal, "the config service");
      // The config module answers {revision, keys, failed[]}: a reload with failed keys is a failure.
      const failed = (reply as { failed?: unknown[] } | null)?.failed;
      if (Array.isArray(failed) && failed.length > 0) {
        throw new CanopyError(ErrorCode.Rejected, `config.reload: ${failed.length} key(s) failed: ${JSON.stringify(failed).slice(0, 500)}`);
      }
      return reply;
    } catch (err) {
      if (err instanceof CanopyError) throw err;
      throw new CanopyError(ErrorCode.Internal, `config.reload: ${errorMessage(err)}`);
    }
  },
});

export const basicHandlers: CommandHandler[] = [ping, sysinfo, logsTail, agentRestart, configReload];
