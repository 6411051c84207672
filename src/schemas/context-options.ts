/**
 * The options of a context read (`getContext`, `GET .../context`): a token budget and the model
 * it is counted for. The library takes numbers; the HTTP query takes the same keys as text.
 */
import { z } from "zod";
import { type Check, complain, strictObjectErrors } from "./issues.js";

const MAX_TOKENS_RULE = { error: "must be an integer from 1 to 10000000" };
const MODEL_RULE = { error: "must be a model name of 1-128 characters" };
const MIN_SEQ_RULE = { error: "must be a whole number (a seq a write returned)" };

/** The fields, with numbers made by `number` (z.number, or z.coerce.number for a query). */
function contextOptionsFields<N extends z.ZodNumber | z.ZodCoercedNumber>(
  number: (rule: { error: string }) => N,
) {
  return {
    max_tokens: number(MAX_TOKENS_RULE)
      .int(MAX_TOKENS_RULE)
      .min(1, MAX_TOKENS_RULE)
      .max(10_000_000, MAX_TOKENS_RULE)
      .optional()
      .meta({ description: "Budget for `messages`, in tokens of `model`", examples: [4000] }),
    model: z
      .string(MODEL_RULE)
      .min(1, MODEL_RULE)
      .max(128, MODEL_RULE)
      .optional()
      .meta({ description: "Model the budget is counted for (needs max_tokens)", examples: ["gpt-4o"] }),
    min_seq: number(MIN_SEQ_RULE)
      .int(MIN_SEQ_RULE)
      .min(0, MIN_SEQ_RULE)
      .max(Number.MAX_SAFE_INTEGER, MIN_SEQ_RULE)
      .optional()
      .meta({
        description:
          "A seq one of your writes returned: the read includes it. With Redis replicas (Sentinel), a replica that has it may answer; one behind it never does",
        examples: [42],
      }),
  };
}

const budgetNeedsTokens: Check<{ max_tokens?: unknown; model?: string | undefined }> = (payload) => {
  if (payload.value.model !== undefined && payload.value.max_tokens === undefined) {
    complain(payload, ["max_tokens"], "is required with model");
  }
};

/** The library's options; other keys are left alone (an options object may be shared). */
export const ContextOptionsSchema = z
  .object(
    contextOptionsFields((rule) => z.number(rule)),
    { error: "must be an object" },
  )
  .check(budgetNeedsTokens);

/** The options of a context read. */
export type ContextOptions = z.input<typeof ContextOptionsSchema>;

/** The same options in a query string: text turned into numbers, unknown keys refused. */
export const ContextQuerySchema = z
  .strictObject(
    contextOptionsFields((rule) => z.coerce.number(rule)),
    strictObjectErrors(),
  )
  .check(budgetNeedsTokens);
