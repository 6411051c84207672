/**
 * The sessions as data: listing, session records, transcript pages and search, with their
 * options and answers. The library takes numbers; the HTTP query takes the same keys as text.
 */
import { z } from "zod";
import { count, printableId, seq } from "./ids.js";
import { strictObjectErrors } from "./issues.js";
import { StoredMessageSchema } from "./message.js";

const LIMIT_RULE = { error: "must be an integer from 1 to 100" };
const CURSOR_RULE = { error: "must be the next_cursor of an earlier page" };
const SINCE_RULE = { error: "must be an ISO 8601 date-time with a time zone, e.g. 2026-01-31T12:00:00Z" };
const ORDER_RULE = { error: 'must be "updated_desc" or "created_desc"' };

export const SESSION_ORDERS = ["updated_desc", "created_desc"] as const;
export type SessionOrder = (typeof SESSION_ORDERS)[number];

/** A user id: 1-256 printable characters, as session ids. */
export const UserIdSchema = printableId().meta({
  description: "1-256 printable characters: the application's id of the user",
  examples: ["user_42"],
});

/** The fields, with numbers made by `number` (z.number, or z.coerce.number for a query). */
function listingFields<N extends z.ZodNumber | z.ZodCoercedNumber>(number: (rule: { error: string }) => N) {
  return {
    cursor: z
      .string(CURSOR_RULE)
      .min(1, CURSOR_RULE)
      .max(2048, CURSOR_RULE)
      .optional()
      .meta({ description: "The `next_cursor` of the previous page (absent: the first page)" }),
    limit: number(LIMIT_RULE)
      .int(LIMIT_RULE)
      .min(1, LIMIT_RULE)
      .max(100, LIMIT_RULE)
      .default(20)
      .meta({ description: "Sessions per page (1-100, default 20)" }),
    updated_since: z.iso
      .datetime({ offset: true, error: SINCE_RULE.error })
      .optional()
      .meta({
        description: "Only sessions updated at or after this instant",
        examples: ["2026-01-31T12:00:00Z"],
      }),
    user_id: UserIdSchema.optional().meta({ description: "Only this user's sessions" }),
    order: z.enum(SESSION_ORDERS, ORDER_RULE).default("updated_desc").meta({
      description:
        "updated_desc (default): most recently updated first; created_desc: newest first, stable while writes go on",
    }),
  };
}

/** The library's options; other keys are left alone. */
export const ListSessionsOptionsSchema = z.object(
  listingFields((rule) => z.number(rule)),
  { error: "must be an object" },
);

/** The options of a session listing. */
export type ListSessionsOptions = z.input<typeof ListSessionsOptionsSchema>;

/** The same options in a query string: text turned into numbers, unknown keys refused. */
export const ListSessionsQuerySchema = z.strictObject(
  listingFields((rule) => z.coerce.number(rule)),
  strictObjectErrors(),
);

export const SessionSummarySchema = z
  .object({
    session_id: z.string(),
    title: z
      .string()
      .nullable()
      .describe(
        "The title set with updateSession, else the first user message cut at a word boundary to 64 characters; null before any",
      ),
    user_id: z.string().nullable(),
    message_count: count().describe("Messages in the whole transcript (summarized ones included)"),
    last_user_message: z.string().nullable().describe("The newest user message, cut at 48 characters"),
    created_at: z.iso.datetime(),
    updated_at: z.iso.datetime().describe("When the last message was written"),
    has_summary: z.boolean(),
    has_context: z.boolean().describe("Whether a SwisperContext is saved"),
  })
  .meta({ id: "SessionListItem" });

export type SessionListItem = z.infer<typeof SessionSummarySchema>;

export const SessionPageSchema = z
  .object({
    sessions: z.array(SessionSummarySchema),
    next_cursor: z.string().nullable().describe("Pass as `cursor` for the next page; null on the last page"),
  })
  .meta({ id: "SessionPage" });

export type SessionPage = z.infer<typeof SessionPageSchema>;

export const METADATA_MAX_BYTES = 16 * 1024;
const TITLE_RULE = { error: "must be 1-256 printable characters, or null for the default title" };
const METADATA_RULE = { error: "must be a JSON object" };

