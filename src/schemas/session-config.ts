/**
 * Per-session memory settings: the whole config (what reads return) and the patch a caller sets.
 * The rules between keys (the trigger below the token cap; keys not set follow the ones set) need
 * the stored config, so `manager/session-config.ts` applies them after this schema.
 */
import { z } from "zod";
import { strictObjectErrors } from "./issues.js";

/** Every session starts from these (the deployment's `sessionDefaults` override them). */
export const DEFAULT_SESSION_CONFIG = Object.freeze({
  summary_trigger_tokens: 3000,
  max_buffer_tokens: 4000,
  max_buffer_messages: 30,
  buffer_ttl_seconds: 6 * 60 * 60,
  max_summary_tokens: 500,
  keep_recent_tokens: 1500,
  // null: the tenant's retention (MEMORY_RETENTION_DAYS, `retention.tenantDays`), else forever.
  retention_days: null as number | null,
});

/** The numeric keys (every key but retention_days, which may be null). */
type ConfigKey = Exclude<keyof typeof DEFAULT_SESSION_CONFIG, "retention_days">;

/** The longest retention a session may ask for, in days (100 years). */
export const MAX_RETENTION_DAYS = 36_500;

/** Bounds that keep one session from exhausting Redis or the summarizer. */
export const SESSION_CONFIG_MAXIMUM: Readonly<Record<ConfigKey, number>> = Object.freeze({
  summary_trigger_tokens: 1_000_000,
  max_buffer_tokens: 1_000_000,
  max_buffer_messages: 10_000,
  buffer_ttl_seconds: 30 * 24 * 60 * 60,
  max_summary_tokens: 100_000,
  keep_recent_tokens: 1_000_000,
});

/** One key: a positive integer up to its maximum; the description names its default. */
function configKey(name: ConfigKey, description: string) {
  const maximum = SESSION_CONFIG_MAXIMUM[name];
  const rule = { error: `must be an integer from 1 to ${maximum}` };
  return z
    .number(rule)
    .int(rule)
    .min(1, rule)
    .max(maximum, rule)
    .describe(`${description} (default ${DEFAULT_SESSION_CONFIG[name]})`);
}

const configFields = {
  summary_trigger_tokens: configKey(
    "summary_trigger_tokens",
    "Buffer tokens at which summarization is queued",
  ),
  max_buffer_tokens: configKey(
    "max_buffer_tokens",
    "Hard cap on the buffer's tokens; older messages leave Redis, never the transcript",
  ),
  max_buffer_messages: configKey("max_buffer_messages", "Hard cap on the buffer's messages"),
  buffer_ttl_seconds: configKey("buffer_ttl_seconds", "Seconds an idle buffer stays in Redis"),
  max_summary_tokens: configKey("max_summary_tokens", "Budget of one summary; a longer one is compressed"),
  keep_recent_tokens: configKey("keep_recent_tokens", "Newest tokens a summary leaves verbatim"),
  retention_days: retentionDays(),
};

/** Days a session may stay idle before the retention sweeper erases it; null: the tenant's. */
function retentionDays() {
  const rule = {
    error: `must be an integer from 1 to ${MAX_RETENTION_DAYS}, or null for the tenant's retention`,
  };
  return z
    .number(rule)
    .int(rule)
    .min(1, rule)
    .max(MAX_RETENTION_DAYS, rule)
    .nullable()
    .describe(
      "Days the session may stay idle (no write) before the retention sweeper erases it everywhere " +
        "(default null: the tenant's retention, MEMORY_RETENTION_DAYS; unset there: kept forever)",
    );
}

export const SessionConfigSchema = z
  .object(configFields)
  .meta({ id: "SessionConfig", examples: [{ ...DEFAULT_SESSION_CONFIG }] });

/** Per-session memory settings. All values are positive integers. */
export type SessionConfig = z.infer<typeof SessionConfigSchema>;

type FieldKey = keyof typeof configFields;
const CONFIG_KEYS = Object.keys(configFields) as FieldKey[];

// A key left out keeps its value; a key sent as undefined is a mistake, not "left out".
const patchFields = Object.fromEntries(
  CONFIG_KEYS.map((name) => [name, configFields[name].exactOptional()]),
) as { [Key in FieldKey]: z.ZodExactOptional<(typeof configFields)[Key]> };

export const SessionConfigPatchSchema = z
  .strictObject(patchFields, strictObjectErrors(`unknown key; known keys: ${CONFIG_KEYS.join(", ")}`))
  .meta({
    id: "SessionConfigPatch",
    description: "Keys left out keep their values; the trigger must stay below max_buffer_tokens",
    examples: [{ summary_trigger_tokens: 2500, max_buffer_tokens: 3500 }],
  });
