import { describe, expect, it } from "vitest";
import { sessionKeys } from "../../../src/buffer/keys.js";
import { UnexpectedReplyError } from "../../../src/errors.js";
import type { RedisConnection } from "../../../src/storage/redis-client.js";
import { acquireLease } from "../../../src/summary/lua/acquire-lease.js";
import { extendLease } from "../../../src/summary/lua/extend-lease.js";
import { releaseLease } from "../../../src/summary/lua/release-lease.js";
import { answeringRedis } from "../../support/answering-redis.js";

// Unit tests of the lease wrappers' reply parsers, without a server (the summarization suites
// run the scripts against Redis).

const keys = sessionKeys("t", { tenant: "acme", sessionId: "s1" });
type Call = (redis: RedisConnection) => Promise<unknown>;
const acquire: Call = (redis) =>
  acquireLease(redis, keys, { holderId: "h1", leaseMs: 30_000, floor: 4, counterTtlSeconds: 60 });
const extend: Call = (redis) => extendLease(redis, keys, "5:h1", 30_000);
const release: Call = (redis) => releaseLease(redis, keys, "5:h1");

describe("lease script replies", () => {
  it.each([
    ["acquire-lease-2.lua", [5, 0], acquire, { status: "acquired", token: 5 }],
    ["acquire-lease-2.lua", [0, 1200], acquire, { status: "held", remainingMs: 1200 }],
    ["extend-lease-1.lua", 1, extend, true],
    ["extend-lease-1.lua", 0, extend, false],
    ["release-lease-1.lua", 1, release, true],
  ])("%s answers %j", async (_script, reply, call, expected) => {
    expect(await call(answeringRedis(reply))).toEqual(expected);
  });

  it.each([
    ["acquire-lease-2.lua", [5], acquire, "the reply has 1 item, not 2"],
    ["acquire-lease-2.lua", ["5", 0], acquire, "token is a string, not an integer"],
    ["acquire-lease-2.lua", [0, null], acquire, "remaining ms is null, not an integer"],
    ["extend-lease-1.lua", "OK", extend, "the reply is a string, not 1 or 0"],
    ["release-lease-1.lua", 2, release, "the reply is an integer, not 1 or 0"],
  ])("%s refuses %j", async (script, reply, call, problem) => {
    const error = await call(answeringRedis(reply)).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(UnexpectedReplyError);
    expect(error).toMatchObject({ source: script, reply });
    expect((error as Error).message).toBe(`Redis answered ${script} with an unexpected reply: ${problem}`);
  });

  it("sends acquire-lease-2.lua the lease and fence keys, holder, lease time, floor and counter TTL", async () => {
    const redis = answeringRedis([5, 0]);
    await acquire(redis);
    expect(redis.sent[0]!.slice(2)).toEqual(["2", keys.lease, keys.fence, "h1", "30000", "4", "60"]);
  });
});
