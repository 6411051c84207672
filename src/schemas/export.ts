/**
 * The export format (JSON Lines, version 1): one JSON object per line, each with a `type`.
 * A file is a header line, then each session's lines (its record, its messages in seq order, its
 * summary versions in version order, its config, its SwisperContext), then an end line with the
 * totals, which tells a complete file from a truncated one. Times are UTC to the microsecond, as
 * PostgreSQL keeps them, so that an import restores them exactly.
 */
import { z } from "zod";
import { count, printableId, seq, TenantSchema } from "./ids.js";
import { strictObjectErrors } from "./issues.js";
import { ChatMessageSchema } from "./message.js";
import { SessionConfigPatchSchema } from "./session-config.js";
import { SwisperContextSchema } from "./swisper-context.js";

export const EXPORT_FORMAT = "swisper-memory-export";
export const EXPORT_VERSION = 1;

const TIME_RULE = { error: "must be a UTC time to the microsecond, e.g. 2026-01-31T12:00:00.123456Z" };
/** A time as the export writes it: UTC, six fractional digits. */
const time = () => z.string(TIME_RULE).regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/, TIME_RULE);
const OBJECT = { error: "must be an object" };
const jsonObject = () => z.record(z.string(), z.unknown(), OBJECT);
const strict = <Shape extends z.core.$ZodLooseShape>(shape: Shape) =>
  z.strictObject(shape, strictObjectErrors());

export const ExportHeaderSchema = strict({
  type: z.literal("export"),
  format: z.literal(EXPORT_FORMAT, { error: `must be "${EXPORT_FORMAT}"` }),
  version: z.literal(EXPORT_VERSION, { error: `must be ${EXPORT_VERSION} (the version this build reads)` }),
});

/** A session's record. Times are null for a session without messages (only a context, a config or summaries). */
export const ExportSessionSchema = strict({
  type: z.literal("session"),
  tenant: TenantSchema,
  session_id: printableId(),
  title: z
    .string({ error: "must be a string or null" })
    .nullable()
    .describe("Set by updateSession; null: the default"),
  user_id: printableId().nullable(),
  metadata: jsonObject(),
  created_at: time().nullable(),
  updated_at: time().nullable(),
  buffer_floor_seq: count().describe("clearBuffer's floor: older messages left the buffer"),
  message_count: count(),
  summary_count: count(),
});

export const ExportMessageSchema = strict({
  type: z.literal("message"),
  session_id: printableId(),
  seq: seq(),
  idempotency_key: z.string({ error: "must be a string or null" }).min(1).max(1024).nullable(),
  tokens: count(),
  tokens_estimated: z.boolean({ error: "must be true or false" }),
  created_at: time(),
  message: ChatMessageSchema,
});

export const ExportSummarySchema = strict({
  type: z.literal("summary"),
  session_id: printableId(),
  version: seq(),
  first_seq: seq(),
  last_seq: count(),
  summary_text: z.string({ error: "must be a string" }),
  tokens: count(),
  metadata: jsonObject(),
  created_at: time(),
});

/** The config keys the session's caller set (the others follow them and the deployment's defaults). */
export const ExportConfigSchema = strict({
  type: z.literal("config"),
  session_id: printableId(),
  config: SessionConfigPatchSchema,
  updated_at: time(),
});

export const ExportContextSchema = strict({
  type: z.literal("context"),
  session_id: printableId(),
  context: SwisperContextSchema,
  updated_at: time(),
});

export const ExportEndSchema = strict({
  type: z.literal("end"),
  sessions: count(),
  messages: count(),
});

const TYPE_RULE = {
  error: 'must be "export", "session", "message", "summary", "config", "context" or "end"',
};

/** Any line of an export. */
export const ExportLineSchema = z.discriminatedUnion(
  "type",
  [
    ExportHeaderSchema,
    ExportSessionSchema,
    ExportMessageSchema,
    ExportSummarySchema,
    ExportConfigSchema,
    ExportContextSchema,
    ExportEndSchema,
  ],
  TYPE_RULE,
);

export type ExportHeader = z.infer<typeof ExportHeaderSchema>;
export type ExportSession = z.infer<typeof ExportSessionSchema>;
export type ExportMessage = z.infer<typeof ExportMessageSchema>;
export type ExportSummary = z.infer<typeof ExportSummarySchema>;
export type ExportConfig = z.infer<typeof ExportConfigSchema>;
export type ExportContext = z.infer<typeof ExportContextSchema>;
export type ExportEnd = z.infer<typeof ExportEndSchema>;
export type ExportLine = z.infer<typeof ExportLineSchema>;

/** What an import did. */
export const ImportTotalsSchema = z
  .object({
    sessions: count().describe("Sessions read"),
    sessions_imported: count().describe("Sessions stored"),
    sessions_unchanged: count().describe("Sessions already stored with the same content: nothing written"),
    messages_imported: count(),
    summaries_imported: count(),
  })
  .meta({
    id: "ImportTotals",
    examples: [
      {
        sessions: 2,
        sessions_imported: 1,
        sessions_unchanged: 1,
        messages_imported: 40,
        summaries_imported: 2,
      },
    ],
  });

export type ImportTotals = z.infer<typeof ImportTotalsSchema>;
