/**
 * A signal that aborts when any of `parents` does or after `ms`, whichever comes first: what
 * `AbortSignal.any([...parents, AbortSignal.timeout(ms)])` is meant to be.
 *
 * Do not use that expression on Node 20: `AbortSignal.timeout()`'s timer holds its signal weakly, and
 * so does the composite `any()` signal, so once a garbage collection runs the timeout signal is gone
 * and the composite never aborts on time (measured on Node 20.20.2 with `--expose-gc`: a 1 s deadline
 * did not fire within 3 s; a flash waiting for its MCU's CONFIRM waited forever under load). Here the
 * timer is an ordinary (unref'd) one, which keeps the controller alive until it fires or `clear()`.
 */
export interface Deadline {
  readonly signal: AbortSignal;
  /** Stops the timer and detaches from the parents (call it when the guarded work ended). */
  clear(): void;
}

export function deadline(ms: number, ...parents: ReadonlyArray<AbortSignal | undefined>): Deadline {
  const ctl = new AbortController();
  const detach: Array<() => void> = [];
  const clear = (): void => {
    clearTimeout(timer);
    for (const d of detach.splice(0)) d();
  };
  const abort = (reason: unknown): void => {
    clear();
    ctl.abort(reason);
  };
  const timer = setTimeout(() => abort(new DOMException(`deadline of ${ms} ms passed`, "TimeoutError")), Math.max(0, ms));
  timer.unref();
  for (const p of parents) {
    if (!p) continue;
    if (p.aborted) {
      abort(p.reason);
      break;
    }
    const onAbort = (): void => abort(p.reason);
    p.addEventListener("abort", onAbort, { once: true });
    detach.push(() => p.removeEventListener("abort", onAbort));
  }
  return { signal: ctl.signal, clear };
}