/** What updateSession changes: each key given replaces the stored value; null clears it. */
export const SessionPatchSchema = z
  .strictObject(
    {
      title: z
        .string(TITLE_RULE)
        .regex(/^[^\p{Cc}\p{Cs}]{1,256}$/u, TITLE_RULE)
        .nullable()
        .optional()
        .meta({ description: "The session's title; null goes back to the default (the first user message)" }),
      user_id: UserIdSchema.nullable().optional().meta({ description: "The session's user; null: none" }),
      metadata: z
        .record(z.string(), z.unknown(), METADATA_RULE)
        .optional()
        .meta({ description: "Free JSON object, at most 16 KiB as JSON; replaces the stored one" }),
    },
    strictObjectErrors(),
  )
  .meta({ id: "SessionPatch" });

export type SessionPatch = z.input<typeof SessionPatchSchema>;

export const SessionInfoSchema = SessionSummarySchema.extend({
  metadata: z.record(z.string(), z.unknown()).describe("Free metadata set with updateSession ({} when none)"),
}).meta({ id: "Session" });

export type SessionInfo = z.infer<typeof SessionInfoSchema>;

const AFTER_SEQ_RULE = { error: "must be a whole number (0: from the first message)" };
const TRANSCRIPT_LIMIT_RULE = { error: "must be an integer from 1 to 1000" };

function transcriptFields<N extends z.ZodNumber | z.ZodCoercedNumber>(
  number: (rule: { error: string }) => N,
) {
  return {
    after_seq: number(AFTER_SEQ_RULE)
      .int(AFTER_SEQ_RULE)
      .min(0, AFTER_SEQ_RULE)
      .max(Number.MAX_SAFE_INTEGER, AFTER_SEQ_RULE)
      .default(0)
      .meta({ description: "Messages after this seq (default 0: from the first)" }),
    limit: number(TRANSCRIPT_LIMIT_RULE)
      .int(TRANSCRIPT_LIMIT_RULE)
      .min(1, TRANSCRIPT_LIMIT_RULE)
      .max(1000, TRANSCRIPT_LIMIT_RULE)
      .default(100)
      .meta({ description: "Messages per page (1-1000, default 100)" }),
  };
}

/** The library's options of a transcript read. */
export const TranscriptOptionsSchema = z.object(
  transcriptFields((rule) => z.number(rule)),
  { error: "must be an object" },
);
export type TranscriptOptions = z.input<typeof TranscriptOptionsSchema>;

/** The same in a query string. */
export const TranscriptQuerySchema = z.strictObject(
  transcriptFields((rule) => z.coerce.number(rule)),
  strictObjectErrors(),
);

export const TranscriptMessageSchema = StoredMessageSchema.extend({
  summarized: z
    .boolean()
    .describe("Whether the current summary covers it (it left the buffer for the summary)"),
}).meta({ id: "TranscriptMessage" });

export type TranscriptMessage = z.infer<typeof TranscriptMessageSchema>;

export const TranscriptPageSchema = z
  .object({
    session_id: z.string(),
    messages: z.array(TranscriptMessageSchema).describe("In seq order"),
    next_after_seq: count()
      .nullable()
      .describe("Pass as `after_seq` for the next page; null when this page reached the newest message"),
  })
  .meta({ id: "TranscriptPage" });

export type TranscriptPage = z.infer<typeof TranscriptPageSchema>;

const QUERY_RULE = { error: "must be 1-1000 characters with at least one letter or digit" };
const ROLE_RULE = { error: 'must be one of "system"|"user"|"assistant"|"tool"' };
const SEARCH_LIMIT_RULE = { error: "must be an integer from 1 to 100" };
const MODE_RULE = { error: 'must be "words" or "substring"' };
const LANGUAGE_RULE = { error: "must be the name of a text search configuration, like simple or english" };

export const SEARCH_MODES = ["words", "substring"] as const;
export type SearchMode = (typeof SEARCH_MODES)[number];

