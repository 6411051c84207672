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

/**
 * Checks overrides and returns them merged over `base`. Unknown keys, non-integers, values out of
 * range and a trigger at or above the token cap are rejected with a ValidationError naming the key.
 */
export function resolveSessionConfig(overrides: unknown, base: Readonly<SessionConfig>): SessionConfig {
  if (typeof overrides !== "object" || overrides === null || Array.isArray(overrides)) {
    throw new ValidationError("config", "must be an object");
  }
  const merged: SessionConfig = { ...base };
  for (const [key, value] of Object.entries(overrides)) {
    if (!CONFIG_KEYS.includes(key as keyof SessionConfig)) {
      throw new ValidationError(`config.${key}`, `unknown key; known keys: ${CONFIG_KEYS.join(", ")}`);
    }
    const name = key as keyof SessionConfig;
    if (!Number.isSafeInteger(value) || (value as number) < 1 || (value as number) > MAXIMUM[name]) {
      throw new ValidationError(`config.${key}`, `must be an integer from 1 to ${MAXIMUM[name]}`);
    }
    merged[name] = value as number;
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

/** Session configs in the system of record (overrides only). */
export class SessionConfigRecords {
  readonly #db: Database;
  constructor(db: Database) {
    this.#db = db;
  }

  async read(ref: SessionRef): Promise<Partial<SessionConfig>> {
    const { rows } = await this.#db.query<{ config: Partial<SessionConfig> }>(
      "SELECT config FROM memory_session_configs WHERE tenant = $1 AND session_id = $2",
      [ref.tenant, ref.sessionId],
    );
    return rows[0]?.config ?? {};
  }

  async write(ref: SessionRef, overrides: Partial<SessionConfig>): Promise<void> {
    await this.#db.query(
      `INSERT INTO memory_session_configs (tenant, session_id, config) VALUES ($1, $2, $3::jsonb)
       ON CONFLICT (tenant, session_id) DO UPDATE SET config = EXCLUDED.config, updated_at = now()`,
      [ref.tenant, ref.sessionId, JSON.stringify(overrides)],
    );
  }
}
