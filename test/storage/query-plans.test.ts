import pg from "pg";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { chatTurn } from "../../src/cli/chat-workload.js";
import { createMemoryManager, type MemoryManager } from "../../src/index.js";
import { ExtractiveSummarizer } from "../../src/summarizer/extractive-summarizer.js";
import { recordingLogger, seededRandom } from "../support/fixtures.js";
import {
  createTestDatabase,
  createTestRedis,
  type TestDatabase,
  type TestRedis,
} from "../support/servers.js";

const TABLES = [
  "memory_sessions",
  "memory_messages",
  "memory_summaries",
  "memory_session_configs",
  "memory_context_snapshots",
  "memory_summary_leases",
];

/** Sequential scans of the library's tables so far, as the server counts them. */
async function sequentialScans(url: string): Promise<Record<string, number>> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const { rows } = await client.query<{ relname: string; seq_scan: string }>(
    "SELECT relname, seq_scan FROM pg_stat_user_tables WHERE relname = ANY($1)",
    [TABLES],
  );
  await client.end();
  return Object.fromEntries(rows.map((row) => [row.relname, Number(row.seq_scan)]));
}

/** Everything a session goes through, with summarization folding several times. */
async function exercise(manager: MemoryManager, sessionId: string): Promise<void> {
  const random = seededRandom(7);
  for (let turn = 0; turn < 24; turn++) {
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
  await manager.saveContext(sessionId, { session_id: sessionId, step: "checkout" });
  await manager.loadContext(sessionId);
  await manager.bufferStore.clearBuffer(sessionId);
  await manager.clearSessionMemory(sessionId);
}

// With plans made once per connection, a plan made while the tables were empty must not scan them:
// it would go on scanning as they grow. A fresh database and a server-side count of sequential
// scans show whether any statement the library sends reads a table whole.
describe.runIf(inject("postgresAvailable"))("query plans on a fresh database", () => {
  let database: TestDatabase;
  let redis: TestRedis | undefined;

  beforeAll(async () => {
    database = await createTestDatabase();
    if (inject("redisAvailable")) redis = await createTestRedis();
  });
  afterAll(async () => {
    await redis?.cleanup();
    await database.drop();
  });

  it("never reads a table sequentially, with Redis and without", async () => {
    const url = database.url!;
    const before = await sequentialScans(url);
    const deployments = [
      { redis: false as const },
      ...(redis ? [{ redis: redis.redis, keyPrefix: redis.keyPrefix }] : []),
    ];
    for (const [index, deployment] of deployments.entries()) {
      // A pool of its own (the manager opens it from the URL), so that its plans are made here.
      const manager = await createMemoryManager({
        database: url,
        ...deployment,
        summarizer: new ExtractiveSummarizer(),
        logger: recordingLogger(),
      });
      await exercise(manager, `plans-${index}`);
      // Closing ends the server processes, which report their counts as they exit.
      await manager.close();
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
    const after = await sequentialScans(url);
    const scans = Object.fromEntries(
      TABLES.map((table) => [table, (after[table] ?? 0) - (before[table] ?? 0)]),
    );
    expect(scans).toEqual(Object.fromEntries(TABLES.map((table) => [table, 0])));
  });
});
