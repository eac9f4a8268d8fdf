import { pino, type Logger, type Level } from "pino";

export type { Logger };

export const LOG_LEVELS: readonly Level[] = ["fatal", "error", "warn", "info", "debug", "trace"];

/** Root logger of a bridge process; components take `log.child({ component })`. Secrets redacted. */
export function createLogger(level: string = "info"): Logger {
  return pino(
    {
      level,
      base: { part: "bridge" },
      redact: { paths: ["password", "*.password", "users", "*.users"], censor: "[redacted]" },
    },
    pino.destination({ dest: 2, sync: true }),
  );
}

/** A logger that drops everything: for tests and for embedders that pass none. */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}