function searchFields<N extends z.ZodNumber | z.ZodCoercedNumber>(number: (rule: { error: string }) => N) {
  return {
    q: z
      .string(QUERY_RULE)
      .min(1, QUERY_RULE)
      .max(1000, QUERY_RULE)
      .regex(/[\p{L}\p{N}]/u, QUERY_RULE)
      .meta({
        description:
          'Words to find (all of them), web-search style: "a phrase" in quotes, `or`, and -word to exclude',
        examples: ["light laptop"],
      }),
    session_id: printableId().optional().meta({ description: "Only this session's messages" }),
    user_id: UserIdSchema.optional().meta({ description: "Only the messages of this user's sessions" }),
    role: z
      .enum(["system", "user", "assistant", "tool"], ROLE_RULE)
      .optional()
      .meta({ description: "Only messages of this role" }),
    limit: number(SEARCH_LIMIT_RULE)
      .int(SEARCH_LIMIT_RULE)
      .min(1, SEARCH_LIMIT_RULE)
      .max(100, SEARCH_LIMIT_RULE)
      .default(20)
      .meta({ description: "Results per page (1-100, default 20)" }),
    cursor: z
      .string(CURSOR_RULE)
      .min(1, CURSOR_RULE)
      .max(2048, CURSOR_RULE)
      .optional()
      .meta({ description: "The `next_cursor` of the previous page of the same search" }),
    mode: z
      .enum(SEARCH_MODES, MODE_RULE)
      .default("words")
      .meta({
        description:
          "`words` (default): full-text search, ranked. `substring`: messages containing `q` as typed " +
          "(case-insensitive, % and _ are literal), by session id and seq; a trigram index where pg_trgm is installed, else a bounded scan (`scan_limited`)",
      }),
    language: z
      .string(LANGUAGE_RULE)
      .regex(/^[A-Za-z_][A-Za-z0-9_]{0,62}$/, LANGUAGE_RULE)
      .optional()
      .meta({
        description:
          "Mode words: the text search configuration (one of the database's pg_ts_config, e.g. english: stemming and stop words). " +
          "Default MEMORY_SEARCH_LANGUAGE, else simple (the only one indexed unless an index is added, see README)",
        examples: ["english"],
      }),
  };
}

/** The library's options of a search. */
export const SearchOptionsSchema = z.object(
  searchFields((rule) => z.number(rule)),
  { error: "must be an object" },
);
export type SearchOptions = z.input<typeof SearchOptionsSchema>;

/** The same in a query string. */
export const SearchQuerySchema = z.strictObject(
  searchFields((rule) => z.coerce.number(rule)),
  strictObjectErrors(),
);

export const SearchHitSchema = z
  .object({
    session_id: z.string(),
    seq: seq(),
    role: z.string(),
    snippet: z.string().describe("HTML-escaped text around the matches, each match inside <mark>...</mark>"),
    rank: z.number().min(0).describe("Relevance (ts_rank): higher first; 1 for every hit of mode substring"),
    created_at: z.iso.datetime().describe("When the message was written"),
  })
  .meta({ id: "SearchHit" });

export type SearchHit = z.infer<typeof SearchHitSchema>;

export const SearchResultsSchema = z
  .object({
    results: z
      .array(SearchHitSchema)
      .describe("Most relevant first (mode substring: by session id, then seq)"),
    next_cursor: z.string().nullable().describe("Pass as `cursor` for the next page; null on the last page"),
    scan_limited: z
      .boolean()
      .describe(
        "True when this search read at most a bounded number of the tenant's messages (mode substring without " +
          "the pg_trgm index) and reached that bound: matches beyond it were not looked for",
      ),
  })
  .meta({ id: "SearchResults" });

export type SearchResults = z.infer<typeof SearchResultsSchema>;

export const EraseUserResultSchema = z
  .object({
    user_id: z.string(),
    sessions_erased: count().describe("Sessions of the user erased everywhere"),
    messages_erased: count().describe("Messages their transcripts held"),
  })
  .meta({
    id: "EraseUserResult",
    examples: [{ user_id: "user_42", sessions_erased: 3, messages_erased: 57 }],
  });

export type EraseUserResult = z.infer<typeof EraseUserResultSchema>;
