/**
 * The HTTP API's shapes, in zod. The shapes callers send (messages, config, SwisperContext, ids,
 * context options) are the library's own schemas from `src/schemas/`, re-exported here: the HTTP
 * layer validates requests with them (see `validation.ts`), so a bad input gets the same field
 * and words over HTTP as from the library. With the answers' schemas below they generate
 * `/openapi.json`.
 */
import { z } from "zod";
import { ContextQuerySchema } from "../schemas/context-options.js";
import { count, SessionIdSchema, seq } from "../schemas/ids.js";
import { strictObjectErrors } from "../schemas/issues.js";
import { BufferInfoSchema, MemoryContextSchema } from "../schemas/memory-context.js";
import { ChatMessageSchema, MessageBatchSchema, StoredMessageSchema } from "../schemas/message.js";
import { SessionConfigPatchSchema, SessionConfigSchema } from "../schemas/session-config.js";
import {
  EraseUserResultSchema,
  ListSessionsQuerySchema,
  SearchQuerySchema,
  SearchResultsSchema,
  SessionInfoSchema,
  SessionPageSchema,
  SessionPatchSchema,
  TranscriptPageSchema,
  TranscriptQuerySchema,
  UserIdSchema,
} from "../schemas/sessions.js";
import { NewSummarySchema, SummaryRecordSchema } from "../schemas/summary.js";
import { SwisperContextSchema } from "../schemas/swisper-context.js";

export {
  BufferInfoSchema,
  ChatMessageSchema,
  ContextQuerySchema,
  EraseUserResultSchema,
  ListSessionsQuerySchema,
  MemoryContextSchema,
  MessageBatchSchema,
  NewSummarySchema,
  SearchQuerySchema,
  SearchResultsSchema,
  SessionConfigPatchSchema,
  SessionConfigSchema,
  SessionInfoSchema,
  SessionPageSchema,
  SessionPatchSchema,
  StoredMessageSchema,
  SummaryRecordSchema,
  SwisperContextSchema,
  TranscriptPageSchema,
  TranscriptQuerySchema,
  UserIdSchema,
};

/**
 * `GET .../context` over HTTP: the library's context, except that a budgeted read (`max_tokens` or
 * `model`) sends the messages once, in `messages`, without `buffer_messages` (the buffer is
 * `GET .../buffer`). The copy doubled the answer's size and its serialization cost.
 */
export const ContextResponseSchema = MemoryContextSchema.extend({
  buffer_messages: MemoryContextSchema.shape.buffer_messages
    .optional()
    .describe(
      "The buffer: recent messages after the summary, oldest first. Absent with `max_tokens` or `model`: `messages` then holds what fits",
    ),
}).meta({ id: "ContextResponse" });

export const AddMessagesBodySchema = z.union([ChatMessageSchema, MessageBatchSchema]);

export const AddMessagesQuerySchema = z.strictObject(
  {
    user_id: UserIdSchema.optional().describe(
      "The session's user, recorded when the session has none yet (change it with PATCH)",
    ),
  },
  strictObjectErrors(),
);

export const AppendResultSchema = z
  .object({
    session_id: z.string(),
    messages: z.array(
      z.object({
        seq: seq().nullable().describe("The message's seq in the transcript; null while provisional"),
        duplicate: z.boolean().describe("True when the id was stored before: nothing new was written"),
        provisional: z
          .literal(true)
          .optional()
          .describe(
            "PostgreSQL was away: the message is held durably in the Redis outbox and takes its seq, in acknowledgement order, when the outbox is replayed",
          ),
      }),
    ),
  })
  .meta({
    id: "AppendResult",
    description: "Each message's seq, in the order sent",
    examples: [
      {
        session_id: "session_123",
        messages: [
          { seq: 2, duplicate: false },
          { seq: 3, duplicate: false },
        ],
      },
    ],
  });

/** A `limit` query parameter: an integer from `min` to `max`, given as text. */
function limitParameter(min: number, max: number) {
  const rule = { error: `must be an integer from ${min} to ${max}` };
  return z.coerce.number(rule).int(rule).min(min, rule).max(max, rule);
}

export const SummariesQuerySchema = z.strictObject(
  { limit: limitParameter(1, 100).default(10).describe("Newest versions to return (1-100)") },
  strictObjectErrors(),
);

