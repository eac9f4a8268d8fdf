import { Backoff, sleep } from "./backoff.js";
import { NatsServerProcess, type NatsServerOptions, type ServerPorts } from "./nats-server.js";

export type SupervisorEvent =
  | { kind: "started"; pid: number | undefined; ports: ServerPorts }
  | { kind: "exited"; code: number | null }
  | { kind: "restart-failed"; error: Error; retryInMs: number };

/**
 * Keeps one nats-server running: the first start must succeed (a missing binary or a bad config is
 * the caller's to report); after that, an unexpected exit restarts it with jittered backoff until
 * `stop()`. The backoff resets once a run has lasted a minute.
 */
export class ServerSupervisor {
  private proc: NatsServerProcess | undefined;
  private readonly abort = new AbortController();
  private loop: Promise<void> | undefined;

  constructor(
    private readonly opts: NatsServerOptions,
    private readonly onEvent: (e: SupervisorEvent) => void = () => {},
    private readonly backoff = new Backoff({ initialMs: 500, maxMs: 30_000 }),
  ) {}

  get pid(): number | undefined {
    return this.proc?.pid;
  }

  get ports(): ServerPorts {
    return this.proc?.ports ?? {};
  }

  async start(): Promise<ServerPorts> {
    const proc = new NatsServerProcess(this.opts);
    const ports = await proc.start();
    this.proc = proc;
    this.onEvent({ kind: "started", pid: proc.pid, ports });
    this.loop = this.watch(proc);
    return ports;
  }

  /**
   * No more restarts from now on. Call it the moment shutdown begins: Ctrl-C in a terminal signals
   * the whole process group, so the server may exit on its own before `stop()` is reached.
   */
  stopRestarting(): void {
    this.abort.abort();
  }

  /**
   * Restarts the server now (e.g. JetStream shut itself down on a full disk and there is room
   * again): SIGTERM, and the watch loop starts it again on the same config.
   */
  restart(): void {
    this.proc?.kill("SIGTERM");
  }

  /** Synchronous last resort (a process `exit` handler): no more restarts, SIGTERM to the server. */
  terminate(): void {
    this.stopRestarting();
    this.restart();
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.proc?.stop();
    await this.loop;
  }

  private async watch(first: NatsServerProcess): Promise<void> {
    let proc = first;
    const signal = this.abort.signal;
    while (!signal.aborted) {
      const startedAt = Date.now();
      const code = await proc.exited();
      if (signal.aborted) return;
      this.onEvent({ kind: "exited", code });
      if (Date.now() - startedAt > 60_000) this.backoff.reset();
      for (;;) {
        if (!(await sleep(this.backoff.next(), signal))) return;
        const next = new NatsServerProcess(this.opts);
        try {
          const ports = await next.start();
          this.proc = proc = next;
          this.onEvent({ kind: "started", pid: next.pid, ports });
          break;
        } catch (err) {
          this.onEvent({ kind: "restart-failed", error: err as Error, retryInMs: this.backoff.step });
        }
      }
    }
  }
}
