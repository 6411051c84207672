import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { SqlBufferStore } from "../../src/buffer/sql-buffer-store.js";
import { DatabaseUnavailableError, StorageUnavailableError } from "../../src/errors.js";
import { createMemoryManager, type MemoryManagerOptions } from "../../src/manager/create-memory-manager.js";
import type { MemoryManager } from "../../src/manager/memory-manager.js";
import { type CircuitBreaker, CircuitState } from "../../src/resilience/index.js";
import { PostgresDatabase } from "../../src/storage/database.js";
import { Transcript } from "../../src/storage/transcript.js";
import { TokenCounter } from "../../src/tokens/index.js";
import { bufferDependencies, randomMessage, recordingLogger, seededRandom } from "../support/fixtures.js";
import { PostgresClusterProcess, RedisServerProcess } from "../support/processes.js";
import {
  createTestDatabase,
  createTestRedis,
  type TestDatabase,
  type TestRedis,
  uniqueName,
} from "../support/servers.js";
import { FlakySummarizer } from "../support/test-summarizers.js";

// The specification's graceful degradation, each rule made to happen with real servers: this file starts
// its own redis-server and PostgreSQL cluster and kills, pauses and restarts them mid-traffic.

const fast = {
  failureThreshold: 2,
  recoveryTimeoutMs: 300,
  probeIntervalMs: 100,
  redisCommandTimeoutMs: 250,
};

let database: TestDatabase;
const opened: MemoryManager[] = [];

beforeAll(async () => {
  database = await createTestDatabase();
});

afterAll(async () => {
  await Promise.all(opened.map((manager) => manager.close().catch(() => {})));
  await database.drop();
});

async function open(options: Partial<MemoryManagerOptions>): Promise<MemoryManager> {
  const manager = await createMemoryManager({
    database: database.db,
    logger: recordingLogger(),
    resilience: fast,
    // Small budgets, so that summaries commit (and trim) throughout the faults.
    sessionDefaults: { summary_trigger_tokens: 400, max_buffer_tokens: 600, keep_recent_tokens: 150 },
    summarization: { idleFinalizeAfterMs: 0, backoffBaseMs: 20, backoffMaxMs: 200 },
    ...options,
  });
  opened.push(manager);
  return manager;
}

/** Invariant 2 after the faults: versions cover [1..k] without gap or overlap; the buffer is after k. */
async function expectExactCoverage(manager: MemoryManager, session: string): Promise<void> {
  await manager.waitForIdle();
  const versions = await manager.summaryStore.allVersions({ tenant: "default", sessionId: session });
  let k = 0;
  for (const version of versions) {
    expect(version.first_seq).toBe(k + 1);
    k = version.last_seq;
  }
  const context = await manager.getContext(session);
  expect(context.buffer_messages.every((message) => message.seq > k)).toBe(true);
}

