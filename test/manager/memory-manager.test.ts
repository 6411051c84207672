import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { ValidationError } from "../../src/errors.js";
import { createMemoryManager } from "../../src/manager/create-memory-manager.js";
import type { MemoryManager } from "../../src/manager/memory-manager.js";
import { DEFAULT_SESSION_CONFIG } from "../../src/manager/session-config.js";
import { Transcript } from "../../src/storage/transcript.js";
import { TokenCounter } from "../../src/tokens/index.js";
import type { ChatMessage, SwisperContext } from "../../src/types.js";
import { recordingLogger } from "../support/fixtures.js";
import {
  createTestDatabase,
  createTestRedis,
  type TestDatabase,
  type TestRedis,
  uniqueName,
} from "../support/servers.js";
import { SESSION_TABLES } from "../support/session-tables.js";

// The manager's whole suite runs in every deployment mode: Redis + PostgreSQL, PostgreSQL alone,
// and the embedded default (PGlite, no Redis).
interface Mode {
  name: string;
  needsRedis: boolean;
  open(): Promise<{
    manager: MemoryManager;
    second: () => Promise<MemoryManager>;
    redisKeys: () => Promise<string[]>;
  }>;
}

let database: TestDatabase;
let testRedis: TestRedis | undefined;
const cleanups: (() => Promise<void>)[] = [];
const counter = new TokenCounter();

beforeAll(async () => {
  database = await createTestDatabase();
  if (inject("redisAvailable")) testRedis = await createTestRedis();
});

afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  await testRedis?.cleanup();
  await database.drop();
});

async function listKeys(prefix: string): Promise<string[]> {
  if (!testRedis) return [];
  return (await testRedis.redis.send(["KEYS", `${prefix}:*`])) as string[];
}

const modes: Mode[] = [
  {
    name: "Redis + PostgreSQL",
    needsRedis: true,
    async open() {
      const options = {
        database: database.db,
        redis: testRedis!.redis,
        keyPrefix: testRedis!.keyPrefix,
        logger: recordingLogger(),
      };
      const manager = await createMemoryManager(options);
      cleanups.push(() => manager.close());
      return {
        manager,
        second: async () => {
          const other = await createMemoryManager(options);
          cleanups.push(() => other.close());
          return other;
        },
        redisKeys: () => listKeys(testRedis!.keyPrefix),
      };
    },
  },
  {
    name: "PostgreSQL only",
    needsRedis: false,
    async open() {
      const options = { database: database.db, redis: false as const, logger: recordingLogger() };
      const manager = await createMemoryManager(options);
      cleanups.push(() => manager.close());
      return { manager, second: () => createMemoryManager(options), redisKeys: async () => [] };
    },
  },
  {
    name: "embedded PGlite",
    needsRedis: false,
    async open() {
      const dataDir = await mkdtemp(join(tmpdir(), "swisper-memory-"));
      const manager = await createMemoryManager({
        env: { MEMORY_DATA_DIR: dataDir },
        logger: recordingLogger(),
      });
      cleanups.push(async () => {
        await manager.close();
        await rm(dataDir, { recursive: true, force: true });
      });
      // A second process cannot share a PGlite folder; a second manager over the same instance stands in.
      return { manager, second: async () => manager.forTenant("default"), redisKeys: async () => [] };
    },
  },
];

