import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { ApiKeyring } from "../../src/service/index.js";
import { connectRedis } from "../../src/storage/redis-client.js";
import { RedisServerProcess } from "../support/processes.js";
import {
  createTestDatabase,
  createTestRedis,
  describeWithRedis,
  type TestDatabase,
  type TestRedis,
} from "../support/servers.js";
import { call, expectErrorShape, openTestService, type TestService } from "./harness.js";

const KEY_A = "limits-key-tenant-a-0123456789";
const KEY_B = "limits-key-tenant-b-0123456789";
const keys = () =>
  ApiKeyring.fromPairs([
    { tenant: "tenant-a", key: KEY_A },
    { tenant: "tenant-b", key: KEY_B },
  ]);

let database: TestDatabase;
let testRedis: TestRedis | undefined;
const services: TestService[] = [];

beforeAll(async () => {
  database = await createTestDatabase();
  if (inject("redisAvailable")) testRedis = await createTestRedis();
});

afterAll(async () => {
  for (const service of services) await service.close();
  await testRedis?.cleanup();
  await database.drop();
});

async function open(...args: Parameters<typeof openTestService>): Promise<TestService> {
  const service = await openTestService(...args);
  services.push(service);
  return service;
}

describe("body size limit", () => {
  it("answers a body over the limit with 413 in the error shape, and stores nothing", async () => {
    const service = await open(database, undefined, { bodyLimitBytes: 2048 });
    const big = await call(service.app, "POST", "/v1/sessions/big/messages", {
      body: { role: "user", content: "x".repeat(4096) },
    });
    expect(big.statusCode).toBe(413);
    const answer = big.json();
    expectErrorShape(answer);
    expect(answer.error.code).toBe("payload_too_large");
    expect((await call(service.app, "GET", "/v1/sessions/big/context")).statusCode).toBe(404);
    const small = await call(service.app, "POST", "/v1/sessions/big/messages", {
      body: { role: "user", content: "x".repeat(512) },
    });
    expect(small.statusCode).toBe(201);
  });

  it("answers content over the library's limit with 400 naming the field", async () => {
    const service = await open(database, undefined, {}, { maxContentBytes: 1024 });
    const response = await call(service.app, "POST", "/v1/sessions/content/messages", {
      body: { role: "user", content: "x".repeat(2000) },
    });
    expect(response.statusCode).toBe(400);
    expect(response.json()).toMatchObject({ error: { code: "invalid_input", field: "message.content" } });
  });
});

describe("rate limit, counted in this process (no Redis)", () => {
  it("answers the request over the per-key limit with 429, Retry-After and the error shape", async () => {
    const service = await open(database, undefined, { apiKeys: keys(), rateLimitPerMinute: 3 });
    const headers = { authorization: `Bearer ${KEY_A}` };
    for (let i = 0; i < 3; i++) {
      const response = await call(service.app, "GET", "/v1/sessions/s/config", { headers });
      expect(response.statusCode).toBe(404);
      expect(response.headers["x-ratelimit-limit"]).toBe("3");
    }
    const limited = await call(service.app, "GET", "/v1/sessions/s/config", { headers });
    expect(limited.statusCode).toBe(429);
    expect(Number(limited.headers["retry-after"])).toBeGreaterThan(0);
    const answer = limited.json();
    expectErrorShape(answer);
    expect(answer.error.code).toBe("rate_limited");
    // Another key has its own budget; operations routes are not limited.
    const other = await call(service.app, "GET", "/v1/sessions/s/config", {
      headers: { authorization: `Bearer ${KEY_B}` },
    });
    expect(other.statusCode).toBe(404);
    expect((await call(service.app, "GET", "/health")).statusCode).toBe(200);
  });

  it("is off with 0", async () => {
    const service = await open(database, undefined, { rateLimitPerMinute: 0 });
    for (let i = 0; i < 5; i++) {
      const response = await call(service.app, "GET", "/v1/sessions/s/config");
      expect(response.statusCode).toBe(404);
      expect(response.headers["x-ratelimit-limit"]).toBeUndefined();
    }
  });
});

/** Waits until the instances' counts have been added to Redis (they sync every 100 ms). */
async function sharedCount(redis: TestRedis, expected: number): Promise<string[]> {
  const deadline = Date.now() + 5_000;
  for (;;) {
    // Right after a restart the test's own client may still be reconnecting: ask again.
    const read = async () => {
      const keys = (await redis.redis.send(["KEYS", `${redis.keyPrefix}:ratelimit:*`])) as string[];
      return { keys, counts: await Promise.all(keys.map((key) => redis.redis.send(["GET", key]))) };
    };
    const { keys, counts } = await read().catch(() => ({ keys: [], counts: [] as unknown[] }));
    if (counts.map(Number).reduce((sum, count) => sum + count, 0) === expected) return keys;
    if (Date.now() > deadline) throw new Error(`Redis counts ${counts.join(",")}, expected ${expected}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describeWithRedis("rate limit, counted in Redis", () => {
  it("is shared by every instance of the service once their counts are synced", async () => {
    const first = await open(database, testRedis, { apiKeys: keys(), rateLimitPerMinute: 4 });
    const second = await open(database, testRedis, { apiKeys: keys(), rateLimitPerMinute: 4 });
    const headers = { authorization: `Bearer ${KEY_A}` };
    const status = async (service: TestService) =>
      (await call(service.app, "GET", "/v1/sessions/s/config", { headers })).statusCode;
    // No round trip on the request path: each instance counts its own requests...
    expect([await status(first), await status(second), await status(first), await status(second)]).toEqual([
      404, 404, 404, 404,
    ]);
    // ...and adds them to one window in Redis, which tells each instance about the other's.
    const keysInRedis = await sharedCount(testRedis!, 4);
    expect(keysInRedis).toHaveLength(1);
    const ttl = Number(await testRedis!.redis.send(["PTTL", keysInRedis[0]!]));
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(60_000);
    await new Promise((resolve) => setTimeout(resolve, 250)); // both have read the total back
    expect([await status(first), await status(second)]).toEqual([429, 429]);
  });
});

describeWithRedis("rate limit while Redis is away", () => {
  it("counts in this process instead of failing requests, and adds the counts when Redis is back", async () => {
    const server = await RedisServerProcess.start();
    const redis = await connectRedis({ url: server.url, reconnectDelayMs: 50 });
    const shared: TestRedis = { redis, keyPrefix: "limits-outage", cleanup: async () => {} };
    try {
      const service = await open(database, shared, { apiKeys: keys(), rateLimitPerMinute: 3 });
      const headers = { authorization: `Bearer ${KEY_A}` };
      expect((await call(service.app, "GET", "/v1/sessions/s/config", { headers })).statusCode).toBe(404);
      await sharedCount(shared, 1);
      await server.kill();
      const statuses: number[] = [];
      for (let i = 0; i < 4; i++) {
        statuses.push((await call(service.app, "GET", "/v1/sessions/s/config", { headers })).statusCode);
      }
      // The window goes on in this process: two more pass, then the limit holds; nothing fails.
      expect(statuses).toEqual([404, 404, 429, 429]);
      await server.restart();
      // The restarted server is empty: it receives what was counted while it was away.
      await sharedCount(shared, 4);
    } finally {
      await redis.close();
      await server.stop();
    }
  });
});
