import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createMemoryManager, type MemoryManagerOptions } from "../../src/manager/create-memory-manager.js";
import type { MemoryManager } from "../../src/manager/memory-manager.js";
import { Transcript } from "../../src/storage/transcript.js";
import { RedisLeaseManager } from "../../src/summary/leases.js";
import type { SummaryRecord } from "../../src/types.js";
import { startFakeOpenAIServer } from "../support/fake-openai-server.js";
import { randomMessage, recordingLogger, seededRandom } from "../support/fixtures.js";
import {
  createTestDatabase,
  createTestRedis,
  type TestDatabase,
  type TestRedis,
  uniqueName,
} from "../support/servers.js";
import { FlakySummarizer } from "../support/test-summarizers.js";
import { TEST_REDIS_URL } from "../support/urls.js";

// Summarization must never lose a message: coverage is exact ([1..k] without gap or overlap), the
// buffer holds exactly what comes after k, and one job at a time works on a session.

let database: TestDatabase;
let testRedis: TestRedis | undefined;
const opened: MemoryManager[] = [];

beforeAll(async () => {
  database = await createTestDatabase();
  if (inject("redisAvailable")) testRedis = await createTestRedis();
});

afterAll(async () => {
  await Promise.all(opened.map((manager) => manager.close()));
  await testRedis?.cleanup();
  await database.drop();
});

const sessionDefaults = {
  summary_trigger_tokens: 300,
  max_buffer_tokens: 400,
  max_buffer_messages: 20,
  keep_recent_tokens: 100,
  max_summary_tokens: 200,
};

async function open(options: Partial<MemoryManagerOptions> = {}, withRedis = true): Promise<MemoryManager> {
  const manager = await createMemoryManager({
    database: database.db,
    redis: withRedis ? testRedis!.redis : false,
    keyPrefix: testRedis?.keyPrefix ?? "unused",
    sessionDefaults,
    logger: recordingLogger(),
    summarization: { backoffBaseMs: 5, backoffMaxMs: 50, leaseMs: 3000, idleFinalizeAfterMs: 0 },
    ...options,
  });
  opened.push(manager);
  return manager;
}

/** Checks invariant 2 and returns k, the last covered seq. */
async function expectExactCoverage(
  manager: MemoryManager,
  session: string,
): Promise<{ k: number; versions: SummaryRecord[] }> {
  const versions = await manager.summaryStore.allVersions({ tenant: manager.tenant, sessionId: session });
  let k = 0;
  for (const [index, version] of versions.entries()) {
    expect(version.version).toBe(index + 1);
    expect(version.first_seq).toBe(k + 1);
    expect(version.last_seq).toBeGreaterThanOrEqual(k);
    k = version.last_seq;
  }
  return { k, versions };
}

/** The buffer holds exactly the messages after k that fit the caps, in Redis as in the database. */
async function expectBufferAfter(manager: MemoryManager, session: string, k: number): Promise<void> {
  const transcript = new Transcript(database.db);
  const after = await transcript.readAfter({ tenant: manager.tenant, sessionId: session }, k, 100_000);
  const context = await manager.getContext(session);
  const buffered = context.buffer_messages;
  expect(buffered.every((message) => message.seq > k)).toBe(true);
  expect(buffered).toEqual(after.slice(after.length - buffered.length));
  const capped = after.slice(-sessionDefaults.max_buffer_messages);
  let tokens = 0;
  let fit = 0;
  for (let i = capped.length - 1; i >= 0; i--) {
    if (fit > 0 && tokens + capped[i]!.tokens > sessionDefaults.max_buffer_tokens) break;
    tokens += capped[i]!.tokens;
    fit++;
  }
  expect(buffered.length).toBe(fit);
  const sqlOnly = await createMemoryManager({
    database: database.db,
    redis: false,
    sessionDefaults,
    summarization: { idleFinalizeAfterMs: 0 },
  });
  expect((await sqlOnly.getContext(session)).buffer_messages).toEqual(buffered);
  await sqlOnly.close();
}

