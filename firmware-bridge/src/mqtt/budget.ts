/**
 * The listener-wide cap on bytes of received publishes not yet stored (what a Pi must hold in RAM
 * when the leaf is slow). A connection that pushes the total over `max` pauses its socket and is
 * resumed once the total is back under half.
 */
export class ByteBudget {
  used = 0;
  highWater = 0;
  private readonly paused = new Set<() => void>();

  constructor(readonly max: number) {}

  take(bytes: number): void {
    this.used += bytes;
    if (this.used > this.highWater) this.highWater = this.used;
  }

  get exhausted(): boolean {
    return this.used > this.max;
  }

  /** `resume` runs once, when the budget has room again (or never, if `cancel` is called first). */
  waitForRoom(resume: () => void): () => void {
    this.paused.add(resume);
    return () => this.paused.delete(resume);
  }

  give(bytes: number): void {
    this.used -= bytes;
    if (this.paused.size > 0 && this.used <= this.max / 2) {
      const all = [...this.paused];
      this.paused.clear();
      for (const r of all) r();
    }
  }
}
