import { pino, type Logger } from "pino";

export type { Logger };

/** Shared by a root logger and every child: lets `setLogLevel` reach loggers already handed out. */
const FAMILY = Symbol("canopy.logger.family");
interface Family {
  root: Logger;
  children: Set<WeakRef<Logger>>;
}

/** JSON logs on stderr; secrets redacted. Components get child loggers. */
export function createLogger(level = process.env.CANOPY_LOG_LEVEL ?? "info", name = "agent"): Logger {
  const children = new Set<WeakRef<Logger>>();
  const root = pino(
    {
      name,
      level,
      redact: { paths: ["*.password", "*.creds", "*.token", "*.seed"], censor: "[redacted]" },
      onChild: (child) => void children.add(new WeakRef(child)),
    },
    pino.destination(2),
  );
  // Children are created with Object.create(parent), so they inherit this property.
  Object.defineProperty(root, FAMILY, { value: { root, children } satisfies Family });
  return root;
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
