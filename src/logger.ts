/** The logging the library does: warnings about degraded paths. pino loggers fit this shape. */
export interface Logger {
  warn(details: Record<string, unknown>, message: string): void;
  error(details: Record<string, unknown>, message: string): void;
}

/** Writes one JSON line per event to stderr; the default when no logger is given. */
export const stderrLogger: Logger = {
  warn: (details, message) =>
    process.stderr.write(`${JSON.stringify({ level: "warn", msg: message, ...details })}\n`),
  error: (details, message) =>
    process.stderr.write(`${JSON.stringify({ level: "error", msg: message, ...details })}\n`),
};
