/**
 * A process whose summarization job calls the model and then freezes before committing, so that
 * the test can kill it while it holds the session's lease.
 */
import { createMemoryManager } from "../../../src/manager/create-memory-manager.js";
import type { SummarizeRequest, SummarizeResult, Summarizer } from "../../../src/summarizer/index.js";

const frozen: Summarizer = {
  name: "extractive",
  async summarize(_request: SummarizeRequest): Promise<SummarizeResult> {
    process.stdout.write("model-called\n");
    return new Promise(() => {});
  },
};

const manager = await createMemoryManager({
  database: process.env.CHILD_DATABASE_URL!,
  redis: process.env.CHILD_REDIS_URL!,
  keyPrefix: process.env.CHILD_KEY_PREFIX!,
  sessionDefaults: {
    summary_trigger_tokens: 300,
    max_buffer_tokens: 400,
    max_buffer_messages: 20,
    keep_recent_tokens: 100,
    max_summary_tokens: 200,
  },
  summarizer: frozen,
  summarization: { leaseMs: Number(process.env.CHILD_LEASE_MS), idleFinalizeAfterMs: 0 },
});
await manager.addMessage(process.env.CHILD_SESSION!, {
  role: "user",
  content: `the message that triggers ${"word ".repeat(150)}`,
});
// Keep running until killed.
setInterval(() => {}, 1000);
