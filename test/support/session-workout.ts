import { chatTurn } from "../../src/cli/chat-workload.js";
import type { MemoryManager } from "../../src/manager/memory-manager.js";
import { seededRandom } from "./fixtures.js";

/** Every table of the system of record keyed by (tenant, session_id). */
export const SESSION_TABLES = [
  "memory_sessions",
  "memory_messages",
  "memory_summaries",
  "memory_session_configs",
  "memory_context_snapshots",
  "memory_summary_leases",
  "memory_redis_stale",
] as const;

/**
 * Everything one session goes through in the library, with summarization folding several times:
 * chat turns with budgeted context reads, a retried write, config, stats, summaries, a saved
 * context, a cleared buffer and summaries, and the erase. For tests of what reaches PostgreSQL.
 */
export async function workOutSession(manager: MemoryManager, sessionId: string, turns = 24): Promise<void> {
  const random = seededRandom(7);
  for (let turn = 0; turn < turns; turn++) {
    const [user, assistant] = chatTurn(random, turn);
    await manager.addMessages(sessionId, [user, { ...assistant, id: `reply-${turn}` }]);
    await manager.getContext(sessionId, { max_tokens: 4000 });
  }
  // A retried write: found by its key.
  await manager.addMessage(sessionId, { role: "assistant", content: "again", id: "reply-3" });
  await manager.waitForIdle();
  await manager.setSessionConfig(sessionId, { max_buffer_messages: 20 });
  await manager.getContext(sessionId);
  await manager.getMemoryStats(sessionId);
  await manager.summaryStore.getSummaryHistory(sessionId, 5);
  await manager.summaryStore.getCurrentSummary(sessionId);
  await manager.summaryStore.getSummaryStats(sessionId);
  await manager.saveContext(sessionId, { session_id: sessionId, step: "checkout" });
  await manager.loadContext(sessionId);
  await manager.bufferStore.clearBuffer(sessionId);
  await manager.summaryStore.clearSummaries(sessionId);
  await manager.addMessage(sessionId, { role: "user", content: "one more" });
  await manager.clearSessionMemory(sessionId);
}
