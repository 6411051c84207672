/**
 * What a context read returns (spec: `get_context`, `get_buffer_info`): the buffer, the current
 * summary, the totals and, with a budget, the messages packed for the model.
 */
import { z } from "zod";
import { count } from "./ids.js";
import { ModelMessageSchema, StoredMessageSchema } from "./message.js";
import { SummaryRecordSchema } from "./summary.js";

export const BufferInfoSchema = z
  .object({
    message_count: count(),
    total_tokens: count().describe("Sum of the buffered messages' tokens, chat framing included"),
    last_updated: z
      .string()
      .nullable()
      .describe("ISO 8601 time of the last change; null for an empty session"),
    ttl_remaining: z
      .number()
      .nullable()
      .describe("Seconds until an idle buffer leaves Redis; null when served from the database"),
    max_messages: count(),
    max_tokens: count(),
    summary_trigger_tokens: count(),
    first_seq: count().describe("Oldest message in the buffer; 0 when it is empty"),
    last_seq: count().describe("Newest message of the session; 0 before the first"),
    estimated_messages: count().describe("Messages whose tokens are a character estimate"),
    source: z
      .enum(["redis", "replica", "database"])
      .describe(
        "Where this read was served from: the Redis primary, a Redis replica (min_seq reads behind Sentinel), or PostgreSQL",
      ),
  })
  .meta({ id: "BufferInfo" });

/** The buffer's metadata (spec: `get_buffer_info`). Read from running totals, never recounted. */
export type BufferInfo = z.infer<typeof BufferInfoSchema>;

export const MemoryContextSchema = z
  .object({
    session_id: z.string(),
    buffer_messages: z
      .array(StoredMessageSchema)
      .describe("The buffer: recent messages after the summary, oldest first"),
    current_summary: z.string().nullable().describe("The current rolling summary; null before the first"),
    summary: SummaryRecordSchema.nullable().describe("The current summary version with the range it covers"),
    buffer_info: BufferInfoSchema,
    total_tokens: count().describe("Buffer tokens plus the current summary's tokens"),
    message_count: count(),
    messages: z
      .array(ModelMessageSchema)
      .optional()
      .describe("With max_tokens: the summary as a system message, then the newest messages that fit"),
    context_tokens: count()
      .optional()
      .describe("With max_tokens: exact tokens of `messages` for the model, never above max_tokens"),
  })
  .meta({ id: "MemoryContext" });

/** The Memory Manager API specification's `get_context` result, plus the packed `messages` with a budget. */
export type MemoryContext = z.infer<typeof MemoryContextSchema>;