for (const mode of modes) {
  describe.skipIf(mode.needsRedis && !inject("redisAvailable"))(`MemoryManager (${mode.name})`, () => {
    let manager: MemoryManager;
    let second: () => Promise<MemoryManager>;
    let redisKeys: () => Promise<string[]>;

    beforeAll(async () => {
      ({ manager, second, redisKeys } = await mode.open());
    });

    it("stores an acknowledged message in the transcript at once (invariant 1)", async () => {
      const session = uniqueName("ack");
      expect(await manager.addMessage(session, { role: "user", content: "I want to buy a laptop" })).toBe(
        true,
      );
      const context = await manager.getContext(session);
      expect(context.buffer_messages.map((m) => m.content)).toEqual(["I want to buy a laptop"]);
      expect(context).toMatchObject({ session_id: session, current_summary: null, message_count: 1 });
      expect(context.total_tokens).toBe(
        counter.countMessageTokens({ role: "user", content: "I want to buy a laptop" }),
      );
    });

    it("keeps token totals exact: equal to a fresh recount (invariant 4)", async () => {
      const session = uniqueName("exact");
      const messages: ChatMessage[] = [
        { role: "system", content: "You are a shopping assistant." },
        { role: "user", content: "Ich suche einen Laptop unter 1500 CHF 🙂", name: "anna" },
        {
          role: "assistant",
          content: null,
          tool_calls: [
            { id: "call_1", type: "function", function: { name: "search", arguments: '{"q":"laptop"}' } },
          ],
        },
        { role: "tool", content: '{"results": ["ThinkPad X1"]}', tool_call_id: "call_1" },
        { role: "user", content: [{ type: "text", text: "What about <|endoftext|> this?" }] },
      ];
      await manager.addMessages(session, messages);
      const context = await manager.getContext(session);
      expect(context.buffer_info.total_tokens).toBe(
        messages.reduce((sum, m) => sum + counter.countMessageTokens(m), 0),
      );
      expect(context.buffer_messages.map((m) => m.tokens)).toEqual(
        messages.map((m) => counter.countMessageTokens(m)),
      );
    });

    it("stores a retried message once (invariant 5)", async () => {
      const session = uniqueName("retry");
      const message: ChatMessage = { role: "user", content: "order #123", id: "msg-123" };
      const results = await Promise.all([1, 2, 3, 4, 5].map(() => manager.addMessages(session, [message])));
      expect(results.flat().filter((r) => !r.duplicate)).toHaveLength(1);
      await manager.addMessages(session, [
        message,
        { role: "assistant", content: "ok", id: "msg-124" },
        message,
      ]);
      const context = await manager.getContext(session);
      expect(context.buffer_messages.map((m) => m.id)).toEqual(["msg-123", "msg-124"]);
    });

    it("erases the session everywhere and nothing comes back (invariant 6)", async () => {
      const session = uniqueName("erase");
      await manager.addMessages(session, [
        { role: "user", content: "secret one" },
        { role: "assistant", content: "secret two" },
      ]);
      await manager.setSessionConfig(session, { max_buffer_messages: 10 });
      await manager.saveContext(session, { session_id: session, current_state: "search" });
      await manager.summaryStore.addSummary(session, "the user shared secrets");
      expect(await manager.clearSessionMemory(session)).toBe(true);

      const context = await manager.getContext(session);
      expect(context.buffer_messages).toEqual([]);
      expect(context.current_summary).toBeNull();
      expect(context.buffer_info.last_seq).toBe(0);
      expect(await manager.loadContext(session)).toBeNull();
      expect(await manager.getSessionConfig(session)).toEqual(DEFAULT_SESSION_CONFIG);
      expect(await manager.summaryStore.getSummaryHistory(session)).toEqual([]);
      // Reads after the erase may leave the session's epoch: a counter without data that fences
      // rebuilds and expires within a minute.
      const left = (await redisKeys()).filter((key) => key.includes(session) && !key.endsWith(":epoch"));
      expect(left).toEqual([]);
      if (mode.name !== "embedded PGlite") {
        for (const table of SESSION_TABLES) {
          const { rows } = await database.db.query<{ n: number }>(
            `SELECT count(*)::int AS n FROM ${table} WHERE session_id = $1`,
            [session],
          );
          expect(rows[0]!.n, table).toBe(0);
        }
      }
      // A new conversation under the same id starts from seq 1.
      await manager.addMessage(session, { role: "user", content: "fresh start" });
      expect((await manager.getContext(session)).buffer_messages.map((m) => [m.seq, m.content])).toEqual([
        [1, "fresh start"],
      ]);
    });

    it("accepts any of the specification's keys that keep its rule: the keys left unset follow", async () => {
      // Before: { summary_trigger_tokens: 400, max_buffer_tokens: 800 } was refused because of
      // keep_recent_tokens' default (1500), a key the caller never set.
      const session = uniqueName("follow");
      expect(
        await manager.setSessionConfig(session, { summary_trigger_tokens: 400, max_buffer_tokens: 800 }),
      ).toMatchObject({ summary_trigger_tokens: 400, max_buffer_tokens: 800, keep_recent_tokens: 200 });
      // A later trigger moves keep_recent_tokens with it: it was never set.
      expect(await manager.setSessionConfig(session, { summary_trigger_tokens: 300 })).toMatchObject({
        summary_trigger_tokens: 300,
        max_buffer_tokens: 800,
        keep_recent_tokens: 150,
      });
      const other = uniqueName("follow");
      expect(await manager.setSessionConfig(other, { summary_trigger_tokens: 6000 })).toMatchObject({
        summary_trigger_tokens: 6000,
        max_buffer_tokens: 8000,
        keep_recent_tokens: 3000,
      });
      expect(await manager.setSessionConfig(uniqueName("follow"), { max_buffer_tokens: 800 })).toMatchObject({
        summary_trigger_tokens: 600,
        max_buffer_tokens: 800,
        keep_recent_tokens: 300,
      });
      // A key that was set stays set: it is checked, not moved.
      await manager.setSessionConfig(other, { keep_recent_tokens: 2000 });
      const error = await manager
        .setSessionConfig(other, { summary_trigger_tokens: 1000 })
        .catch((e: unknown) => e);
      expect((error as ValidationError).field).toBe("config.keep_recent_tokens");
      expect(await manager.getSessionConfig(other)).toMatchObject({ keep_recent_tokens: 2000 });
    });

    it("rejects bad input with a typed error and changes nothing (invariant 8)", async () => {
      const session = uniqueName("bad");
      await manager.addMessage(session, { role: "user", content: "kept" });
      const attempts: [() => Promise<unknown>, string][] = [
        [() => manager.addMessage(session, { role: "user", content: 5 } as never), "message.content"],
        [() => manager.addMessages(session, []), "messages"],
        [() => manager.getContext(session, { max_tokens: 0 }), "max_tokens"],
        [() => manager.getContext(session, { max_tokens: 100, model: "no-such-model" }), "model"],
        [
          () => manager.setSessionConfig(session, { summary_trigger_tokens: 5000, max_buffer_tokens: 4000 }),
          "config.summary_trigger_tokens",
        ],
        [() => manager.setSessionConfig(session, { max_buffer_messages: 0 }), "config.max_buffer_messages"],
        [() => manager.setSessionConfig(session, { max_buffer_tokens: 1.5 }), "config.max_buffer_tokens"],
        [() => manager.setSessionConfig(session, { colour: 3 } as never), "config.colour"],
        [() => manager.saveContext(session, { session_id: "another" }), "context.session_id"],
        [() => manager.saveContext(session, { session_id: session, big: 10n } as never), "context"],
        [() => manager.getContext("\u0000"), "session_id"],
        // Hostile input found by review: each was stored (and one made a 57 MB context).
        [() => manager.getContext("lone \uD800 surrogate"), "session_id"],
        [() => manager.addMessage(session, { role: "user", content: "x", id: "a\uDC00" }), "message.id"],
        [
          () => manager.addMessage(session, { role: "user", content: "x", metadata: nested(5000) }),
          "message.metadata",
        ],
        [
          () =>
            manager.addMessage(session, {
              role: "user",
              content: "x",
              metadata: { blob: "m".repeat(600_000) },
            }),
          "message",
        ],
      ];
      for (const [attempt, field] of attempts) {
        const error = await attempt().catch((e: unknown) => e);
        expect(error, field).toBeInstanceOf(ValidationError);
        expect((error as ValidationError).field).toBe(field);
      }
      const context = await manager.getContext(session);
      expect(context.buffer_messages.map((m) => m.content)).toEqual(["kept"]);
      expect(await manager.getSessionConfig(session)).toEqual(DEFAULT_SESSION_CONFIG);
      expect(await manager.loadContext(session)).toBeNull();
    });

    it("packs a context within a token budget, counted exactly for the model", async () => {
      const session = uniqueName("budget");
      for (let i = 0; i < 12; i++) {
        await manager.addMessage(session, {
          role: i % 2 ? "assistant" : "user",
          content: `turn ${i}: ${"lorem ipsum ".repeat(20)}`,
        });
      }
      await manager.summaryStore.addSummary(session, "The user compares laptops under 1500 CHF.");
      for (const model of ["gpt-4o", "gpt-3.5-turbo"]) {
        const modelCounter = new TokenCounter({ model });
        for (const maxTokens of [30, 200, 500, 100_000]) {
          const context = await manager.getContext(session, { max_tokens: maxTokens, model });
          const packed = context.messages!;
          expect(context.context_tokens).toBeLessThanOrEqual(maxTokens);
          if (packed.length > 0) expect(context.context_tokens).toBe(modelCounter.countBatchTokens(packed));
          if (maxTokens === 100_000) {
            expect(packed[0]).toMatchObject({ role: "system" });
            expect(String(packed[0]!.content)).toContain("laptops under 1500 CHF");
            expect(packed).toHaveLength(1 + context.buffer_messages.length);
          }
          // The newest messages are kept, contiguous, in order.
          const tail = packed.filter((m) => m.role !== "system").map((m) => m.content);
          const buffered = context.buffer_messages.map((m) => m.content);
          expect(buffered.slice(buffered.length - tail.length)).toEqual(tail);
        }
      }
    });

    it("never sends a tool result without the call it answers", async () => {
      const session = uniqueName("tools");
      await manager.addMessages(session, [
        { role: "user", content: "find me a laptop ".repeat(30) },
        {
          role: "assistant",
          content: null,
          tool_calls: [
            { id: "c1", type: "function", function: { name: "search", arguments: "{}".padEnd(400, " ") } },
          ],
        },
        { role: "tool", tool_call_id: "c1", content: "three results" },
        { role: "assistant", content: "Here are three." },
      ]);
      const all = await manager.getContext(session, { max_tokens: 100_000 });
      const lastTwo = all.buffer_messages.slice(-2).reduce((sum, m) => sum + m.tokens, 0);
      const context = await manager.getContext(session, { max_tokens: lastTwo + 3 });
      expect(context.messages!.map((m) => m.role)).toEqual(["assistant"]);
      expect(context.messages![0]!.content).toBe("Here are three.");
    });

    it("round-trips a SwisperContext snapshot, never into the buffer", async () => {
      const session = uniqueName("swisper");
      const swisper: SwisperContext = {
        session_id: session,
        user_id: "u-1",
        current_state: "search",
        product_query: "Laptop für Studium 💻",
        preferences: { brand: ["Lenovo", "Dell"], max_price: 1499.95 },
        constraints: { weight_kg: { max: 1.6 } },
        selected_product: null,
        search_results: [{ sku: "X1", price: 1399 }],
        conversation_history: [{ role: "user", content: "hi" }],
        metadata: { nested: { deep: [1, "two", null, true] } },
        custom_extra_field: "kept",
      };
      expect(await manager.saveContext(session, swisper)).toBe(true);
      expect(await manager.loadContext(session)).toEqual(swisper);
      expect((await manager.getContext(session)).buffer_messages).toEqual([]);
      await manager.saveContext(session, { session_id: session, current_state: "checkout" });
      expect(await manager.loadContext(session)).toEqual({ session_id: session, current_state: "checkout" });
    });

    it("shares config and context between two managers on the same database", async () => {
      const session = uniqueName("shared");
      const other = await second();
      const config = await manager.setSessionConfig(session, {
        summary_trigger_tokens: 2500,
        max_buffer_tokens: 3500,
      });
      expect(config).toEqual({
        ...DEFAULT_SESSION_CONFIG,
        summary_trigger_tokens: 2500,
        max_buffer_tokens: 3500,
        keep_recent_tokens: 1250,
      });
      expect(await other.getSessionConfig(session)).toEqual(config);
      await other.addMessage(session, { role: "user", content: "from the other process" });
      await manager.addMessage(session, { role: "assistant", content: "seen" });
      const [a, b] = await Promise.all([manager.getContext(session), other.getContext(session)]);
      expect(a.buffer_messages).toEqual(b.buffer_messages);
      expect(a.buffer_info.max_tokens).toBe(3500);
      expect(b.buffer_info.summary_trigger_tokens).toBe(2500);
    });

    it("applies a lowered cap to a session that already has a buffer", async () => {
      const session = uniqueName("recap");
      for (let i = 0; i < 8; i++) await manager.addMessage(session, { role: "user", content: `m${i}` });
      await manager.setSessionConfig(session, { max_buffer_messages: 3 });
      expect((await manager.getContext(session)).buffer_messages.map((m) => m.content)).toEqual([
        "m5",
        "m6",
        "m7",
      ]);
      await manager.addMessage(session, { role: "user", content: "m8" });
      expect((await manager.getContext(session)).buffer_messages.map((m) => m.content)).toEqual([
        "m6",
        "m7",
        "m8",
      ]);
    });

    it("reports memory stats with buffer, summary, Redis and config", async () => {
      const session = uniqueName("stats");
      await manager.addMessage(session, { role: "user", content: "hello" });
      await manager.summaryStore.addSummary(session, "greeting", { note: "imported" });
      const stats = await manager.getMemoryStats(session);
      expect(stats.buffer.message_count).toBe(1);
      expect(stats.summary).toMatchObject({ summary_count: 1, current_version: 1, covered_seq: 0 });
      expect(stats.session_config).toEqual(DEFAULT_SESSION_CONFIG);
      expect(stats.available).toBe(true);
      expect(stats.redis.available).toBe(mode.needsRedis);
      if (mode.needsRedis) expect(stats.redis.used_memory).toBeGreaterThan(0);
      expect(stats.token_cache.hits + stats.token_cache.misses).toBeGreaterThan(0);
      const history = await manager.summaryStore.getSummaryHistory(session);
      expect(history[0]).toMatchObject({ version: 1, summary_text: "greeting", first_seq: 1, last_seq: 0 });
      expect(history[0]!.metadata).toMatchObject({ note: "imported" });
    });

    it("keeps tenants apart", async () => {
      const session = uniqueName("tenant");
      const tenantB = manager.forTenant("tenant-b");
      await manager.addMessage(session, { role: "user", content: "tenant A's secret" });
      expect((await tenantB.getContext(session)).buffer_messages).toEqual([]);
      await tenantB.addMessage(session, { role: "user", content: "tenant B's note" });
      expect((await manager.getContext(session)).buffer_messages.map((m) => m.content)).toEqual([
        "tenant A's secret",
      ]);
      await tenantB.clearSessionMemory(session);
      expect((await manager.getContext(session)).buffer_messages).toHaveLength(1);
      expect(() => manager.forTenant("bad tenant!")).toThrow(ValidationError);
    });

    it("is available", () => {
      expect(manager.isAvailable()).toBe(true);
    });
  });
}

