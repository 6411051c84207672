/**
 * One small error class per failure mode. Each carries a stable `code`; the HTTP layer maps
 * classes to status codes. Type guards are `instanceof` checks (all classes are exported).
 */

export abstract class MemoryError extends Error {
  abstract readonly code: string;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Bad input from a caller. Nothing was changed. */
export class ValidationError extends MemoryError {
  readonly code = "invalid_input";
  /** Dotted path of the offending field, e.g. `message.role` or `config.max_buffer_tokens`. */
  readonly field: string;
  constructor(field: string, message: string) {
    super(`${field}: ${message}`);
    this.field = field;
  }
}

/** No tier could store or serve the request (for example PostgreSQL down with no Redis). */
export class StorageUnavailableError extends MemoryError {
  readonly code = "storage_unavailable";
}

/** The PostgreSQL server is older than the minimum supported version. */
export class UnsupportedServerError extends MemoryError {
  readonly code = "unsupported_server";
}

/** A schema migration failed; earlier migrations of the run stay applied. */
export class MigrationError extends MemoryError {
  readonly code = "migration_failed";
}

/** Redis did not answer (down, unreachable, paused past the command timeout, or its breaker is open). */
export class RedisUnavailableError extends MemoryError {
  readonly code = "redis_unavailable";
}

/**
 * Redis answered a script or command with a reply of a shape this build does not read (a script
 * or server of another version, a proxy that rewrites replies, a bug). Not an outage: the server
 * answered. The message names the script or command and the part that is wrong, never the
 * reply's values, which may hold stored messages; `reply` keeps the whole reply.
 */
export class UnexpectedReplyError extends MemoryError {
  readonly code = "unexpected_reply";
  /** The script file (`append-5.lua`) or command (`XRANGE`) that answered. */
  readonly source: string;
  readonly reply: unknown;
  constructor(source: string, reply: unknown, problem: string) {
    super(`Redis answered ${source} with an unexpected reply: ${problem}`);
    this.source = source;
    this.reply = reply;
  }
}

/** PostgreSQL did not answer (down, unreachable, or its breaker is open). */
export class DatabaseUnavailableError extends MemoryError {
  readonly code = "database_unavailable";
}

/** The embedded database folder is owned by another running process (one process owns a folder). */
export class DataDirInUseError extends MemoryError {
  readonly code = "data_dir_in_use";
}

/** A legacy import, verification or status was asked of a memory with no legacy store configured. */
export class LegacyStoreNotConfiguredError extends MemoryError {
  readonly code = "legacy_not_configured";
  constructor() {
    super("no legacy store is configured: set LEGACY_DATABASE_URL (the database with swisper_sessions)");
  }
}

/** A line of an import that is not valid JSON, not a valid record, or out of place. Nothing of its session was stored. */
export class ImportLineError extends ValidationError {
  /** The line's number in the input, from 1. */
  readonly line: number;
  constructor(line: number, field: string, message: string) {
    super(field, message);
    this.line = line;
    this.message = `line ${line}: ${field}: ${message}`;
  }
}

/**
 * An imported session that already exists with other content: the import refuses to merge (an
 * identical session is a no-op). Nothing of that session was changed.
 */
export class ImportConflictError extends MemoryError {
  readonly code = "import_conflict";
  /** The number of the session's line in the input. */
  readonly line: number;
  readonly sessionId: string;
  constructor(line: number, sessionId: string) {
    super(
      `line ${line}: session '${sessionId}' already exists with other content; erase it first to replace it`,
    );
    this.line = line;
    this.sessionId = sessionId;
  }
}
