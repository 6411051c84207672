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

describeWithRedis("rate limit, counted in Redis", () => {
  it("is shared by every instance of the service", async () => {
    const first = await open(database, testRedis, { apiKeys: keys(), rateLimitPerMinute: 4 });
    const second = await open(database, testRedis, { apiKeys: keys(), rateLimitPerMinute: 4 });
    const headers = { authorization: `Bearer ${KEY_A}` };
    const statuses: number[] = [];
    for (const service of [first, second, first, second, first]) {
      statuses.push((await call(service.app, "GET", "/v1/sessions/s/config", { headers })).statusCode);
    }
    expect(statuses).toEqual([404, 404, 404, 404, 429]);
    const keysInRedis = (await testRedis!.redis.send([
      "KEYS",
      `${testRedis!.keyPrefix}:ratelimit:*`,
    ])) as string[];
    expect(keysInRedis).toHaveLength(1);
    const ttl = Number(await testRedis!.redis.send(["PTTL", keysInRedis[0]!]));
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(60_000);
  });
});

describeWithRedis("rate limit while Redis is away", () => {
  it("counts in this process instead of failing requests", async () => {
    const server = await RedisServerProcess.start();
    const redis = await connectRedis({ url: server.url });
    try {
      const service = await open(
        database,
        { redis, keyPrefix: "limits-outage", cleanup: async () => {} },
        { apiKeys: keys(), rateLimitPerMinute: 3 },
      );
      const headers = { authorization: `Bearer ${KEY_A}` };
      expect((await call(service.app, "GET", "/v1/sessions/s/config", { headers })).statusCode).toBe(404);
      await server.kill();
      const statuses: number[] = [];
      for (let i = 0; i < 5; i++) {
        statuses.push((await call(service.app, "GET", "/v1/sessions/s/config", { headers })).statusCode);
      }
      // The local window starts afresh: three more pass, then the limit holds; nothing fails.
      expect(statuses).toEqual([404, 404, 404, 429, 429]);
    } finally {
      await redis.close();
      await server.stop();
    }
  });
});
