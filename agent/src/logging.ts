import { pino, type Logger } from "pino";

export type { Logger };

/** The last `capacity` log lines (pino JSON), for the `logs.tail` command. */
export class LogRing {
  private readonly lines: string[] = [];
  private next = 0;

  constructor(readonly capacity = 2_000) {}

  write(chunk: string): void {
    for (const line of chunk.split("\n")) {
      if (!line) continue;
      if (this.lines.length < this.capacity) this.lines.push(line);
      else this.lines[this.next] = line;
      this.next = (this.next + 1) % this.capacity;
    }
  }

  /** Oldest first, at most `n`. */
  tail(n: number): string[] {
    const ordered = this.lines.length < this.capacity ? this.lines : [...this.lines.slice(this.next), ...this.lines.slice(0, this.next)];
    return n <= 0 ? [] : ordered.slice(-n);
  }
}

const RING = Symbol.for("canopy.logRing");

/** JSON logs on stderr (and into a ring buffer of recent lines); secrets redacted. Components get child loggers. */
export function createLogger(level = process.env.CANOPY_LOG_LEVEL ?? "info", name = "agent", ring = new LogRing()): Logger {
  const logger = pino(
    { name, level, redact: { paths: ["*.password", "*.creds", "*.token", "*.seed"], censor: "[redacted]" } },
    pino.multistream([
      { level: "trace", stream: pino.destination(2) },
      { level: "trace", stream: { write: (s: string) => ring.write(s) } },
    ]),
  );
  Object.defineProperty(logger, RING, { value: ring, enumerable: false });
  return logger;
}

/** The ring of the logger tree `log` belongs to (pino children inherit from their parent's prototype). */
export function logRingOf(log: Logger): LogRing | undefined {
  const ring = (log as unknown as Record<symbol, unknown>)[RING];
  return ring instanceof LogRing ? ring : undefined;
}
