import { afterAll, beforeAll, expect, it } from "vitest";
import { createMemoryManager } from "../../src/manager/create-memory-manager.js";
import type { MemoryManager } from "../../src/manager/memory-manager.js";
import type { Database, Transaction } from "../../src/storage/database.js";
import { recordingLogger } from "../support/fixtures.js";
import {
  createTestDatabase,
  createTestRedis,
  describeWithRedis,
  type TestDatabase,
  type TestRedis,
  uniqueName,
} from "../support/servers.js";

// Invariant 6 with the race forced rather than hoped for: a rebuild reads the transcript before an
// erase and reaches Redis after it. Before the epoch fence both tests failed: the context after the
// erase held the 20 erased messages (for the buffer's TTL, hiding a new seq 1 behind the stale
// buffer's last seq 20), and the erased config (max_buffer_messages 5) was served again.

/** Holds every read of one kind (transcript snapshots by default), after it has read, until released. */
class SnapshotGate implements Database {
  readonly #inner: Database;
  #held: (() => void)[] = [];
  #armed = false;
  #matches: (sql: string) => boolean = SNAPSHOT_READ;
  #reached: (() => void) | null = null;
  constructor(inner: Database) {
    this.#inner = inner;
  }
  get kind() {
    return this.#inner.kind;
  }
  /** Resolves once a matching read has been made and is being held. */
  arm(matches: (sql: string) => boolean = SNAPSHOT_READ): Promise<void> {
    this.#armed = true;
    this.#matches = matches;
    return new Promise((resolve) => {
      this.#reached = resolve;
    });
  }
  release(): void {
    this.#armed = false;
    for (const release of this.#held.splice(0)) release();
  }
  async query<Row extends object>(sql: string, params?: readonly unknown[]): Promise<{ rows: Row[] }> {
    const result = await this.#inner.query<Row>(sql, params);
    if (this.#armed && this.#matches(sql)) {
      this.#reached?.();
      await new Promise<void>((resolve) => this.#held.push(resolve));
    }
    return result;
  }
  transaction<T>(work: (tx: Transaction) => Promise<T>): Promise<T> {
    return this.#inner.transaction(work);
  }
  exec(sql: string): Promise<void> {
    return this.#inner.exec(sql);
  }
  close(): Promise<void> {
    return this.#inner.close();
  }
}

const SNAPSHOT_READ = (sql: string) => sql.includes("running_tokens");
const CURRENT_SUMMARY_READ = (sql: string) =>
  sql.includes("ORDER BY version DESC LIMIT 1") && !sql.includes("WITH");

let database: TestDatabase;
let redis: TestRedis;
let gate: SnapshotGate;
let memory: MemoryManager;

beforeAll(async () => {
  database = await createTestDatabase();
  redis = await createTestRedis();
  gate = new SnapshotGate(database.db);
  memory = await createMemoryManager({
    database: gate,
    redis: redis.redis,
    keyPrefix: redis.keyPrefix,
    logger: recordingLogger(),
    summarization: { idleFinalizeAfterMs: 0 },
  });
});

afterAll(async () => {
  await memory?.close();
  await redis?.cleanup();
  await database?.drop();
});

async function writeTwenty(session: string): Promise<void> {
  await memory.addMessages(
    session,
    Array.from({ length: 20 }, (_, i) => ({ role: "user" as const, content: `secret ${i}` })),
  );
}

describeWithRedis("a rebuild that read the transcript before an erase", () => {
  it("never puts the erased messages back, and a new message after the erase is seen", async () => {
    const session = uniqueName("erase-read");
    await writeTwenty(session);
    // A config change drops the Redis copy: the next read rebuilds it from the transcript.
    await memory.setSessionConfig(session, { max_buffer_messages: 25 });
    const held = gate.arm();
    const racingRead = memory.getContext(session);
    await held;
    await memory.clearSessionMemory(session);
    gate.release();
    await racingRead;

    expect((await memory.getContext(session)).buffer_messages).toEqual([]);
    await memory.addMessage(session, { role: "user", content: "after the erase" });
    const context = await memory.getContext(session);
    expect(context.buffer_messages.map((m) => [m.seq, m.content])).toEqual([[1, "after the erase"]]);
    expect(context.buffer_info.source).toBe("redis");
  });

  it("never caches an erased config", async () => {
    const session = uniqueName("erase-config");
    await writeTwenty(session);
    await memory.setSessionConfig(session, { max_buffer_messages: 5 });
    const held = gate.arm();
    const racingRead = memory.getContext(session);
    await held;
    await memory.clearSessionMemory(session);
    gate.release();
    await racingRead;

    await memory.addMessage(session, { role: "user", content: "new conversation" });
    const context = await memory.getContext(session);
    expect(context.buffer_info.max_messages).toBe(30);
    expect(await memory.getSessionConfig(session)).toMatchObject({ max_buffer_messages: 30 });
  });

  it("never caches an erased summary into the session that reuses the id", async () => {
    // Before: the summary read through from PostgreSQL was published without its generation, so
    // it landed in the new session's cache and trimmed its first message (context [] at last_seq 1).
    const session = uniqueName("erase-summary");
    await writeTwenty(session);
    await memory.summaryStore.addSummary(session, "the user shared twenty secrets");
    await memory.setSessionConfig(session, { max_buffer_messages: 25 });
    const held = gate.arm(CURRENT_SUMMARY_READ);
    const racingRead = memory.summaryStore.getCurrentSummary(session);
    await held;
    await memory.clearSessionMemory(session);
    await memory.addMessage(session, { role: "user", content: "a new conversation" });
    expect((await memory.getContext(session)).buffer_messages).toHaveLength(1);
    gate.release();
    await racingRead;

    const context = await memory.getContext(session);
    expect(context.buffer_messages.map((m) => [m.seq, m.content])).toEqual([[1, "a new conversation"]]);
    expect(context.current_summary).toBeNull();
    expect(await memory.summaryStore.getCurrentSummary(session)).toBeNull();
  });
});
