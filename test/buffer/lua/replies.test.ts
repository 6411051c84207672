import { describe, expect, it } from "vitest";
import { sessionKeys } from "../../../src/buffer/keys.js";
import { appendToBuffer } from "../../../src/buffer/lua/append.js";
import { invalidateSession } from "../../../src/buffer/lua/invalidate.js";
import { ackOutbox } from "../../../src/buffer/lua/outbox-ack.js";
import { appendWithOutbox } from "../../../src/buffer/lua/outbox-append.js";
import { publishSummaryAndTrim } from "../../../src/buffer/lua/publish-summary.js";
import { readBuffer } from "../../../src/buffer/lua/read.js";
import { rebuildBuffer } from "../../../src/buffer/lua/rebuild.js";
import { readOutbox } from "../../../src/buffer/outbox.js";
import { UnexpectedReplyError } from "../../../src/errors.js";
import type { RedisConnection } from "../../../src/storage/redis-client.js";
import { answeringRedis } from "../../support/answering-redis.js";

// Each wrapper reads its script's reply into a named object and refuses any other shape with an
// error naming the script: unit tests without a server (the real-Redis suites run the scripts).

const keys = sessionKeys("t", { tenant: "acme", sessionId: "s1" });
const defaults = { maxMessages: 50, maxTokens: 4000, summaryTriggerTokens: 3000, ttlSeconds: 3600 };
const summary = {
  version: 2,
  summary_text: "so far",
  first_seq: 1,
  last_seq: 4,
  tokens: 3,
  created_at: "2024-01-01T00:00:00.000Z",
  metadata: {},
};
const totals = ["ok", 2, 30, 3, 4, 3000, 2, 50];
const parsedTotals = {
  messageCount: 2,
  totalTokens: 30,
  firstSeq: 3,
  lastSeq: 4,
  summaryTriggerTokens: 3000,
  coveredSeq: 2,
  maxMessages: 50,
};

type Call = (redis: RedisConnection) => Promise<unknown>;
const append: Call = (redis) =>
  appendToBuffer(redis, keys, { now: 1, defaults, generation: "g1", entries: ['5:3:0:{"role":"user"}'] });
const read: Call = (redis) => readBuffer(redis, keys, "all");
const rebuild: Call = (redis) =>
  rebuildBuffer(redis, keys, {
    epoch: "7",
    lastUpdatedMs: 1,
    ttlSeconds: 60,
    lastSeq: 4,
    coveredSeq: 0,
    generation: "g1",
    configOverrides: {},
    entries: [],
  });
const publish: Call = (redis) =>
  publishSummaryAndTrim(redis, keys, { summary, generation: "g1", cacheTtlSeconds: 60 });
const outboxAppend: Call = (redis) => appendWithOutbox(redis, keys, { now: 1, defaults, writes: [] });
const outboxAck: Call = (redis) => ackOutbox(redis, keys, ["1-0"]);
const invalidate: Call = (redis) => invalidateSession(redis, keys, "buffer");
const outbox: Call = (redis) => readOutbox(redis, keys.outbox, 10);

