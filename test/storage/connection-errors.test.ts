import { describe, expect, it } from "vitest";
import type { Logger } from "../../src/logger.js";
import { connectRedisFromEnv, createMemoryManager } from "../../src/manager/create-memory-manager.js";
import { createHealthProvider } from "../../src/service/health.js";
import { DatabaseConnectError } from "../../src/storage/database.js";
import { connectRedis, RedisUnreachableError } from "../../src/storage/redis-client.js";
import { freePort } from "../support/processes.js";
import { TEST_DATABASE_ADMIN_URL } from "../support/urls.js";

// A mistyped REDIS_URL or DATABASE_URL must not look like an outage of the right server: every
// connection error names the server's address, the variable it came from and the error code.
// Before, the logs said "The client is offline", /health said "error":"Error", and a failed start
// printed "connect ECONNREFUSED 127.0.0.1:5499" or "getaddrinfo ENOTFOUND base" with no variable.

function recordingLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const record = (fields: object, message: string) => lines.push(`${message} ${JSON.stringify(fields)}`);
  return { lines, warn: record, error: record, info: record };
}

describe("Redis connection errors", () => {
  it("name the address, the variable and ECONNREFUSED for a port nothing listens on", async () => {
    const port = await freePort();
    const redis = await connectRedis({
      url: `redis://127.0.0.1:${port}`,
      source: "REDIS_URL",
      connectTimeoutMs: 300,
    });
    try {
      const error = await redis.send(["PING"]).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(RedisUnreachableError);
      expect((error as RedisUnreachableError).code).toBe("ECONNREFUSED");
      expect((error as Error).message).toMatch(
        new RegExp(`^Redis at 127\\.0\\.0\\.1:${port} \\(REDIS_URL\\) is unreachable: ECONNREFUSED`),
      );
    } finally {
      await redis.close();
    }
  });

  it("name ENOTFOUND (or EAI_AGAIN) for a host that does not resolve", async () => {
    const redis = await connectRedis({ url: "redis://no-such-host.invalid:6379", connectTimeoutMs: 300 });
    try {
      const error = (await redis.send(["PING"]).catch((e: unknown) => e)) as RedisUnreachableError;
      expect(error.message).toMatch(
        /^Redis at no-such-host\.invalid:6379 \(the Redis URL\) is unreachable: (ENOTFOUND|EAI_AGAIN)/,
      );
    } finally {
      await redis.close();
    }
  });

  it("reach the start-up warning, the breaker's last error and /health's error code", async () => {
    const port = await freePort();
    const logger = recordingLogger();
    // As `serve` does: the connection from the environment, shared by the manager and /health.
    const env = { REDIS_URL: `redis://127.0.0.1:${port}` };
    const redis = (await connectRedisFromEnv(env))!;
    const memory = await createMemoryManager({
      env,
      redis,
      database: TEST_DATABASE_ADMIN_URL,
      logger,
      summarization: { idleFinalizeAfterMs: 0 },
    });
    try {
      const warning = logger.lines.find((line) => line.startsWith("Redis does not answer yet"));
      expect(warning).toContain(`Redis at 127.0.0.1:${port} (REDIS_URL) is unreachable: ECONNREFUSED`);
      expect(warning).toContain('"code":"ECONNREFUSED"');

      await memory.getContext("connection-errors").catch(() => {});
      expect(memory.circuitBreaker.redis.snapshot().last_error).toContain(
        `Redis at 127.0.0.1:${port} (REDIS_URL) is unreachable: ECONNREFUSED`,
      );
      const health = await createHealthProvider({ memory, redis })();
      expect(health.components.redis?.status).not.toBe("up");
      expect(health.components.redis?.error).toBe("ECONNREFUSED");
    } finally {
      await memory.close();
      await redis.close();
    }
  });
});

describe("PostgreSQL connection errors at start-up", () => {
  it("name the address, DATABASE_URL and ECONNREFUSED for a port nothing listens on", async () => {
    const port = await freePort();
    const error = await createMemoryManager({
      env: { DATABASE_URL: `postgres://postgres@127.0.0.1:${port}/test` },
      redis: false,
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DatabaseConnectError);
    expect((error as Error).message).toMatch(
      new RegExp(`^PostgreSQL at 127\\.0\\.0\\.1:${port} \\(DATABASE_URL\\) is unreachable: ECONNREFUSED`),
    );
  });

  it("say the server refused the connection, with its SQLSTATE, for a role it does not know", async () => {
    const url = new URL(TEST_DATABASE_ADMIN_URL);
    url.username = "no_such_role_swisper";
    const error = await createMemoryManager({ env: { DATABASE_URL: url.toString() }, redis: false }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(DatabaseConnectError);
    expect((error as Error).message).toContain(
      `PostgreSQL at ${url.hostname}:${url.port || 5432} (DATABASE_URL) refused the connection: 28000 (role "no_such_role_swisper" does not exist)`,
    );
  });

  it("name the option when the URL was passed in code", async () => {
    const port = await freePort();
    const error = await createMemoryManager({
      database: `postgres://postgres@127.0.0.1:${port}/test`,
      redis: false,
    }).catch((e: unknown) => e);
    expect((error as Error).message).toContain(`(options.database) is unreachable: ECONNREFUSED`);
  });
});
