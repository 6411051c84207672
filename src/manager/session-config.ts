import type { SessionRef } from "../buffer/keys.js";
import { ValidationError } from "../errors.js";
import type { Database } from "../storage/database.js";

/** Per-session memory settings. All values are positive integers. */
export interface SessionConfig {
  /** Buffer tokens at which a summarization job is queued (default 3000). */
  summary_trigger_tokens: number;
  /** Hard cap on the buffer's tokens; older messages leave Redis, never the transcript (default 4000). */
  max_buffer_tokens: number;
  /** Hard cap on the buffer's messages (default 30). */
  max_buffer_messages: number;
  /** Seconds an idle session's buffer stays in Redis (default 21600, 6 h). */
  buffer_ttl_seconds: number;
  /** Budget of one summary in tokens; a longer one is compressed (default 500). */
  max_summary_tokens: number;
  /** Tokens of newest messages a summary leaves verbatim in the buffer (default 1500, half the trigger). */
  keep_recent_tokens: number;
}

export const DEFAULT_SESSION_CONFIG: Readonly<SessionConfig> = Object.freeze({
  summary_trigger_tokens: 3000,
  max_buffer_tokens: 4000,
  max_buffer_messages: 30,
  buffer_ttl_seconds: 6 * 60 * 60,
  max_summary_tokens: 500,
  keep_recent_tokens: 1500,
});

const CONFIG_KEYS = Object.keys(DEFAULT_SESSION_CONFIG) as (keyof SessionConfig)[];
// Bounds that keep one session from exhausting Redis or the summarizer.
const MAXIMUM: Record<keyof SessionConfig, number> = {
  summary_trigger_tokens: 1_000_000,
  max_buffer_tokens: 1_000_000,
  max_buffer_messages: 10_000,
  buffer_ttl_seconds: 30 * 24 * 60 * 60,
  max_summary_tokens: 100_000,
  keep_recent_tokens: 1_000_000,
};

/** Checks keys a caller sets: unknown keys, non-integers and values out of range are rejected. */
export function validateConfigKeys(config: unknown): Partial<SessionConfig> {
  if (typeof config !== "object" || config === null || Array.isArray(config)) {
    throw new ValidationError("config", "must be an object");
  }
  const keys: Partial<SessionConfig> = {};
  for (const [key, value] of Object.entries(config)) {
    if (!CONFIG_KEYS.includes(key as keyof SessionConfig)) {
      throw new ValidationError(`config.${key}`, `unknown key; known keys: ${CONFIG_KEYS.join(", ")}`);
    }
    const name = key as keyof SessionConfig;
    if (!Number.isSafeInteger(value) || (value as number) < 1 || (value as number) > MAXIMUM[name]) {
      throw new ValidationError(`config.${key}`, `must be an integer from 1 to ${MAXIMUM[name]}`);
    }
    keys[name] = value as number;
  }
  return keys;
}

/**
 * The whole config from the keys set (`set`) over `base`. Keys not set follow the ones that are:
 * `max_buffer_tokens` rises to a third above a trigger set at or past it, the trigger falls to
 * three quarters of a cap set at or below it, and `keep_recent_tokens` is half of a trigger that
 * differs from the base's. So any
 * combination of the Memory Manager API specification's three keys that keeps its own rule
 * (trigger below the token cap) is accepted. Keys set that break a rule are rejected, named.
 */
export function resolveSessionConfig(set: unknown, base: Readonly<SessionConfig>): SessionConfig {
  const keys = validateConfigKeys(set);
  const merged: SessionConfig = { ...base, ...keys };
  if (keys.max_buffer_tokens === undefined && merged.summary_trigger_tokens >= merged.max_buffer_tokens) {
    merged.max_buffer_tokens = Math.min(
      MAXIMUM.max_buffer_tokens,
      Math.ceil((merged.summary_trigger_tokens * 4) / 3),
    );
  }
  if (
    keys.summary_trigger_tokens === undefined &&
    merged.summary_trigger_tokens >= merged.max_buffer_tokens
  ) {
    merged.summary_trigger_tokens = Math.max(1, Math.floor((merged.max_buffer_tokens * 3) / 4));
  }
  if (
    keys.keep_recent_tokens === undefined &&
    merged.summary_trigger_tokens !== base.summary_trigger_tokens
  ) {
    merged.keep_recent_tokens = Math.max(1, Math.floor(merged.summary_trigger_tokens / 2));
  }
  if (merged.summary_trigger_tokens >= merged.max_buffer_tokens) {
    throw new ValidationError(
      "config.summary_trigger_tokens",
      `must be below max_buffer_tokens (${merged.summary_trigger_tokens} >= ${merged.max_buffer_tokens})`,
    );
  }
  if (merged.keep_recent_tokens >= merged.summary_trigger_tokens) {
    throw new ValidationError(
      "config.keep_recent_tokens",
      `must be below summary_trigger_tokens (${merged.keep_recent_tokens} >= ${merged.summary_trigger_tokens})`,
    );
  }
  return merged;
}

/** Only the keys that differ from `base`: what is stored, so that new defaults reach old sessions. */
export function configOverrides(
  config: SessionConfig,
  base: Readonly<SessionConfig>,
): Partial<SessionConfig> {
  const overrides: Partial<SessionConfig> = {};
  for (const key of CONFIG_KEYS) if (config[key] !== base[key]) overrides[key] = config[key];
  return overrides;
}

/** A stored config: its overrides over the defaults (stored values were validated on write). */
export function resolveStoredConfig(
  defaults: Readonly<SessionConfig>,
  overrides: Partial<SessionConfig>,
): SessionConfig {
  return { ...defaults, ...overrides };
}

/** A session's stored config: what differs from the defaults, and which keys the caller set. */
export interface StoredSessionConfig {
  /** Every key that differs from the defaults, set or derived: what the stores read. */
  overrides: Partial<SessionConfig>;
  /** The keys the caller set; the others follow them (see resolveSessionConfig). */
  set: Partial<SessionConfig>;
}

/** Session configs in the system of record. */
export class SessionConfigRecords {
  readonly #db: Database;
  constructor(db: Database) {
    this.#db = db;
  }

  async read(ref: SessionRef): Promise<StoredSessionConfig> {
    const { rows } = await this.#db.query<{ config: Partial<SessionConfig>; set_keys: string[] }>(
      "SELECT config, set_keys FROM memory_session_configs WHERE tenant = $1 AND session_id = $2",
      [ref.tenant, ref.sessionId],
    );
    const row = rows[0];
    if (!row) return { overrides: {}, set: {} };
    const set: Partial<SessionConfig> = {};
    for (const key of row.set_keys) {
      const value = row.config[key as keyof SessionConfig];
      if (value !== undefined) set[key as keyof SessionConfig] = value;
    }
    return { overrides: row.config, set };
  }

  async write(ref: SessionRef, stored: StoredSessionConfig): Promise<void> {
    await this.#db.query(
      `INSERT INTO memory_session_configs (tenant, session_id, config, set_keys) VALUES ($1, $2, $3::jsonb, $4)
       ON CONFLICT (tenant, session_id)
       DO UPDATE SET config = EXCLUDED.config, set_keys = EXCLUDED.set_keys, updated_at = now()`,
      [ref.tenant, ref.sessionId, JSON.stringify(stored.overrides), Object.keys(stored.set)],
    );
  }
}