describe("buffer script replies", () => {
  it.each([
    ["append-5.lua", totals, append, { status: "ok", totals: parsedTotals }],
    ["append-5.lua", ["miss", "1700000000123456"], append, { status: "miss", epoch: "1700000000123456" }],
    ["append-5.lua", ["outbox"], append, { status: "outbox" }],
    [
      "read-5.lua",
      ["ok", ["last_seq", "4"], [], ["version", "2"], ["3:5:0:{}"], 3599000],
      read,
      {
        status: "ok",
        meta: { last_seq: "4" },
        config: {},
        summary: { version: "2" },
        entries: ["3:5:0:{}"],
        pttlMs: 3599000,
      },
    ],
    ["read-5.lua", ["miss", "8"], read, { status: "miss", epoch: "8" }],
    ["rebuild-6.lua", ["fenced"], rebuild, "fenced"],
    ["publish-summary-4.lua", ["published", 3], publish, { status: "published", trimmed: 3 }],
    ["publish-summary-4.lua", ["stale", 0], publish, { status: "stale" }],
    ["outbox-append-4.lua", totals, outboxAppend, { status: "ok", totals: parsedTotals }],
    ["outbox-append-4.lua", ["missing"], outboxAppend, { status: "missing" }],
    ["outbox-ack-4.lua", 0, outboxAck, 0],
    ["invalidate-8.lua", 12, invalidate, 12],
  ])("%s answers %j", async (_script, reply, call, expected) => {
    expect(await call(answeringRedis(reply))).toEqual(expected);
  });

  it.each([
    ["append-5.lua", ["ok", 2, "30", 3, 4, 3000, 2, 50], append, "total_tokens is a string, not an integer"],
    ["append-5.lua", ["ok", 2], append, 'a "ok" reply has 2 items, not 8'],
    ["append-5.lua", ["gone"], append, 'its status is "gone", not one of ok, miss, outbox'],
    ["read-5.lua", ["ok", ["last_seq"], [], [], [], -1], read, "meta has an odd number of items"],
    ["read-5.lua", ["ok", [], [], [], [7], -1], read, "entries[0] is an integer, not a string"],
    ["read-5.lua", ["miss", 8], read, "epoch is an integer, not a string"],
    ["rebuild-6.lua", "rebuilt", rebuild, "the reply is a string, not an array"],
    ["publish-summary-4.lua", ["published", 1.5], publish, "trimmed is the number 1.5, not an integer"],
    ["outbox-append-4.lua", ["miss", "1"], outboxAppend, 'its status is "miss", not one of ok, missing'],
    ["outbox-ack-4.lua", "0", outboxAck, "pending is a string, not an integer"],
    ["invalidate-8.lua", null, invalidate, "epoch is null, not an integer"],
  ])("%s refuses %j", async (script, reply, call, problem) => {
    const error = await call(answeringRedis(reply)).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(UnexpectedReplyError);
    expect(error).toMatchObject({ source: script, reply, code: "unexpected_reply" });
    expect((error as Error).message).toBe(`Redis answered ${script} with an unexpected reply: ${problem}`);
  });

  it("sends each script its keys and arguments in the order its header lists", async () => {
    const redis = answeringRedis(totals);
    await append(redis);
    const [command, , keyCount, ...rest] = redis.sent[0]!;
    expect([command, keyCount]).toEqual(["EVALSHA", "5"]);
    expect(rest).toEqual([
      keys.buffer,
      keys.meta,
      keys.config,
      keys.outbox,
      keys.epoch,
      "1",
      "3600",
      "50",
      "4000",
      "3000",
      "g1",
      '5:3:0:{"role":"user"}',
    ]);
  });
});

describe("outbox stream (XRANGE)", () => {
  it("reads each entry's id, transcript entry and generation", async () => {
    const json = JSON.stringify({ role: "user", content: "hi" });
    const records = await outbox(
      answeringRedis([
        ["1-0", ["entry", `4:1:${json}`, "key", "k1", "gen", "g1"]],
        ["2-0", ["entry", `5:0:${json}`, "key", "k2"]],
      ]),
    );
    expect(records).toEqual([
      {
        id: "1-0",
        entry: { message: JSON.parse(json), json, tokens: 4, tokensEstimated: true, idempotencyKey: "k1" },
        generation: "g1",
      },
      {
        id: "2-0",
        entry: { message: JSON.parse(json), json, tokens: 5, tokensEstimated: false, idempotencyKey: "k2" },
        generation: null,
      },
    ]);
  });

  it.each([
    [[["1-0"]], "entry 0 has 1 item, not 2"],
    [[["1-0", ["key", "k1"]]], "the field entry is undefined, not a string"],
    [{ "1-0": [] }, "the reply is an object, not an array"],
  ])("refuses %j", async (reply, problem) => {
    const error = await outbox(answeringRedis(reply)).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(UnexpectedReplyError);
    expect((error as Error).message).toBe(`Redis answered XRANGE with an unexpected reply: ${problem}`);
  });
});
