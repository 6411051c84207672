import { expect, it } from "vitest";
import { createMemoryManager } from "../../src/manager/create-memory-manager.js";
import { recordingLogger } from "../support/fixtures.js";
import { describeWithRedis, uniqueName, useTestServers } from "../support/servers.js";

// A context read must never pair a buffer with a summary that covers part of it. Before: when
// the summary's cache key was evicted, the read took the transcript's current summary (which may
// be newer than the buffer's last trim: its publish failed) and served it beside the untrimmed
// Redis buffer (the fault suite saw 1 such read in 1,424 under allkeys-lru pressure).

const servers = useTestServers();

describeWithRedis("a context read whose summary cache was evicted", () => {
  it("serves a summary and a buffer that agree, and puts the summary back", async () => {
    const options = { database: servers.database.db, logger: recordingLogger() };
    const memory = await createMemoryManager({
      ...options,
      redis: servers.redis!.redis,
      keyPrefix: servers.redis!.keyPrefix,
      summarization: { idleFinalizeAfterMs: 0 },
    });
    // Commits straight to PostgreSQL, as a summary whose publish to Redis failed.
    const sqlOnly = await createMemoryManager({
      ...options,
      redis: false,
      summarization: { idleFinalizeAfterMs: 0 },
    });
    try {
      const session = uniqueName("evicted-summary");
      for (let i = 1; i <= 10; i++) await memory.addMessage(session, { role: "user", content: `note ${i}` });
      const ref = { tenant: "default", sessionId: session };
      // Published: Redis trims the buffer to 4..10.
      await memory.summaryStore.commit(ref, {
        summaryText: "notes 1 to 3",
        tokens: 4,
        previousLastSeq: 0,
        lastSeq: 3,
      });
      expect((await memory.getContext(session)).buffer_messages.map((m) => m.seq)).toEqual([
        4, 5, 6, 7, 8, 9, 10,
      ]);
      await sqlOnly.summaryStore.commit(ref, {
        summaryText: "notes 1 to 6",
        tokens: 4,
        previousLastSeq: 3,
        lastSeq: 6,
      });
      // The summary cache goes (evicted); the buffer stays untrimmed in Redis.
      const keys = (await servers.redis!.redis.send([
        "KEYS",
        `${servers.redis!.keyPrefix}:*${session}*:sum`,
      ])) as string[];
      expect(keys).toHaveLength(1);
      await servers.redis!.redis.send(["DEL", keys[0]!]);

      for (let read = 0; read < 2; read++) {
        const context = await memory.getContext(session);
        expect(context.current_summary).toBe("notes 1 to 6");
        expect(context.buffer_messages.map((m) => m.seq)).toEqual([7, 8, 9, 10]);
      }
    } finally {
      await sqlOnly.close();
      await memory.close();
    }
  });
});