describe.skipIf(!inject("redisAvailable"))("summarization under load", () => {
  it("four managers, 2,000 messages, a slow summarizer failing one call in three: nothing lost, exact coverage, one job at a time", async () => {
    const summarizer = new FlakySummarizer({ delayMs: 4, failEvery: 3 });
    const managers = await Promise.all([1, 2, 3, 4].map(() => open({ summarizer })));
    const session = uniqueName("load");
    const acknowledged = new Set<string>();
    await Promise.all(
      managers.map(async (manager, writer) => {
        const random = seededRandom(writer + 1);
        for (let i = 0; i < 500; i++) {
          const message = randomMessage(random, 3 + Math.floor(random() * 25));
          message.content = `[w${writer} #${i}] ${String(message.content)}`;
          if (await manager.addMessage(session, message)) acknowledged.add(message.content);
        }
      }),
    );
    await Promise.all(managers.map((manager) => manager.waitForIdle()));
    // A job that ends on a lease held elsewhere retries; let every process settle twice.
    await Promise.all(managers.map((manager) => manager.waitForIdle()));

    const transcript = await new Transcript(database.db).readAfter(
      { tenant: "default", sessionId: session },
      0,
      10_000,
    );
    expect(transcript.map((m) => m.seq)).toEqual(Array.from({ length: 2000 }, (_, i) => i + 1));
    expect(new Set(transcript.map((m) => String(m.content)))).toEqual(acknowledged);

    const { k, versions } = await expectExactCoverage(managers[0]!, session);
    expect(versions.length).toBeGreaterThan(10);
    expect(k).toBeGreaterThan(1500);
    await expectBufferAfter(managers[0]!, session, k);

    // No two summarizer calls overlapped in time: the lease let one job at a time work.
    const calls = [...summarizer.calls].sort((a, b) => a.startedAt - b.startedAt);
    for (let i = 1; i < calls.length; i++)
      expect(calls[i]!.startedAt).toBeGreaterThanOrEqual(calls[i - 1]!.endedAt);
    expect(calls.some((call) => call.failed)).toBe(true);
    // Each committed version says who made it and what it cost.
    expect(versions[0]!.metadata).toMatchObject({ summarizer: "extractive", model: null, mode: "trigger" });
    expect(versions[0]!.metadata.input_tokens).toBeGreaterThan(0);
    expect(versions[0]!.metadata.output_tokens).toBe(versions[0]!.tokens);
    expect(typeof versions[0]!.metadata.latency_ms).toBe("number");
  }, 120_000);
});

