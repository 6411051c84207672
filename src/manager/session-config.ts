import type { SessionRef } from "../buffer/keys.js";
import { ValidationError } from "../errors.js";
import { parseOrThrow } from "../schemas/issues.js";
import {
  DEFAULT_SESSION_CONFIG,
  SESSION_CONFIG_MAXIMUM,
  type SessionConfig,
  SessionConfigPatchSchema,
} from "../schemas/session-config.js";
import type { Database } from "../storage/database.js";

export { DEFAULT_SESSION_CONFIG, type SessionConfig };

const CONFIG_KEYS = Object.keys(DEFAULT_SESSION_CONFIG) as (keyof SessionConfig)[];

/** Checks keys a caller sets: unknown keys, non-integers and values out of range are rejected. */
export function validateConfigKeys(config: unknown): Partial<SessionConfig> {
  return parseOrThrow(SessionConfigPatchSchema, config, "config");
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
      SESSION_CONFIG_MAXIMUM.max_buffer_tokens,
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
  const overrides: Record<string, number | null> = {};
  for (const key of CONFIG_KEYS) if (config[key] !== base[key]) overrides[key] = config[key];
  return overrides as Partial<SessionConfig>;
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
    const set: Record<string, number | null> = {};
    for (const key of row.set_keys) {
      const value = row.config[key as keyof SessionConfig];
      if (value !== undefined) set[key] = value;
    }
    return { overrides: row.config, set: set as Partial<SessionConfig> };
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