export const SummaryHistorySchema = z
  .object({ session_id: z.string(), summaries: z.array(SummaryRecordSchema) })
  .meta({ id: "SummaryHistory" });

export const AddSummaryResultSchema = z
  .object({
    session_id: z.string(),
    added: z
      .boolean()
      .describe("False when a summarization step committed a version meanwhile: nothing was written"),
  })
  .meta({ id: "AddSummaryResult", examples: [{ session_id: "session_123", added: true }] });

export const BufferQuerySchema = z.strictObject(
  {
    limit: limitParameter(0, 10_000)
      .optional()
      .describe("Newest messages to return (0: only the info); all of them when absent"),
  },
  strictObjectErrors(),
);

export const BufferSchema = z
  .object({
    session_id: z.string(),
    messages: z.array(StoredMessageSchema).describe("The newest buffered messages, oldest first"),
    buffer_info: BufferInfoSchema,
  })
  .meta({ id: "Buffer" });

const BreakerSnapshotSchema = z
  .object({
    name: z.string(),
    state: z.enum(["closed", "open", "half_open"]),
    failures: count(),
    opened_at: z.string().nullable(),
    retry_after_ms: z.number().min(0),
    last_error: z.string().nullable(),
    last_transition_at: z.string().nullable(),
    total_failures: count(),
    total_successes: count(),
    rejections: count(),
  })
  .meta({ id: "CircuitBreakerSnapshot" });

const MonitorHealthSchema = z.object({
  status: z.enum(["up", "degraded", "down"]),
  components: z.record(
    z.string(),
    z.object({
      status: z.enum(["up", "degraded", "down"]),
      last_error: z.string().nullable(),
      last_error_at: z.string().nullable(),
      last_transition_at: z.string(),
      breaker: BreakerSnapshotSchema.optional(),
    }),
  ),
});

export const MemoryStatsSchema = z
  .object({
    session_id: z.string(),
    buffer: BufferInfoSchema,
    summary: z.object({
      summary_count: count(),
      current_version: count(),
      covered_seq: count(),
      current_tokens: count(),
      merge_count: count(),
      first_summary_at: z.string().nullable(),
      last_summary_at: z.string().nullable(),
    }),
    redis: z.object({
      available: z.boolean(),
      used_memory: z.number().nullable(),
      maxmemory: z.number().nullable().describe("Redis's memory limit in bytes (0: none)"),
      maxmemory_policy: z
        .string()
        .nullable()
        .describe("What Redis does at maxmemory: allkeys-lru (the specification's), noeviction, ..."),
      evicted_keys: z.number().nullable(),
      expired_keys: z.number().nullable(),
      keyspace_hits: z.number().nullable(),
      keyspace_misses: z.number().nullable(),
      hit_ratio: z.number().nullable(),
    }),
    session_config: SessionConfigSchema,
    token_cache: z.object({
      hits: z.number(),
      misses: z.number(),
      size: z.number(),
      hit_ratio: z.number(),
    }),
    available: z.boolean(),
    health: MonitorHealthSchema.optional().describe("Every component's state and its breaker"),
  })
  .meta({ id: "MemoryStats" });

export const SessionParamsSchema = z.strictObject({ session_id: SessionIdSchema }, strictObjectErrors());

export const ErrorBodySchema = z
  .object({
    error: z.object({
      code: z
        .string()
        .describe(
          "invalid_input, unauthorized, not_found, payload_too_large, unsupported_media_type, rate_limited, storage_unavailable, shutting_down, internal",
        ),
      message: z.string(),
      field: z.string().optional().describe("Dotted path of the offending input"),
    }),
  })
  .meta({
    id: "Error",
    description: "Every error answer",
    examples: [{ error: { code: "not_found", message: "session 'session_123' has no memory" } }],
  });

const ComponentHealthSchema = z.object({
  status: z.enum(["up", "degraded", "down", "disabled"]),
  kind: z.string().optional(),
  latency_ms: z.number().min(0).optional(),
  error: z.string().optional(),
  details: z.record(z.string(), z.unknown()).optional(),
});

