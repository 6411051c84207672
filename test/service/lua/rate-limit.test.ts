import { expect, it } from "vitest";
import { UnexpectedReplyError } from "../../../src/errors.js";
import { addToRateWindow } from "../../../src/service/lua/rate-limit.js";
import { answeringRedis } from "../../support/answering-redis.js";

// Unit tests of the rate-limit wrapper's reply parser, without a server (limits.test.ts runs the
// script against Redis).

const add = (reply: unknown) =>
  addToRateWindow(answeringRedis(reply), "t:ratelimit:{k}", { windowMs: 1000, added: 3 });

it("reads rate-limit-1.lua's count and time to live", async () => {
  const redis = answeringRedis([7, 950]);
  expect(await addToRateWindow(redis, "t:ratelimit:{k}", { windowMs: 1000, added: 3 })).toEqual({
    count: 7,
    ttlMs: 950,
  });
  expect(redis.sent[0]!.slice(2)).toEqual(["1", "t:ratelimit:{k}", "1000", "3"]);
});

it.each([
  [[7], "the reply has 1 item, not 2"],
  [["7", 950], "count is a string, not an integer"],
  [[7, "950"], "ttl is a string, not an integer"],
])("refuses %j, naming rate-limit-1.lua", async (reply, problem) => {
  const error = await add(reply).catch((caught: unknown) => caught);
  expect(error).toBeInstanceOf(UnexpectedReplyError);
  expect(error).toMatchObject({ source: "rate-limit-1.lua", reply });
  expect((error as Error).message).toBe(
    `Redis answered rate-limit-1.lua with an unexpected reply: ${problem}`,
  );
});
