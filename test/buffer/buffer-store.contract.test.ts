import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import type { BufferStore } from "../../src/buffer/buffer-store.js";
import type { RedisBufferStore } from "../../src/buffer/redis-buffer-store.js";
import { ValidationError } from "../../src/errors.js";
import { Transcript } from "../../src/storage/transcript.js";
import { TokenCounter } from "../../src/tokens/index.js";
import { randomMessage, redisStore, seededRandom, sqlStore } from "../support/fixtures.js";
import {
  createTestDatabase,
  createTestRedis,
  type TestDatabase,
  type TestRedis,
  uniqueName,
} from "../support/servers.js";

// One contract, run against every buffer store: the Redis store must answer exactly what the SQL
// store answers from the transcript alone.
const caps = { maxMessages: 6, maxTokens: 400, summaryTriggerTokens: 300 };
const counter = new TokenCounter();

let database: TestDatabase;
let testRedis: TestRedis | undefined;

beforeAll(async () => {
  database = await createTestDatabase();
  if (inject("redisAvailable")) testRedis = await createTestRedis();
});

afterAll(async () => {
  await testRedis?.cleanup();
  await database.drop();
});

const backends: { name: string; needsRedis: boolean; make: () => BufferStore }[] = [
  {
    name: "RedisBufferStore",
    needsRedis: true,
    make: () => redisStore(database.db, testRedis!.redis, testRedis!.keyPrefix, caps),
  },
  { name: "SqlBufferStore", needsRedis: false, make: () => sqlStore(database.db, caps) },
];

