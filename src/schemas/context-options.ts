/**
 * The options of a context read (`getContext`, `GET .../context`): a token budget and the model
 * it is counted for. The library takes numbers; the HTTP query takes the same keys as text.
 */
import { z } from "zod";
import { type Check, complain, strictObjectErrors } from "./issues.js";

const MAX_TOKENS_RULE = { error: "must be an integer from 1 to 10000000" };
const MODEL_RULE = { error: "must be a model name of 1-128 characters" };

function contextOptionsFields<Number extends z.ZodNumber | z.ZodCoercedNumber>(number: Number) {
  return {
    max_tokens: number
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
  };
}

const budgetNeedsTokens: Check<{ max_tokens?: unknown; model?: string | undefined }> = (payload) => {
  if (payload.value.model !== undefined && payload.value.max_tokens === undefined) {
    complain(payload, ["max_tokens"], "is required with model");
  }
};

/** The library's options; other keys are left alone (an options object may be shared). */
export const ContextOptionsSchema = z
  .object(contextOptionsFields(z.number(MAX_TOKENS_RULE)), { error: "must be an object" })
  .check(budgetNeedsTokens);

/** The options of a context read. */
export type ContextOptions = z.input<typeof ContextOptionsSchema>;

/** The same options in a query string: text turned into numbers, unknown keys refused. */
export const ContextQuerySchema = z
  .strictObject(contextOptionsFields(z.coerce.number(MAX_TOKENS_RULE)), strictObjectErrors())
  .check(budgetNeedsTokens);
