/** A committed summary version and the exact transcript range it covers. */
import { z } from "zod";
import { count, seq } from "./ids.js";
import { strictObjectErrors } from "./issues.js";

export const SummaryRecordSchema = z
  .object({
    version: seq().describe("1 for the session's first summary, then one more each time"),
    summary_text: z.string(),
    first_seq: seq().describe("First message folded into this version (the previous version's last_seq + 1)"),
    last_seq: seq().describe(
      "The summary stands for [1..last_seq]; versions cover it with no gap or overlap",
    ),
    tokens: count().describe("Exact tokens of summary_text for the session's model"),
    created_at: z.string().describe("ISO 8601 time of the commit"),
    metadata: z.record(z.string(), z.unknown()),
  })
  .meta({
    id: "SummaryRecord",
    description: "One summary version and the transcript range it covers",
    examples: [
      {
        version: 1,
        summary_text: "The user wants a light laptop under 1500 CHF.",
        first_seq: 1,
        last_seq: 12,
        tokens: 14,
        created_at: "2026-11-25T09:14:03.512Z",
        metadata: { summarizer: "extractive" },
      },
    ],
  });

/** One committed summary version. Versions cover `[1..last_seq]` together, with no gap or overlap. */
export type SummaryRecord = z.infer<typeof SummaryRecordSchema>;

const SUMMARY_TEXT_RULE = { error: "must be a non-empty string" };

/**
 * A summary a caller adds (spec: `add_summary`): a version that rewrites the current summary
 * without covering new messages. The deployment's size limit is checked after this schema.
 */
export const NewSummarySchema = z
  .strictObject(
    {
      summary_text: z
        .string(SUMMARY_TEXT_RULE)
        .min(1, SUMMARY_TEXT_RULE)
        .describe("The new current summary (at most 256 KiB of UTF-8)"),
      metadata: z
        .record(z.string(), z.unknown(), { error: "must be an object" })
        .optional()
        .describe('Kept with the version, with `source: "add_summary"` unless it names another'),
    },
    strictObjectErrors(),
  )
  .meta({
    id: "NewSummary",
    description: "A summary to add as the session's current one",
    examples: [{ summary_text: "The user wants a light laptop under 1500 CHF.", metadata: { by: "import" } }],
  });