for (const backend of backends) {
  describe.skipIf(backend.needsRedis && !inject("redisAvailable"))(`${backend.name} contract`, () => {
    let store: BufferStore;
    beforeAll(() => {
      store = backend.make();
    });

    it("assigns seqs in order and counts each message exactly", async () => {
      const session = uniqueName("seq");
      const messages = [
        { role: "user" as const, content: "I want to buy a laptop" },
        { role: "assistant" as const, content: "What is your budget?", name: "shop_bot" },
        { role: "user" as const, content: "Under 1500 CHF" },
      ];
      for (const message of messages) expect(await store.addMessage(session, message)).toBe(true);
      const stored = await store.getMessages(session);
      expect(stored.map((m) => m.seq)).toEqual([1, 2, 3]);
      expect(stored.map((m) => m.content)).toEqual(messages.map((m) => m.content));
      expect(stored[1]!.name).toBe("shop_bot");
      for (const [index, message] of messages.entries()) {
        expect(stored[index]!.tokens).toBe(counter.countMessageTokens(message));
        expect(typeof stored[index]!.timestamp).toBe("number");
      }
      const info = await store.getBufferInfo(session);
      expect(info).toMatchObject({
        message_count: 3,
        total_tokens: stored.reduce((sum, m) => sum + m.tokens, 0),
        first_seq: 1,
        last_seq: 3,
        max_messages: caps.maxMessages,
        max_tokens: caps.maxTokens,
        summary_trigger_tokens: caps.summaryTriggerTokens,
        estimated_messages: 0,
        source: store.source,
      });
      expect(info.last_updated).not.toBeNull();
    });

    it("returns the newest `limit` messages, oldest first", async () => {
      const session = uniqueName("limit");
      for (let i = 1; i <= 5; i++) await store.addMessage(session, { role: "user", content: `m${i}` });
      expect((await store.getMessages(session, 2)).map((m) => m.content)).toEqual(["m4", "m5"]);
      expect(await store.getMessages(session, 0)).toEqual([]);
      expect((await store.getMessages(session, 50)).length).toBe(5);
      // The info describes the whole buffer, whatever the limit.
      const totals = async (limit?: number) => {
        const { message_count, total_tokens, first_seq, last_seq, estimated_messages } = (
          await store.getBuffer(session, limit)
        ).info;
        return { message_count, total_tokens, first_seq, last_seq, estimated_messages };
      };
      const whole = await totals();
      expect(whole).toMatchObject({ message_count: 5, first_seq: 1, last_seq: 5 });
      expect(await totals(2)).toEqual(whole);
      expect(await totals(0)).toEqual(whole);
      await expect(store.getMessages(session, -1)).rejects.toBeInstanceOf(ValidationError);
    });

    it("pushes the oldest messages out at the message cap, keeping them in the transcript", async () => {
      const session = uniqueName("cap_messages");
      for (let i = 1; i <= 9; i++) await store.addMessage(session, { role: "user", content: `message ${i}` });
      const buffered = await store.getMessages(session);
      expect(buffered.map((m) => m.seq)).toEqual([4, 5, 6, 7, 8, 9]);
      const transcript = await new Transcript(database.db).readAfter(
        { tenant: "default", sessionId: session },
        0,
      );
      expect(transcript.map((m) => m.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    });

    it("pushes the oldest messages out at the token cap but always keeps the newest", async () => {
      const session = uniqueName("cap_tokens");
      const long = "word ".repeat(150); // ~150 tokens
      for (let i = 0; i < 4; i++) await store.addMessage(session, { role: "user", content: long });
      const info = await store.getBufferInfo(session);
      expect(info.total_tokens).toBeLessThanOrEqual(caps.maxTokens);
      expect(info.message_count).toBe(2);
      const huge = "word ".repeat(1000);
      await store.addMessage(session, { role: "assistant", content: huge });
      const after = await store.getMessages(session);
      expect(after.map((m) => m.seq)).toEqual([5]);
      expect((await store.getBufferInfo(session)).total_tokens).toBe(
        counter.countMessageTokens({ role: "assistant", content: huge }),
      );
    });

    it("triggers summarization at the threshold", async () => {
      const session = uniqueName("trigger");
      await store.addMessage(session, { role: "user", content: "word ".repeat(100) });
      const tokens = (await store.getBufferInfo(session)).total_tokens;
      expect(await store.shouldTriggerSummary(session, tokens)).toBe(true);
      expect(await store.shouldTriggerSummary(session, tokens + 1)).toBe(false);
      expect(await store.shouldTriggerSummary(uniqueName("empty"))).toBe(false);
    });

    it("stores a message with an idempotency key once, however often it is retried", async () => {
      const session = uniqueName("idempotent");
      const message = { role: "user" as const, content: "pay the invoice", id: "client-msg-1" };
      const results = await Promise.all(
        Array.from({ length: 8 }, () => store.addMessages(session, [message])),
      );
      expect(new Set(results.map((r) => r.seqs[0]!.seq))).toEqual(new Set([1]));
      expect(results.filter((r) => !r.seqs[0]!.duplicate)).toHaveLength(1);
      await store.addMessage(session, { role: "user", content: "next" });
      expect((await store.getMessages(session)).map((m) => m.seq)).toEqual([1, 2]);
    });

    it("clearBuffer empties the buffer and keeps the transcript", async () => {
      const session = uniqueName("clear");
      for (let i = 1; i <= 3; i++) await store.addMessage(session, { role: "user", content: `m${i}` });
      expect(await store.clearBuffer(session)).toBe(true);
      expect(await store.getMessages(session)).toEqual([]);
      expect((await store.getBufferInfo(session)).message_count).toBe(0);
      await store.addMessage(session, { role: "user", content: "after" });
      expect((await store.getMessages(session)).map((m) => [m.seq, m.content])).toEqual([[4, "after"]]);
      const transcript = await new Transcript(database.db).readAfter(
        { tenant: "default", sessionId: session },
        0,
      );
      expect(transcript).toHaveLength(4);
    });

    it("rejects bad input with a typed error naming the field, and stores nothing", async () => {
      const session = uniqueName("invalid");
      const bad: [unknown, string][] = [
        [{ role: "robot", content: "x" }, "message.role"],
        [{ role: "user", content: 42 }, "message.content"],
        [{ role: "user", content: "x", extra: 1 }, "message.extra"],
        [{ role: "user", content: "x".repeat(64 * 1024 + 1) }, "message.content"],
        [{ role: "user", content: null }, "message.content"],
        [{ role: "tool", content: "result" }, "message.tool_call_id"],
        [{ role: "user", content: "x", timestamp: -1 }, "message.timestamp"],
        [{ role: "user", content: [{ type: "text" }] }, "message.content[0].text"],
        [null, "message"],
      ];
      for (const [message, field] of bad) {
        const error = await store.addMessage(session, message as never).catch((e: unknown) => e);
        expect(error, field).toBeInstanceOf(ValidationError);
        expect((error as ValidationError).field).toBe(field);
      }
      for (const sessionId of ["", "x".repeat(257), "tab\there"]) {
        const error = await store
          .addMessage(sessionId, { role: "user", content: "x" })
          .catch((e: unknown) => e);
        expect((error as ValidationError).field).toBe("session_id");
      }
      // A batch with one bad message stores none of it.
      const batch = await store
        .addMessages(session, [
          { role: "user", content: "fine" },
          { role: "nobody", content: "bad" } as never,
        ])
        .catch((e: unknown) => e);
      expect((batch as ValidationError).field).toBe("messages[1].role");
      expect(await store.getMessages(session)).toEqual([]);
      expect((await store.getBufferInfo(session)).last_seq).toBe(0);
    });

    it("keeps totals equal to an exact recount over thousands of random operations", async () => {
      const session = uniqueName("random");
      const random = seededRandom(20261124);
      for (let step = 0; step < 1500; step++) {
        const roll = random();
        if (roll < 0.8) {
          await store.addMessage(session, randomMessage(random, 1 + Math.floor(random() * 60)));
        } else if (roll < 0.95) {
          const batch = Array.from({ length: 1 + Math.floor(random() * 4) }, () => randomMessage(random, 5));
          await store.addMessages(session, batch);
        } else {
          await store.clearBuffer(session);
        }
        if (step % 25 === 0 || step === 1499) {
          const messages = await store.getMessages(session);
          const info = await store.getBufferInfo(session);
          expect(info.message_count).toBe(messages.length);
          expect(info.total_tokens).toBe(messages.reduce((sum, m) => sum + counter.countMessageTokens(m), 0));
          expect(info.message_count).toBeLessThanOrEqual(caps.maxMessages);
          expect(info.total_tokens <= caps.maxTokens || info.message_count === 1).toBe(true);
        }
      }
    });
  });
}

describe.skipIf(!inject("redisAvailable"))("RedisBufferStore recovery", () => {
  it("rebuilds a lost buffer from the transcript, equal to the SQL view", async () => {
    const store = redisStore(database.db, testRedis!.redis, testRedis!.keyPrefix, caps) as RedisBufferStore;
    const sql = sqlStore(database.db, caps);
    const session = uniqueName("lost");
    for (let i = 1; i <= 8; i++) await store.addMessage(session, { role: "user", content: `m${i}` });
    const before = await store.getMessages(session);
    const keys = store.keys({ tenant: "default", sessionId: session });
    await testRedis!.redis.send(["DEL", keys.buffer, keys.meta, keys.config]);
    expect(await store.getMessages(session)).toEqual(before);
    expect(await sql.getMessages(session)).toEqual(before);
    expect((await store.getBufferInfo(session)).total_tokens).toBe(
      (await sql.getBufferInfo(session)).total_tokens,
    );
  });

  it("detects a seq gap (a write Redis missed) and rebuilds with the missed message", async () => {
    const store = redisStore(database.db, testRedis!.redis, testRedis!.keyPrefix, caps);
    const session = uniqueName("gap");
    const ref = { tenant: "default", sessionId: session };
    await store.addMessage(session, { role: "user", content: "one" });
    // A write that reached the transcript but not Redis (as when Redis is down mid-write).
    await new Transcript(database.db).append(ref, store.prepare([{ role: "user", content: "two" }]));
    await store.addMessage(session, { role: "user", content: "three" });
    expect((await store.getMessages(session)).map((m) => m.content)).toEqual(["one", "two", "three"]);
    expect((await store.getBufferInfo(session)).last_seq).toBe(3);
  });

  it("agrees with the SQL store after every step of a random workload with key losses", async () => {
    const store = redisStore(database.db, testRedis!.redis, testRedis!.keyPrefix, caps) as RedisBufferStore;
    const sql = sqlStore(database.db, caps);
    const session = uniqueName("agree");
    const keys = store.keys({ tenant: "default", sessionId: session });
    const random = seededRandom(7);
    for (let step = 0; step < 300; step++) {
      const roll = random();
      if (roll < 0.85) await store.addMessage(session, randomMessage(random, 1 + Math.floor(random() * 80)));
      else if (roll < 0.92) await testRedis!.redis.send(["DEL", keys.meta]);
      else if (roll < 0.97) await testRedis!.redis.send(["DEL", keys.buffer, keys.meta]);
      else await store.clearBuffer(session);
      const [fromRedis, fromSql] = await Promise.all([
        store.readState({ tenant: "default", sessionId: session }),
        sql.readState({ tenant: "default", sessionId: session }),
      ]);
      expect(fromRedis.messages).toEqual(fromSql.messages);
      expect(fromRedis.info.total_tokens).toBe(fromSql.info.total_tokens);
      expect(fromRedis.info.last_seq).toBe(fromSql.info.last_seq);
    }
  });
});
