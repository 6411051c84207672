import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, inject, it } from "vitest";
import { chatTurn, seededRandom } from "../../src/cli/chat-workload.js";
import { createMemoryManager, type MemoryManagerOptions } from "../../src/manager/create-memory-manager.js";
import type { MemoryManager } from "../../src/manager/memory-manager.js";
import { recordingLogger } from "../support/fixtures.js";
import { createTestDatabase, createTestRedis } from "../support/servers.js";

// Issue 11, item 9: summaries must keep pace with the writes, in every storage mode.
//
// The chat workload (one writer, turns back to back, the default extractive summarizer on its
// worker thread) checks at every context read that the context covers the session without a hole
// wider than the bound: the messages between the summary's last seq and the buffer's first seq
// (pushed out of the buffer by the caps, not yet summarized) are at most `max_buffer_messages`.
//
// On the code before the backpressure this printed:
//   embedded PGlite: widest hole 89 messages (bound 30) at 300 of 600 reads; 0 summaries committed
//     during the run; 10 sessions never read a summary
//   PostgreSQL: widest hole 89 messages (bound 30) at 30 of 600 reads; 64 summaries committed
//     during the run; 1 sessions never read a summary
//   Redis + PostgreSQL: widest hole 89 messages (bound 30) at 57 of 600 reads; 61 summaries
//     committed during the run; 1 sessions never read a summary
// On PostgreSQL the first session ran while the worker thread was starting. On PGlite no summary
// committed until the writer stopped, whatever the worker's nice value (0 or 10: the same): every
// query resolves without I/O, so a writer that never waits on I/O keeps the event loop in
// microtasks, and the worker's answers (and the lease heartbeat) are never delivered.

const SESSIONS = 10;
const TURNS = 60;

interface RunFigures {
  reads: number;
  readsWithHole: number;
  widestHole: number;
  bound: number;
  committedDuringRun: number;
  sessionsWithoutSummary: number;
}

/** Replays the chat workload with one writer and measures the coverage at every read. */
async function replay(memory: MemoryManager, committed: () => number): Promise<RunFigures> {
  const figures: RunFigures = {
    reads: 0,
    readsWithHole: 0,
    widestHole: 0,
    bound: 0,
    committedDuringRun: 0,
    sessionsWithoutSummary: 0,
  };
  const run = Date.now().toString(36);
  for (let session = 0; session < SESSIONS; session++) {
    const random = seededRandom(session + 1);
    const sessionId = `pace-${run}-${session}`;
    let summarized = false;
    for (let turn = 0; turn < TURNS; turn++) {
      const [user, assistant] = chatTurn(random, turn);
      await memory.addMessage(sessionId, user);
      const context = await memory.getContext(sessionId);
      const firstSeq = context.buffer_messages[0]?.seq ?? context.buffer_info.last_seq + 1;
      const hole = firstSeq - (context.summary?.last_seq ?? 0) - 1;
      figures.reads++;
      if (hole > context.buffer_info.max_messages) figures.readsWithHole++;
      figures.widestHole = Math.max(figures.widestHole, hole);
      figures.bound = context.buffer_info.max_messages;
      summarized ||= context.summary !== null;
      await memory.addMessage(sessionId, assistant);
    }
    if (!summarized) figures.sessionsWithoutSummary++;
  }
  figures.committedDuringRun = committed();
  return figures;
}

async function runMode(name: string, options: MemoryManagerOptions): Promise<void> {
  let committed = 0;
  const memory = await createMemoryManager({
    ...options,
    logger: recordingLogger(),
    autoMigrate: options.autoMigrate ?? true,
    summarization: {
      idleFinalizeAfterMs: 0,
      onJob: (outcome) => {
        if (outcome.kind === "committed") committed++;
      },
    },
  });
  try {
    const figures = await replay(memory, () => committed);
    const summary =
      `${name}: widest hole ${figures.widestHole} messages (bound ${figures.bound}) at ` +
      `${figures.readsWithHole} of ${figures.reads} reads; ${figures.committedDuringRun} summaries ` +
      `committed during the run; ${figures.sessionsWithoutSummary} sessions never read a summary`;
    console.log(summary);
    expect(figures.readsWithHole, summary).toBe(0);
    expect(figures.widestHole, summary).toBeLessThanOrEqual(figures.bound);
    expect(figures.committedDuringRun, summary).toBeGreaterThan(0);
    expect(figures.sessionsWithoutSummary, summary).toBe(0);
  } finally {
    await memory.close();
  }
}

describe("summaries keep pace with a sustained write rate", () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  it("on the embedded database (PGlite, no Redis)", async () => {
    const dataDir = await mkdtemp(join(tmpdir(), "swm-pace-"));
    cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
    await runMode("embedded PGlite", { dataDir, redis: false, env: {} });
  });

  it("on PostgreSQL alone", async () => {
    const database = await createTestDatabase();
    cleanups.push(() => database.drop());
    await runMode("PostgreSQL", { database: database.db, redis: false, autoMigrate: false, env: {} });
  });

  it.skipIf(!inject("redisAvailable"))("on Redis + PostgreSQL", async () => {
    const database = await createTestDatabase();
    const redis = await createTestRedis();
    cleanups.push(
      () => database.drop(),
      () => redis.cleanup(),
    );
    await runMode("Redis + PostgreSQL", {
      database: database.db,
      redis: redis.redis,
      keyPrefix: redis.keyPrefix,
      autoMigrate: false,
      env: {},
    });
  });
});
