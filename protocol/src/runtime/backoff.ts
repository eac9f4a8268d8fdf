/**
 * Backoff as a policy: exponential with full jitter, capped, and a delay that an AbortSignal cancels.
 * Jitter matters at fleet scale: a thousand devices that lose the hub together must not all come back
 * in the same second.
 */
export interface BackoffOptions {
  initialMs?: number;
  maxMs?: number;
  factor?: number;
  /** 0 = no jitter, 1 = full jitter (delay drawn from [base*(1-jitter), base]). */
  jitter?: number;
  random?: () => number;
}

export class Backoff {
  private attempt = 0;
  private readonly initialMs: number;
  private readonly maxMs: number;
  private readonly factor: number;
  private readonly jitter: number;
  private readonly random: () => number;

  constructor(opts: BackoffOptions = {}) {
    this.initialMs = opts.initialMs ?? 500;
    this.maxMs = opts.maxMs ?? 30_000;
    this.factor = opts.factor ?? 2;
    this.jitter = opts.jitter ?? 0.5;
    this.random = opts.random ?? Math.random;
  }

  /** Number of consecutive failures so far. */
  get attempts(): number {
    return this.attempt;
  }

  /** The un-jittered ceiling of the next delay: a stable "step" for once-per-step logging. */
  get step(): number {
    return Math.min(this.maxMs, this.initialMs * this.factor ** this.attempt);
  }

  next(): number {
    const base = this.step;
    this.attempt++;
    return Math.round(base * (1 - this.jitter * this.random()));
  }

  reset(): void {
    this.attempt = 0;
  }
}

/** Resolves after `ms`, or rejects with the signal's reason as soon as it aborts. */
export function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** Like `delay` but resolves `false` instead of rejecting when aborted: for loops that just stop. */
export async function sleep(ms: number, signal?: AbortSignal): Promise<boolean> {
  try {
    await delay(ms, signal);
    return true;
  } catch {
    return false;
  }
}

/** Polls `check` until it returns a truthy value or the deadline passes. */
export async function waitFor<T>(
  check: () => T | undefined | false | null | Promise<T | undefined | false | null>,
  opts: { timeoutMs: number; intervalMs?: number; what?: string; signal?: AbortSignal },
): Promise<T> {
  const deadline = Date.now() + opts.timeoutMs;
  let lastErr: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
    } catch (err) {
      lastErr = err;
    }
    if (Date.now() >= deadline) {
      const why = lastErr instanceof Error ? `: last error: ${lastErr.message}` : "";
      throw new Error(`timed out after ${opts.timeoutMs} ms waiting for ${opts.what ?? "condition"}${why}`);
    }
    await delay(opts.intervalMs ?? 50, opts.signal);
  }
}

/**
 * Drains a NATS connection, but gives up after `ms` and closes it: on Ctrl-C the local server gets the
 * signal too, and a drain that waits for a reconnect would hang the shutdown.
 */
export async function drainOrClose(nc: { drain(): Promise<void>; close(): Promise<void> }, ms = 2_000): Promise<void> {
  await Promise.race([nc.drain().catch(() => {}), sleep(ms)]);
  await nc.close().catch(() => {});
}
