/**
 * A value refreshed on demand when older than `ttlMs`, one refresh in flight at a time (every caller
 * gets the same pending promise). A failed refresh keeps the last value.
 */
export class Cached<T> {
  private value: T;
  private at = 0;
  private pending: Promise<T> | undefined;

  constructor(
    private readonly load: () => Promise<T>,
    initial: T,
    private readonly ttlMs: number,
  ) {
    this.value = initial;
  }

  get current(): T {
    return this.value;
  }

  async get(now = Date.now()): Promise<T> {
    if (now - this.at < this.ttlMs) return this.value;
    this.pending ??= this.load()
      .then((v) => {
        this.value = v;
        this.at = Date.now();
        return v;
      })
      .catch(() => {
        this.at = Date.now();
        return this.value;
      })
      .finally(() => (this.pending = undefined));
    return this.pending;
  }
}
