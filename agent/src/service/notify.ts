import { execFile } from "node:child_process";
import type { Logger } from "../logging.js";

/**
 * sd_notify(3) for the agent. Node has no unix datagram sockets, and the npm bindings (`sd-notify`,
 * `unix-dgram`) are native addons that need a compiler and libsystemd headers on the Pi; so the
 * agent runs systemd's own `systemd-notify` (always present where systemd is). Messages then come
 * from a child process, which is why the unit sets `NotifyAccess=all`; `systemd-notify` waits for
 * the manager to take the message (its barrier), so the child exiting first does not lose it.
 */
export class SystemdNotifier {
  private warned = false;

  constructor(
    private readonly log: Logger,
    private readonly env: NodeJS.ProcessEnv = process.env,
    private readonly bin = env.CANOPY_SYSTEMD_NOTIFY ?? "systemd-notify",
  ) {}

  /** True when a service manager listens (NOTIFY_SOCKET is set). */
  get enabled(): boolean {
    return Boolean(this.env.NOTIFY_SOCKET);
  }

  /**
   * How often to send WATCHDOG=1: half of WatchdogSec, as sd_watchdog_enabled(3) advises; undefined
   * when no watchdog is armed for this process.
   */
  watchdogIntervalMs(): number | undefined {
    const usec = Number(this.env.WATCHDOG_USEC);
    if (!this.enabled || !Number.isFinite(usec) || usec <= 0) return undefined;
    const pid = this.env.WATCHDOG_PID;
    if (pid !== undefined && pid !== "" && Number(pid) !== process.pid) return undefined;
    return Math.max(50, Math.floor(usec / 2_000));
  }

  /** Sends `KEY=VALUE` assignments; never throws (a service manager that went away is not fatal). */
  async notify(fields: Record<string, string>): Promise<boolean> {
    if (!this.enabled) return false;
    const args = Object.entries(fields).map(([k, v]) => `${k}=${v.replace(/\n/g, " ")}`);
    return new Promise((resolve) => {
      execFile(this.bin, args, { env: this.env, timeout: 10_000 }, (err) => {
        if (err && !this.warned) {
          this.warned = true;
          this.log.warn({ err: err.message, bin: this.bin }, "sd_notify failed (is systemd-notify installed?)");
        }
        resolve(!err);
      });
    });
  }
}
