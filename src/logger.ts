/**
 * The logging the library does: warnings about degraded paths, dependencies coming back, errors.
 * pino loggers fit this shape.
 */
export interface Logger {
  /** Optional, so that a `{ warn, error }` logger written for earlier versions still fits. */
  info?(details: Record<string, unknown>, message: string): void;
  warn(details: Record<string, unknown>, message: string): void;
  error(details: Record<string, unknown>, message: string): void;
}

function line(level: string, details: Record<string, unknown>, message: string): void {
  process.stderr.write(`${JSON.stringify({ level, msg: message, ...details })}\n`);
}

/** Writes one JSON line per event to stderr; the default when no logger is given. */
export const stderrLogger: Logger = {
  info: (details, message) => line("info", details, message),
  warn: (details, message) => line("warn", details, message),
  error: (details, message) => line("error", details, message),
};
