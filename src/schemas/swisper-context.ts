/**
 * The orchestrator's session state (spec: `SwisperContext`), saved as a snapshot that loads back
 * equal. It is application state: it never enters the LLM buffer. Extra fields are kept. Its size
 * bound is the deployment's (`maxContextBytes`), checked by the manager after this schema.
 */
import { z } from "zod";
import { printableId } from "./ids.js";

const object = (error = "must be an object") => z.record(z.string(), z.unknown(), { error });
const list = () => z.array(z.unknown(), { error: "must be an array" });
const textOrNull = () => z.string({ error: "must be a string or null" }).nullable();

export const SwisperContextSchema = z
  .looseObject(
    {
      session_id: printableId()
        .optional()
        .describe("Set to the path's session id when absent; must equal it"),
      user_id: textOrNull().optional(),
      current_state: textOrNull().optional(),
      product_query: textOrNull().optional(),
      preferences: object().optional(),
      constraints: object().optional(),
      selected_product: object("must be an object or null").nullable().optional(),
      search_results: list().optional(),
      conversation_history: list().optional(),
      metadata: object().optional(),
    },
    { error: "must be an object" },
  )
  .meta({
    id: "SwisperContext",
    description: "The orchestrator's session state; extra fields are kept; at most 1 MiB",
    examples: [{ session_id: "session_123", current_state: "search", preferences: { budget_chf: 1500 } }],
  });

/**
 * A saved SwisperContext. `session_id` may be left out when saving (it is the session's); a loaded
 * one always has it.
 */
export type SwisperContext = z.infer<typeof SwisperContextSchema> & { session_id: string };
