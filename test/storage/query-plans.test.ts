import pg from "pg";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createMemoryManager } from "../../src/index.js";
import { ExtractiveSummarizer } from "../../src/summarizer/extractive-summarizer.js";
import { recordingLogger } from "../support/fixtures.js";
import {
  createTestDatabase,
  createTestRedis,
  type TestDatabase,
  type TestRedis,
} from "../support/servers.js";
import { SESSION_TABLES, workOutSession } from "../support/session-workout.js";

// The stale marks are taken in batches by a sweep (Transcript.takeRedisStale), not read per session.
const TABLES = SESSION_TABLES.filter((table) => table !== "memory_redis_stale");

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
      await workOutSession(manager, `plans-${index}`);
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