describe.skipIf(!inject("redisAvailable"))("summarization recovery", () => {
  it("a job killed after calling the model but before committing is retried by another process", async () => {
    const session = uniqueName("killed");
    const writer = await open({ summarizer: new FlakySummarizer() });
    // Below the trigger: nothing is summarized yet.
    for (let i = 0; i < 6; i++)
      await writer.addMessage(session, { role: "user", content: `message ${i} ${"word ".repeat(30)}` });
    await writer.waitForIdle();
    expect(await writer.summaryStore.getSummaryHistory(session)).toEqual([]);

    // A child process runs a job whose summarizer answers, then freezes before the commit; it is
    // killed while it holds the lease.
    const child = spawn(
      process.execPath,
      ["--import", "tsx", fileURLToPath(new URL("./children/frozen-summarizer.ts", import.meta.url))],
      {
        env: {
          ...process.env,
          CHILD_DATABASE_URL: database.url ?? "",
          CHILD_REDIS_URL: TEST_REDIS_URL,
          CHILD_KEY_PREFIX: testRedis!.keyPrefix,
          CHILD_SESSION: session,
          CHILD_LEASE_MS: "1500",
        },
        stdio: ["ignore", "pipe", "inherit"],
      },
    );
    await new Promise<void>((resolve, reject) => {
      child.stdout!.on("data", (chunk: Buffer) => {
        if (chunk.toString().includes("model-called")) resolve();
      });
      child.once("exit", (code) => reject(new Error(`child exited early with ${code}`)));
    });
    child.kill("SIGKILL");
    await new Promise((resolve) => child.once("exit", resolve));

    // The dead job's lease is still there: this process waits it out, then summarizes.
    const summarizer = new FlakySummarizer();
    const survivor = await open({ summarizer });
    const leaseHeld = await new RedisLeaseManager(testRedis!.redis, testRedis!.keyPrefix).acquire(
      { tenant: "default", sessionId: session },
      0,
    );
    expect(leaseHeld.lease).toBeNull();
    for (let i = 6; i < 12; i++)
      await survivor.addMessage(session, { role: "user", content: `message ${i} ${"word ".repeat(30)}` });
    await survivor.waitForIdle();
    const { k, versions } = await expectExactCoverage(survivor, session);
    expect(versions.length).toBeGreaterThanOrEqual(1);
    expect(versions[0]!.first_seq).toBe(1);
    expect(k).toBeGreaterThan(0);
    await expectBufferAfter(survivor, session, k);
    expect(summarizer.calls.length).toBeGreaterThan(0);
  }, 60_000);

  it("a failing summarizer loses nothing: capped-out messages are summarized once it recovers", async () => {
    const summarizer = new FlakySummarizer({ failFirst: 1_000_000 });
    const manager = await open({
      summarizer,
      summarization: { backoffBaseMs: 1, backoffMaxMs: 5, maxAttempts: 3, idleFinalizeAfterMs: 0 },
    });
    const session = uniqueName("recovering");
    const random = seededRandom(99);
    for (let i = 0; i < 120; i++)
      await manager.addMessage(session, randomMessage(random, 10 + Math.floor(random() * 30)));
    // This summarizer always fails: its jobs would wait for its breaker forever; closing drops them.
    await manager.close();
    expect(summarizer.calls.length).toBeGreaterThan(0);
    expect(await manager.summaryStore.getSummaryHistory(session)).toEqual([]);
    // The caps pushed most messages out of Redis; the transcript has all of them.
    const context = await manager.getContext(session);
    expect(context.buffer_messages.length).toBeLessThanOrEqual(sessionDefaults.max_buffer_messages);
    expect(context.buffer_info.last_seq).toBe(120);

    const healthy = await open({ summarizer: new FlakySummarizer() });
    await healthy.addMessage(session, { role: "user", content: "and one more" });
    await healthy.waitForIdle();
    const { k, versions } = await expectExactCoverage(healthy, session);
    expect(versions[0]!.first_seq).toBe(1);
    expect(k).toBeGreaterThanOrEqual(121 - sessionDefaults.max_buffer_messages);
    await expectBufferAfter(healthy, session, k);
  });

  it("a stale job (its lease taken over) commits nothing", async () => {
    const session = uniqueName("stale");
    const manager = await open({ summarizer: new FlakySummarizer() });
    for (let i = 0; i < 3; i++) await manager.addMessage(session, { role: "user", content: `m${i}` });
    const ref = { tenant: "default", sessionId: session };
    // Two commits from the same coverage: the second (an older view) is refused.
    const first = await manager.summaryStore.commit(ref, {
      summaryText: "a",
      tokens: 1,
      previousLastSeq: 0,
      lastSeq: 2,
      fencingToken: 7,
    });
    const stale = await manager.summaryStore.commit(ref, {
      summaryText: "b",
      tokens: 1,
      previousLastSeq: 0,
      lastSeq: 3,
      fencingToken: 6,
    });
    expect(first).not.toBeNull();
    expect(stale).toBeNull();
    // A lower fencing token than one already committed is refused even at the current coverage.
    const older = await manager.summaryStore.commit(ref, {
      summaryText: "c",
      tokens: 1,
      previousLastSeq: 2,
      lastSeq: 3,
      fencingToken: 5,
    });
    expect(older).toBeNull();
    // A job from before the session was erased cannot commit into the new one.
    const { generation } = await new Transcript(database.db).readJobInput(ref, {
      maxMessages: 10,
      maxTokens: 1000,
    });
    await manager.clearSessionMemory(session);
    await manager.addMessages(session, [
      { role: "user", content: "new life" },
      { role: "user", content: "again" },
    ]);
    const ghost = await manager.summaryStore.commit(ref, {
      summaryText: "old secrets",
      tokens: 2,
      previousLastSeq: 0,
      lastSeq: 2,
      fencingToken: 100,
      generation: generation!,
    });
    expect(ghost).toBeNull();
    expect(await manager.summaryStore.getSummaryHistory(session)).toEqual([]);
  });
});

describe("summarization without Redis", () => {
  it("takes its lease in PostgreSQL and keeps coverage exact", async () => {
    const summarizer = new FlakySummarizer({ failEvery: 4 });
    const managers = await Promise.all([1, 2].map(() => open({ summarizer }, false)));
    const session = uniqueName("sql");
    await Promise.all(
      managers.map(async (manager, writer) => {
        const random = seededRandom(writer + 10);
        for (let i = 0; i < 100; i++)
          await manager.addMessage(session, randomMessage(random, 10 + Math.floor(random() * 20)));
      }),
    );
    await Promise.all(managers.map((manager) => manager.waitForIdle()));
    await Promise.all(managers.map((manager) => manager.waitForIdle()));
    const { k, versions } = await expectExactCoverage(managers[0]!, session);
    expect(versions.length).toBeGreaterThan(1);
    const buffered = (await managers[0]!.getContext(session)).buffer_messages;
    expect(buffered.every((message) => message.seq > k)).toBe(true);
    const calls = [...summarizer.calls].sort((a, b) => a.startedAt - b.startedAt);
    for (let i = 1; i < calls.length; i++)
      expect(calls[i]!.startedAt).toBeGreaterThanOrEqual(calls[i - 1]!.endedAt);
  });
});

