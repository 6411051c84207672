import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createMemoryManager } from "../../src/manager/create-memory-manager.js";
import type { MemoryManager } from "../../src/manager/memory-manager.js";
import { recordingLogger } from "../support/fixtures.js";
import { RedisClusterProcesses } from "../support/processes.js";
import { createTestDatabase, type TestDatabase, uniqueName } from "../support/servers.js";
import { FlakySummarizer } from "../support/test-summarizers.js";

// Redis-only behaviour: every key of a session shares one hash tag, so each Lua script runs on one
// slot and sessions spread over the cluster's primaries (the specification's "Redis Clustering").

let database: TestDatabase;
let cluster: RedisClusterProcesses;
let memory: MemoryManager;
// Without a Redis on this machine there is no redis-server to start either.
const redisInstalled = inject("redisAvailable");

beforeAll(async () => {
  if (!redisInstalled) return;
  database = await createTestDatabase();
  cluster = await RedisClusterProcesses.start();
  memory = await createMemoryManager({
    database: database.db,
    redis: cluster.url,
    redisCluster: true,
    logger: recordingLogger(),
    summarizer: new FlakySummarizer(),
    sessionDefaults: { summary_trigger_tokens: 300, max_buffer_tokens: 400, keep_recent_tokens: 100 },
    summarization: { idleFinalizeAfterMs: 0 },
  });
}, 60_000);

afterAll(async () => {
  await memory?.close();
  await cluster?.stop();
  await database?.drop();
});

describe.skipIf(!redisInstalled)("on a Redis Cluster", () => {
  it("serves writes, reads and summaries from Redis, with sessions spread over the primaries", async () => {
    const sessions = Array.from({ length: 12 }, () => uniqueName("cluster"));
    for (const session of sessions) {
      for (let i = 0; i < 12; i++) {
        await memory.addMessage(session, {
          role: i % 2 ? "assistant" : "user",
          content: `turn ${i} ${"word ".repeat(20)}`,
        });
      }
    }
    await memory.waitForIdle();
    for (const session of sessions) {
      const context = await memory.getContext(session, { max_tokens: 500 });
      expect(context.buffer_info.source).toBe("redis");
      expect(context.buffer_info.last_seq).toBe(12);
      expect(context.current_summary).not.toBeNull();
      expect(context.summary!.last_seq + 1).toBe(context.buffer_messages[0]!.seq);
    }
    const stats = await memory.getMemoryStats(sessions[0]!);
    expect(stats.redis.available).toBe(true);
    const { execFileSync } = await import("node:child_process");
    const keysPerNode = cluster.nodes.map((node) =>
      Number(
        execFileSync("redis-cli", ["-p", String(node.port), "dbsize"])
          .toString()
          .trim(),
      ),
    );
    expect(keysPerNode.filter((count) => count > 0).length).toBeGreaterThan(1);
    expect(memory.circuitBreaker.redis.getState()).toBe("closed");
  });
});