export const HealthReportSchema = z
  .object({
    status: z.enum(["up", "degraded", "down"]),
    available: z.boolean(),
    components: z.record(z.string(), ComponentHealthSchema),
    breakers: z.record(z.string(), BreakerSnapshotSchema),
  })
  .meta({ id: "Health" });

export const LiveSchema = z
  .object({ live: z.literal(true) })
  .meta({ id: "Live", examples: [{ live: true }] });

export const ReadySchema = z
  .object({ ready: z.boolean(), reason: z.string().optional().describe("Why not: storage_unavailable") })
  .meta({ id: "Ready", examples: [{ ready: true }, { ready: false, reason: "storage_unavailable" }] });

// The migration from the legacy session store (routes/legacy.ts).

const SessionIdOption = SessionIdSchema.optional().describe("Only this session (default: every one)");

export const LegacyImportBodySchema = z
  .strictObject(
    {
      session_id: SessionIdOption,
      dry_run: z.boolean().default(false).describe("Read and check everything, write nothing"),
      max_sessions: z
        .number()
        .int()
        .min(1)
        .optional()
        .describe("Stop after this many sessions (the next import resumes; nothing is stored twice)"),
    },
    strictObjectErrors(),
  )
  .meta({ id: "LegacyImportRequest" });

export const LegacyVerifyBodySchema = z
  .strictObject(
    {
      session_id: SessionIdOption,
      sample: z.number().int().min(1).optional().describe("Check this many sessions chosen at random"),
    },
    strictObjectErrors(),
  )
  .meta({ id: "LegacyVerifyRequest" });

const ImportTotalsSchema = z
  .object({
    sessions: count(),
    messages_read: count().describe("Valid elements read (what a dry run would store)"),
    messages_stored: count().describe("Messages newly written to the transcript"),
    duplicates_skipped: count().describe("Messages an earlier import stored (same id): not written again"),
    skipped_by_reason: z.record(z.string(), count()).describe("Elements not imported, by reason"),
    contexts_saved: count(),
    seconds: z.number(),
  })
  .meta({ id: "LegacyImportTotals" });

const VerifyReportSchema = z
  .object({
    sessions: count().describe("Sessions compared"),
    agree: z.boolean().describe("True when no session diverges (the CLI's exit 0)"),
    diverging: z.array(
      z.object({
        session_id: z.string(),
        legacy_messages: count(),
        stored_messages: count(),
        divergences: z.array(
          z.object({
            kind: z.enum([
              "message count",
              "missing message",
              "extra message",
              "different content",
              "different order",
              "context differs",
            ]),
            detail: z.string(),
          }),
        ),
      }),
    ),
  })
  .meta({ id: "LegacyVerifyReport" });

export const LegacyJobParamsSchema = z.strictObject({ job_id: z.uuid() }, strictObjectErrors());

export const LegacyJobSchema = z
  .object({
    job_id: z.uuid(),
    kind: z.enum(["import", "verify"]),
    state: z.enum(["running", "succeeded", "failed"]),
    started_at: z.iso.datetime(),
    finished_at: z.iso.datetime().nullable(),
    sessions_done: count(),
    result: z
      .union([ImportTotalsSchema, VerifyReportSchema])
      .nullable()
      .describe("Once succeeded: the import's totals, or the verification's report"),
    error: z.string().nullable().describe("Once failed: why"),
  })
  .meta({ id: "LegacyJob", description: "A legacy import or verification running in the background" });

export const LegacyStatusSchema = z
  .object({
    phase: z.enum(["off", "coexistence", "gradual", "full"]),
    tenant: z.string().describe("The tenant the legacy table migrates into"),
    retry_queue: z.object({
      total: count().describe("Legacy writes waiting for the legacy store"),
      sessions: z.array(z.object({ session_id: z.string(), entries: count() })),
    }),
    write_failures: count().describe("Legacy writes that failed or timed out since the process started"),
    legacy_store: z.object({
      configured: z.boolean(),
      reachable: z.boolean(),
      sessions: count().nullable(),
      error: z.string().nullable(),
    }),
    divergences: z
      .record(z.string(), count())
      .nullable()
      .describe("Phase gradual: divergences seen since the process started, by kind"),
  })
  .meta({ id: "LegacyStatus" });
