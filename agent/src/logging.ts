import { pino, type Logger } from "pino";

export type { Logger };

/** JSON logs on stderr; secrets redacted. Components get child loggers. */
export function createLogger(level = process.env.CANOPY_LOG_LEVEL ?? "info", name = "agent"): Logger {
  return pino(
    { name, level, redact: { paths: ["*.password", "*.creds", "*.token", "*.seed"], censor: "[redacted]" } },
    pino.destination(2),
  );
}