async function until(
  condition: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 15_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** Writes and reads steadily on a few sessions until stopped; every write must be acknowledged. */
function steadyTraffic(manager: MemoryManager, sessions: string[]) {
  let running = true;
  const acknowledged = new Map<string, string[]>(sessions.map((session) => [session, []]));
  const errors: unknown[] = [];
  const random = seededRandom(5);
  const done = (async () => {
    let n = 0;
    while (running) {
      const session = sessions[n % sessions.length]!;
      const content = `message ${n++} ${String(randomMessage(random, 8).content)}`;
      try {
        await manager.addMessage(session, { role: n % 2 ? "user" : "assistant", content });
        acknowledged.get(session)!.push(content);
        await manager.getContext(session);
      } catch (error) {
        errors.push(error);
      }
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  })();
  return {
    acknowledged,
    errors,
    async stop() {
      running = false;
      await done;
    },
  };
}

/** What the transcript alone says the context is: what Redis must serve once it is back. */
async function expectSameAsSystemOfRecord(manager: MemoryManager, session: string): Promise<void> {
  const reference = await createMemoryManager({
    database: database.db,
    redis: false,
    summarization: { idleFinalizeAfterMs: 0 },
  });
  try {
    const expected = await reference.getContext(session);
    const actual = await manager.getContext(session);
    expect(actual.buffer_info.source).toBe("redis");
    expect(actual.buffer_messages).toEqual(expected.buffer_messages);
    expect(actual.current_summary).toEqual(expected.current_summary);
    expect(actual.buffer_info.total_tokens).toBe(expected.buffer_info.total_tokens);
    expect(actual.buffer_info.last_seq).toBe(expected.buffer_info.last_seq);
  } finally {
    await reference.close();
  }
}

/**
 * Once some traffic is acknowledged, causes `fault`, then waits until `breaker` is OPEN and
 * further writes are still acknowledged.
 */
async function faultUnderTraffic(
  traffic: ReturnType<typeof steadyTraffic>,
  sessions: string[],
  breaker: CircuitBreaker,
  fault: () => unknown,
): Promise<void> {
  await until(() => traffic.acknowledged.get(sessions.at(-1)!)!.length > 5, "some traffic");
  await fault();
  await until(() => breaker.getState() === CircuitState.OPEN, `the ${breaker.name} breaker opens`);
  const before = traffic.acknowledged.get(sessions[0]!)!.length;
  await until(
    () => traffic.acknowledged.get(sessions[0]!)!.length > before + 5,
    `writes continue without ${breaker.name}`,
  );
}

/** After the faults: no caller error, every acknowledged message stored, coverage exact, same answers. */
async function expectNothingLost(
  manager: MemoryManager,
  traffic: ReturnType<typeof steadyTraffic>,
  sessions: string[],
): Promise<void> {
  expect(traffic.errors).toEqual([]);
  for (const session of sessions) {
    await expectAllInTranscript(session, traffic.acknowledged.get(session)!);
    await expectExactCoverage(manager, session);
    await expectSameAsSystemOfRecord(manager, session);
  }
}

async function expectAllInTranscript(session: string, contents: string[]): Promise<void> {
  const transcript = await new Transcript(database.db).readAfter(
    { tenant: "default", sessionId: session },
    0,
    100_000,
  );
  expect(transcript.map((m) => m.content)).toEqual(contents);
  expect(transcript.map((m) => m.seq)).toEqual(contents.map((_, i) => i + 1));
}

// Without a Redis on this machine there is no redis-server to start either.
describe.skipIf(!inject("redisAvailable"))(
  "Redis unavailable: served from PostgreSQL, rebuilt on return",
  () => {
    let redis: RedisServerProcess;
    beforeAll(async () => {
      redis = await RedisServerProcess.start();
    });
    afterAll(async () => {
      await redis.stop();
    });

    it("survives a killed redis-server mid-traffic and comes back empty with nothing missing", async () => {
      const manager = await open({ redis: redis.url, keyPrefix: uniqueName("kill") });
      const sessions = [uniqueName("a"), uniqueName("b"), uniqueName("c")];
      const traffic = steadyTraffic(manager, sessions);
      await faultUnderTraffic(traffic, sessions, manager.circuitBreaker.redis, () => redis.kill());
      expect((await manager.getContext(sessions[0]!)).buffer_info.source).toBe("database");
      expect(manager.isAvailable()).toBe(true);
      expect(manager.health.snapshot().components.redis!.status).toBe("down");

      const transitions: string[] = [];
      const unsubscribe = manager.circuitBreaker.redis.onStateChange((change) => transitions.push(change.to));
      await redis.restart();
      await until(
        () => manager.circuitBreaker.redis.getState() === CircuitState.CLOSED,
        "the Redis breaker closes",
      );
      unsubscribe();
      // Summarization (its leases are in Redis) resumes once Redis is back.
      await until(
        async () => (await manager.summaryStore.getSummaryStats(sessions[0]!)).summary_count > 0,
        "a summary commits after Redis is back",
      );
      await traffic.stop();
      // A trial may fail while the server is still starting; the breaker ends HALF_OPEN -> CLOSED.
      expect(transitions.slice(-2)).toEqual([CircuitState.HALF_OPEN, CircuitState.CLOSED]);
      // Callers saw no errors at any point.
      await expectNothingLost(manager, traffic, sessions);
    });

    it("survives a paused redis-server (SIGSTOP) and resumes with the same answers", async () => {
      const manager = await open({ redis: redis.url, keyPrefix: uniqueName("pause") });
      const sessions = [uniqueName("p1"), uniqueName("p2")];
      const traffic = steadyTraffic(manager, sessions);
      await faultUnderTraffic(traffic, sessions, manager.circuitBreaker.redis, () => redis.pause());
      redis.resume();
      await until(
        () => manager.circuitBreaker.redis.getState() === CircuitState.CLOSED,
        "the Redis breaker closes",
      );
      await traffic.stop();
      await expectNothingLost(manager, traffic, sessions);
    });
  },
);

describe.skipIf(!inject("redisAvailable"))("Redis that returns with its old data", () => {
  it("drops the buffers that missed writes, so reads equal the transcript again", async () => {
    const redis = await RedisServerProcess.start({ persist: true });
    try {
      const manager = await open({ redis: redis.url, keyPrefix: uniqueName("stale") });
      const session = uniqueName("s");
      const contents: string[] = [];
      for (let i = 0; i < 5; i++) {
        contents.push(`before ${i}`);
        await manager.addMessage(session, { role: "user", content: `before ${i}` });
      }
      await redis.kill();
      for (let i = 0; i < 5; i++) {
        contents.push(`during ${i}`);
        await manager.addMessage(session, { role: "user", content: `during ${i}` });
      }
      // The restarted server loads its append-only file: the buffer as it was before the outage.
      await redis.restart();
      await until(
        () => manager.circuitBreaker.redis.getState() === CircuitState.CLOSED,
        "the Redis breaker closes",
      );
      await expectAllInTranscript(session, contents);
      await expectSameAsSystemOfRecord(manager, session);
      expect((await manager.getContext(session)).buffer_messages.at(-1)!.content).toBe("during 4");
    } finally {
      await redis.stop();
    }
  });
});

describe.skipIf(!inject("redisAvailable"))("a process that never noticed the outage", () => {
  it("drops stale buffers when its connection comes back, before serving from the restarted Redis", async () => {
    const redis = await RedisServerProcess.start({ persist: true });
    try {
      const keyPrefix = uniqueName("unnoticed");
      const session = uniqueName("s");
      // The reader reads before and after the outage, never during it: its breaker stays closed.
      const reader = await open({ redis: redis.url, keyPrefix });
      const writer = await open({ redis: redis.url, keyPrefix });
      const contents: string[] = [];
      for (let i = 0; i < 4; i++) {
        contents.push(`before ${i}`);
        await writer.addMessage(session, { role: "user", content: `before ${i}` });
      }
      expect((await reader.getContext(session)).buffer_messages).toHaveLength(4);
      await redis.kill();
      for (let i = 0; i < 4; i++) {
        contents.push(`during ${i}`);
        await writer.addMessage(session, { role: "user", content: `during ${i}` });
      }
      // The writer goes away before Redis returns: only the reader can drop the stale buffer.
      await writer.close();
      await redis.restart();
      // Give the reader's client time to reconnect (it retries every 500 ms) without sending it
      // anything, so that its breaker never sees the outage.
      await new Promise((resolve) => setTimeout(resolve, 1500));
      expect(reader.circuitBreaker.redis.getState()).toBe(CircuitState.CLOSED);
      const first = await reader.getContext(session);
      expect(first.buffer_messages.map((m) => m.content)).toEqual(contents);
      await until(
        async () => (await reader.getContext(session)).buffer_info.source === "redis",
        "the reader serves from Redis",
      );
      expect((await reader.getContext(session)).buffer_messages.map((m) => m.content)).toEqual(contents);
    } finally {
      await redis.stop();
    }
  });
});

describe.skipIf(!inject("redisAvailable") || !inject("postgresAvailable"))(
  "PostgreSQL unavailable while Redis is up",
  () => {
    let postgres: PostgresClusterProcess;
    let testRedis: TestRedis;
    // The outbox is used only where Redis keeps it: an append-only file, no eviction.
    let durableRedis: RedisServerProcess;
    beforeAll(async () => {
      postgres = await PostgresClusterProcess.start();
      testRedis = await createTestRedis();
      durableRedis = await RedisServerProcess.start({ persist: true });
    });
    afterAll(async () => {
      await testRedis.cleanup();
      await durableRedis.stop();
      await postgres.stop();
    });

    /** A manager that may hold writes in the durable Redis's outbox while PostgreSQL is away. */
    async function openWithOutbox(name: string): Promise<MemoryManager> {
      const manager = await createMemoryManager({
        database: postgres.url,
        redis: durableRedis.url,
        keyPrefix: uniqueName(name),
        logger: recordingLogger(),
        resilience: fast,
        summarization: { idleFinalizeAfterMs: 0 },
      });
      opened.push(manager);
      return manager;
    }

    it("refuses writes (503) rather than hold them in a Redis that may evict or lose them", async () => {
      const manager = await createMemoryManager({
        database: postgres.url,
        redis: testRedis.redis,
        keyPrefix: testRedis.keyPrefix,
        logger: recordingLogger(),
        resilience: fast,
        summarization: { idleFinalizeAfterMs: 0 },
      });
      opened.push(manager);
      const session = uniqueName("volatile");
      await manager.addMessage(session, { role: "user", content: "stored" });
      await postgres.stopServer();
      try {
        const error = await manager
          .addMessage(session, { role: "user", content: "refused", id: "refused-1" })
          .catch((e: unknown) => e);
        expect(error).toBeInstanceOf(StorageUnavailableError);
        expect(String(error)).toMatch(/would not keep the write durably/);
      } finally {
        await postgres.restart();
      }
      await until(
        () => manager.circuitBreaker.postgres.getState() === CircuitState.CLOSED,
        "the PostgreSQL breaker closes",
      );
      // The client's retry with the same id is stored once.
      await manager.addMessage(session, { role: "user", content: "refused", id: "refused-1" });
      const context = await manager.getContext(session);
      expect(context.buffer_messages.map((m) => m.content)).toEqual(["stored", "refused"]);
    });

    it("accepts writes into Redis with an outbox and replays them in order, exactly once", async () => {
      const manager = await openWithOutbox("outbox");
      const session = uniqueName("outbox");
      const contents: string[] = [];
      const write = async (content: string, id?: string) => {
        await manager.addMessage(session, { role: "user", content, ...(id ? { id } : {}) });
        contents.push(content);
      };
      for (let i = 0; i < 4; i++) await write(`before ${i}`);
      await postgres.stopServer();
      for (let i = 0; i < 6; i++) await write(`during ${i}`, i === 2 ? "retried-id" : undefined);
      // A retry of an acknowledged message during the outage: the replay stores it once.
      await manager.addMessage(session, { role: "user", content: "during 2", id: "retried-id" });
      // The outbox holds every append, the retry too (the replay drops it): /metrics' depth.
      expect(manager.outboxBacklog()).toBe(7);
      const context = await manager.getContext(session);
      expect(context.buffer_messages.map((m) => m.content).slice(-6)).toContain("during 5");
      expect(manager.circuitBreaker.postgres.getState()).toBe(CircuitState.OPEN);

      await postgres.restart();
      await until(
        () => manager.circuitBreaker.postgres.getState() === CircuitState.CLOSED,
        "the PostgreSQL breaker closes",
      );
      await manager.addMessage(session, { role: "user", content: "after" });
      contents.push("after");
      expect(manager.outboxBacklog()).toBe(0);
      const own = new PostgresDatabase({ connectionString: postgres.url });
      const transcript = await new Transcript(own).readAfter(
        { tenant: "default", sessionId: session },
        0,
        1000,
      );
      await own.close();
      expect(transcript.map((m) => m.content)).toEqual(contents);
      expect(transcript.map((m) => m.seq)).toEqual(contents.map((_, i) => i + 1));
      const after = await manager.getContext(session);
      expect(after.buffer_messages.map((m) => m.content)).toEqual(contents);
      expect(after.buffer_messages.map((m) => m.seq)).toEqual(contents.map((_, i) => i + 1));
    });

    it("stops counting the outbox of a session erased before its replay (no backlog forever)", async () => {
      const manager = await openWithOutbox("erased");
      const session = uniqueName("erased");
      await manager.addMessage(session, { role: "user", content: "before" });
      await postgres.stopServer();
      try {
        await manager.addMessage(session, { role: "user", content: "during" });
        expect(manager.outboxBacklog()).toBe(1);
        // The erase drops the Redis side, outbox included, before it waits for PostgreSQL.
        await expect(manager.clearSessionMemory(session)).rejects.toBeInstanceOf(StorageUnavailableError);
      } finally {
        await postgres.restart();
      }
      await until(() => manager.outboxBacklog() === 0, "the replay pass finds the outbox gone");
    });

    it("keeps accepting writes while PostgreSQL is paused (SIGSTOP) and stores each exactly once", async () => {
      const manager = await createMemoryManager({
        database: postgres.url,
        redis: durableRedis.url,
        keyPrefix: uniqueName("paused"),
        logger: recordingLogger(),
        resilience: { ...fast, databaseQueryTimeoutMs: 300 },
        summarization: { idleFinalizeAfterMs: 0 },
      });
      opened.push(manager);
      const sessions = [uniqueName("pg1"), uniqueName("pg2")];
      const traffic = steadyTraffic(manager, sessions);
      await faultUnderTraffic(traffic, sessions, manager.circuitBreaker.postgres, () =>
        postgres.pause("SIGSTOP"),
      );
      await postgres.pause("SIGCONT");
      await until(
        () => manager.circuitBreaker.postgres.getState() === CircuitState.CLOSED,
        "the PostgreSQL breaker closes",
      );
      await traffic.stop();
      await manager.addMessage(sessions[0]!, { role: "user", content: "after" });
      traffic.acknowledged.get(sessions[0]!)!.push("after");
      expect(traffic.errors).toEqual([]);
      const own = new PostgresDatabase({ connectionString: postgres.url });
      try {
        // The outboxes are replayed in the background once the breaker closes (a write replays
        // its own session's first): wait until the replay has reached every acknowledged write.
        await until(async () => {
          for (const session of sessions) {
            const ref = { tenant: "default", sessionId: session };
            const stored = await new Transcript(own).readAfter(ref, 0, 10_000);
            if (stored.length < traffic.acknowledged.get(session)!.length) return false;
          }
          return true;
        }, "the outboxes are replayed");
        for (const session of sessions) {
          const stored = await new Transcript(own).readAfter(
            { tenant: "default", sessionId: session },
            0,
            10_000,
          );
          const contents = stored.map((m) => String(m.content));
          expect(new Set(contents)).toEqual(new Set(traffic.acknowledged.get(session)!));
          expect(contents).toHaveLength(traffic.acknowledged.get(session)!.length);
          expect(stored.map((m) => m.seq)).toEqual(contents.map((_, i) => i + 1));
        }
      } finally {
        await own.close();
      }
    });

    it("fails the write (never a silent success) when neither tier can store it", async () => {
      const redis = await RedisServerProcess.start();
      const manager = await createMemoryManager({
        database: postgres.url,
        redis: redis.url,
        keyPrefix: uniqueName("both"),
        logger: recordingLogger(),
        resilience: fast,
        summarization: { idleFinalizeAfterMs: 0 },
      });
      opened.push(manager);
      const session = uniqueName("both");
      await manager.addMessage(session, { role: "user", content: "stored" });
      await redis.kill();
      await postgres.stopServer();
      const error = await manager
        .addMessage(session, { role: "user", content: "lost?" })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(StorageUnavailableError);
      await expect(manager.getContext(session)).rejects.toBeInstanceOf(StorageUnavailableError);
      // Each failed read counts against Redis's breaker; once both are open nothing can serve.
      await until(async () => {
        await manager.getContext(session).catch(() => {});
        return !manager.isAvailable();
      }, "the manager reports it cannot serve");
      await postgres.restart();
      await until(() => manager.isAvailable(), "PostgreSQL is back");
      await until(
        async () => (await manager.getContext(session).catch(() => null)) !== null,
        "reads work again",
      );
      const context = await manager.getContext(session);
      expect(context.buffer_messages.map((m) => m.content)).toEqual(["stored"]);
      await redis.stop();
    });

    it("without Redis, an unreachable database is a typed error", async () => {
      const manager = await createMemoryManager({
        database: postgres.url,
        redis: false,
        resilience: fast,
        summarization: { idleFinalizeAfterMs: 0 },
      });
      opened.push(manager);
      await postgres.stopServer();
      const error = await manager
        .addMessage(uniqueName("x"), { role: "user", content: "x" })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(DatabaseUnavailableError);
      await postgres.restart();
    });
  },
);

describe.skipIf(!inject("redisAvailable"))("summarizer failures", () => {
  it("opens the summarizer breaker after repeated failures and resumes when it closes", async () => {
    const testRedis = await createTestRedis();
    try {
      const summarizer = new FlakySummarizer({ failFirst: 3 });
      const manager = await open({
        redis: testRedis.redis,
        keyPrefix: testRedis.keyPrefix,
        summarizer,
        sessionDefaults: { summary_trigger_tokens: 200, max_buffer_tokens: 300, keep_recent_tokens: 50 },
        summarization: { idleFinalizeAfterMs: 0, backoffBaseMs: 20, backoffMaxMs: 100 },
      });
      const opened: string[] = [];
      manager.circuitBreaker.summarizer.onStateChange((change) => opened.push(change.to));
      const session = uniqueName("sum");
      for (let i = 0; i < 10; i++)
        await manager.addMessage(session, { role: "user", content: `note ${i} ${"word ".repeat(30)}` });
      await manager.waitForIdle();
      expect(opened).toContain(CircuitState.OPEN);
      expect(manager.circuitBreaker.summarizer.getState()).toBe(CircuitState.CLOSED);
      const history = await manager.summaryStore.getSummaryHistory(session);
      expect(history.length).toBeGreaterThan(0);
      expect(summarizer.calls.filter((call) => call.failed)).toHaveLength(3);
    } finally {
      await testRedis.cleanup();
    }
  });
});

describe("serialization and token counting errors", () => {
  it("stores metadata JSON cannot represent as text, with a warning, and continues", async () => {
    const logger = recordingLogger();
    const manager = await open({ redis: false, logger });
    const session = uniqueName("serial");
    const circular: Record<string, unknown> = { name: "loop" };
    circular.self = circular;
    await manager.addMessage(session, {
      role: "user",
      content: "hi",
      metadata: { big: 10n, circular } as never,
    });
    const [message] = (await manager.getContext(session)).buffer_messages;
    expect(String(message!.metadata!.unserializable)).toContain("10n");
    expect(logger.warnings.join(" ")).toMatch(/not JSON-serializable/);
  });

  it("falls back to a character estimate when counting fails, and flags it", async () => {
    const failing = new TokenCounter({
      encoder: {
        encoding: "o200k_base",
        count: () => {
          throw new Error("encoder broke");
        },
      },
    });
    const caps = { maxMessages: 10, maxTokens: 10_000, summaryTriggerTokens: 5000 };
    const estimating = new SqlBufferStore(bufferDependencies(database.db, caps, failing));
    const session = uniqueName("estimate");
    await estimating.addMessage(session, { role: "user", content: "x".repeat(400) });
    const [message] = await estimating.getMessages(session);
    expect(message!.tokens_estimated).toBe(true);
    expect(message!.tokens).toBeGreaterThanOrEqual(100);
    expect((await estimating.getBufferInfo(session)).estimated_messages).toBe(1);
  });
});
