/** A committed summary version and the exact transcript range it covers. */
import { z } from "zod";
import { count, seq } from "./ids.js";

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
