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
/** Shared by a root logger and every child: lets `setLogLevel` reach loggers already handed out. */
const FAMILY = Symbol("canopy.logger.family");
interface Family {
  root: Logger;
  children: Set<WeakRef<Logger>>;
}

/** JSON logs on stderr (and into a ring buffer of recent lines); secrets redacted. Components get child loggers. */
export function createLogger(level = process.env.CANOPY_LOG_LEVEL ?? "info", name = "agent", ring = new LogRing()): Logger {
  const children = new Set<WeakRef<Logger>>();
  const root = pino(
    {
      name,
      level,
      redact: { paths: ["*.password", "*.creds", "*.token", "*.seed"], censor: "[redacted]" },
      onChild: (child) => void children.add(new WeakRef(child)),
    },
    pino.multistream([
      { level: "trace", stream: pino.destination(2) },
      { level: "trace", stream: { write: (s: string) => ring.write(s) } },
    ]),
  );
  // Children are created with Object.create(parent), so they inherit these properties.
  Object.defineProperty(root, RING, { value: ring, enumerable: false });
  Object.defineProperty(root, FAMILY, { value: { root, children } satisfies Family });
  return root;
}

/** The ring of the logger tree `log` belongs to. */
export function logRingOf(log: Logger): LogRing | undefined {
  const ring = (log as unknown as Record<symbol, unknown>)[RING];
  return ring instanceof LogRing ? ring : undefined;
}

/**
 * Changes the level at runtime (remote config `log.level`). pino children copy their parent's level
 * when created, so the root and every live child are set.
 */
export function setLogLevel(log: Logger, level: string): void {
  const family = (log as unknown as { [FAMILY]?: Family })[FAMILY];
  if (!family) {
    log.level = level;
    return;
  }
  family.root.level = level;
  for (const ref of family.children) {
    const child = ref.deref();
    if (child) child.level = level;
    else family.children.delete(ref);
  }
}
