import { pino, type Logger } from "pino";

export type { Logger };

/** JSON logs on stderr (stdout belongs to command output); secrets redacted. */
export function createLogger(level = process.env.CANOPY_LOG_LEVEL ?? "info", name = "gateway"): Logger {
  return pino(
    { name, level, redact: { paths: ["*.password", "*.creds", "*.token", "*.seed"], censor: "[redacted]" } },
    pino.destination(2),
  );
}