// Backpressure bounds what a context can skip (messages pushed out of the buffer, not yet
// summarized) by making a write wait for its session's summary; a summarizer that keeps pace must
// never make one wait. Short messages are the case: the caps push them out before the token
// trigger is reached, so only the backlog asks for their summaries.
describe("backpressure", () => {
  /** Writes `count` short messages one at a time; returns the widest hole a context read showed. */
  async function writeShortMessages(manager: MemoryManager, session: string, count: number): Promise<number> {
    const random = seededRandom(count);
    let widest = 0;
    for (let i = 0; i < count; i++) {
      await manager.addMessage(session, randomMessage(random, 3));
      const context = await manager.getContext(session);
      const firstSeq = context.buffer_messages[0]?.seq ?? context.buffer_info.last_seq + 1;
      widest = Math.max(widest, firstSeq - (context.summary?.last_seq ?? 0) - 1);
    }
    return widest;
  }

  it("never holds a write of a session of short messages while its summaries keep pace", async () => {
    const manager = await open({ summarizer: new FlakySummarizer() }, false);
    const session = uniqueName("short");
    const widest = await writeShortMessages(manager, session, 200);
    await manager.waitForIdle();
    expect(manager.summarizationBackpressure()).toEqual({ held: 0, timeouts: 0 });
    expect(widest).toBeLessThanOrEqual(sessionDefaults.max_buffer_messages);
    const { versions } = await expectExactCoverage(manager, session);
    expect(versions.length).toBeGreaterThanOrEqual(10);
  });

  it("holds the writes that would let a slow summarizer's session skip more than the bound", async () => {
    const manager = await open({ summarizer: new FlakySummarizer({ delayMs: 300 }) }, false);
    const session = uniqueName("slow");
    const widest = await writeShortMessages(manager, session, 80);
    await manager.waitForIdle();
    const { held, timeouts } = manager.summarizationBackpressure();
    expect(held).toBeGreaterThan(0);
    expect(timeouts).toBe(0);
    expect(widest).toBeLessThanOrEqual(sessionDefaults.max_buffer_messages);
    await expectExactCoverage(manager, session);
  });
});

describe.skipIf(!inject("redisAvailable"))("idle sessions and the OpenAI-compatible summarizer", () => {
  it("finalizes an idle session: everything unsummarized goes into a permanent summary", async () => {
    const manager = await open({
      summarizer: new FlakySummarizer(),
      summarization: { idleFinalizeAfterMs: 300, idleCheckIntervalMs: 50, backoffBaseMs: 5 },
    });
    const session = uniqueName("idle");
    await manager.addMessages(session, [
      { role: "user", content: "I need a hotel in Zurich for 3 nights, under 250 CHF per night." },
      { role: "assistant", content: "The Hotel Adler has rooms at 210 CHF." },
    ]);
    const deadline = Date.now() + 10_000;
    let history: SummaryRecord[] = [];
    while (Date.now() < deadline) {
      history = await manager.summaryStore.getSummaryHistory(session);
      if (history.length > 0) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await manager.waitForIdle();
    expect(history[0]).toMatchObject({ first_seq: 1, last_seq: 2 });
    expect(history[0]!.metadata).toMatchObject({ mode: "final" });
    expect(history[0]!.summary_text).toContain("250 CHF");
    const context = await manager.getContext(session);
    expect(context.buffer_messages).toEqual([]);
    expect(context.current_summary).toBe(history[0]!.summary_text);
  });

  it("uses an OpenAI-compatible endpoint chosen by the environment and records model and usage", async () => {
    const server = await startFakeOpenAIServer();
    try {
      server.setBehaviour({
        kind: "answer",
        content: "User wants a laptop under 1500 CHF; prefers Lenovo.",
        promptTokens: 321,
        model: "gpt-4o-mini",
      });
      const manager = await open({
        summarizer: {
          env: {
            MEMORY_SUMMARIZER: "openai",
            OPENAI_BASE_URL: server.url,
            OPENAI_API_KEY: "sk-test",
            MEMORY_SUMMARY_MODEL: "gpt-4o-mini",
          },
        },
      });
      const session = uniqueName("openai");
      for (let i = 0; i < 8; i++)
        await manager.addMessage(session, {
          role: i % 2 ? "assistant" : "user",
          content: `Laptop question ${i}: ${"budget ".repeat(40)}`,
        });
      await manager.waitForIdle();
      const [latest] = await manager.summaryStore.getSummaryHistory(session, 1);
      expect(latest!.summary_text).toBe("User wants a laptop under 1500 CHF; prefers Lenovo.");
      expect(latest!.metadata).toMatchObject({
        summarizer: "openai",
        model: "gpt-4o-mini",
        input_tokens: 321,
      });
      expect(server.requests[0]!.headers.authorization).toBe("Bearer sk-test");
      expect((await manager.getContext(session)).current_summary).toBe(latest!.summary_text);
    } finally {
      await server.close();
    }
  });
});