/** Metadata nested `depth` levels deep: { a: { a: ... } }. */
function nested(depth: number): Record<string, unknown> {
  let value: Record<string, unknown> = {};
  for (let level = 1; level < depth; level++) value = { a: value };
  return value;
}

describe.skipIf(!inject("redisAvailable"))("MemoryManager under concurrent writers", () => {
  it("four managers appending to one session lose nothing and agree on the buffer", async () => {
    const options = {
      database: database.db,
      redis: testRedis!.redis,
      keyPrefix: testRedis!.keyPrefix,
      logger: recordingLogger(),
    };
    const managers = await Promise.all([1, 2, 3, 4].map(() => createMemoryManager(options)));
    const session = uniqueName("concurrent");
    const perWriter = 100;
    await Promise.all(
      managers.map(async (writer, w) => {
        for (let i = 0; i < perWriter; i++)
          await writer.addMessage(session, { role: "user", content: `w${w} m${i}` });
      }),
    );
    const transcript = await new Transcript(database.db).readAfter(
      { tenant: "default", sessionId: session },
      0,
      10_000,
    );
    expect(transcript.map((m) => m.seq)).toEqual(Array.from({ length: 4 * perWriter }, (_, i) => i + 1));
    expect(new Set(transcript.map((m) => m.content)).size).toBe(4 * perWriter);
    const contexts = await Promise.all(managers.map((m) => m.getContext(session)));
    const sqlOnly = await createMemoryManager({ database: database.db, redis: false });
    const expected = await sqlOnly.getContext(session);
    for (const context of contexts) {
      expect(context.buffer_messages).toEqual(expected.buffer_messages);
      expect(context.buffer_info.total_tokens).toBe(expected.buffer_info.total_tokens);
    }
    expect(expected.buffer_messages.map((m) => m.seq)).toEqual(
      Array.from({ length: 30 }, (_, i) => 4 * perWriter - 29 + i),
    );
    await Promise.all([...managers, sqlOnly].map((m) => m.close()));
  });

  it("buffers the stored copy of a retried id, not the retry's, when the retry reaches Redis first", async () => {
    const withRedis = await createMemoryManager({
      database: database.db,
      redis: testRedis!.redis,
      keyPrefix: testRedis!.keyPrefix,
      logger: recordingLogger(),
    });
    // Another instance whose write is committed but not in Redis yet (here it never gets there).
    const first = await createMemoryManager({
      database: database.db,
      redis: false,
      logger: recordingLogger(),
    });
    const session = uniqueName("retried");
    await withRedis.addMessage(session, { role: "user", content: "before" });
    await first.addMessage(session, { id: "m-2", role: "user", content: "hello", timestamp: 1_000 });
    // The retry: the same id, its timestamp filled in by this instance (not 1000).
    const [retry] = await withRedis.addMessages(session, [{ id: "m-2", role: "user", content: "hello" }]);
    expect(retry).toEqual({ seq: 2, duplicate: true });
    const served = await withRedis.getContext(session);
    expect(served.buffer_info.source).toBe("redis");
    expect(served.buffer_messages).toEqual((await first.getContext(session)).buffer_messages);
    expect(served.buffer_messages.map((m) => m.timestamp)).toContain(1_000);
    await Promise.all([withRedis, first].map((m) => m.close()));
  });
});
