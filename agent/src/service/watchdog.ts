import { sleep } from "@canopy/protocol";
import type { SystemdNotifier } from "./notify.js";
import type { Logger } from "../logging.js";

/** One health probe of the agent: resolves when the part it checks answers. */
export type HealthProbe = () => Promise<void>;

/**
 * The agent's service loop: every half WatchdogSec it runs the health probes (the local leaf answers
 * a PING round trip, the agent's connection is open) and only then sends WATCHDOG=1. A wedged loop —
 * a probe that never returns, a blocked event loop — sends nothing, and systemd restarts the unit.
 * With CANOPY_TEST_HOOKS=1, SIGUSR2 wedges this loop on purpose (tests of the watchdog path).
 */
export class ServiceLoop {
  private wedged: Promise<void> | undefined;
  private readonly onWedge = (): void => {
    this.log.warn("test hook: wedging the service loop");
    this.wedged = new Promise<void>(() => {});
  };

  constructor(
    private readonly notifier: SystemdNotifier,
    private readonly probes: HealthProbe[],
    private readonly log: Logger,
    env: NodeJS.ProcessEnv = process.env,
  ) {
    if (env.CANOPY_TEST_HOOKS === "1") process.on("SIGUSR2", this.onWedge);
  }

  /** READY=1 with a status line; call once the leaf and every agent module are up. */
  async ready(status: string): Promise<void> {
    await this.notifier.notify({ READY: "1", STATUS: status });
  }

  async stopping(): Promise<void> {
    process.off("SIGUSR2", this.onWedge);
    await this.notifier.notify({ STOPPING: "1", STATUS: "stopping" });
  }

  /** Runs until `signal` aborts; a no-op when no watchdog is armed. */
  async run(signal: AbortSignal): Promise<void> {
    const interval = this.notifier.watchdogIntervalMs();
    if (interval === undefined) return;
    this.log.debug({ intervalMs: interval }, "feeding the systemd watchdog");
    while (await sleep(interval, signal)) {
      if (this.wedged) await this.wedged;
      try {
        await withDeadline(Promise.all(this.probes.map((probe) => probe())), interval);
      } catch (err) {
        this.log.warn({ err: (err as Error).message }, "health probe failed; watchdog not fed");
        continue;
      }
      await this.notifier.notify({ WATCHDOG: "1" });
    }
  }
}

function withDeadline<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([p, deadline]).finally(() => clearTimeout(timer));
}
