import { randomBytes } from "node:crypto";
import pg from "pg";
import { afterAll, beforeAll, describe, inject } from "vitest";
import { type Database, PgliteDatabase, PostgresDatabase } from "../../src/storage/database.js";
import { migrate } from "../../src/storage/migrator.js";
import { connectRedis, type RedisConnection } from "../../src/storage/redis-client.js";
import { TEST_DATABASE_ADMIN_URL, TEST_REDIS_URL } from "./urls.js";

/** `describe` when Redis answers, `describe.skip` otherwise (never in CI: setup fails there). */
export const describeWithRedis = describe.skipIf(!inject("redisAvailable"));

export function uniqueName(prefix: string): string {
  return `${prefix}_${Date.now().toString(36)}_${randomBytes(4).toString("hex")}`;
}

/** A database of its own for one test file, migrated; `drop()` removes it. */
export interface TestDatabase {
  db: Database;
  url: string | undefined;
  drop(): Promise<void>;
}

/**
 * Creates a fresh PostgreSQL database (or, where no server answers outside CI, an in-memory
 * PGlite) with the schema applied.
 */
export async function createTestDatabase(): Promise<TestDatabase> {
  if (!inject("postgresAvailable")) {
    const db = new PgliteDatabase();
    const run = await migrate(db);
    if (run.error) throw run.error;
    return { db, url: undefined, drop: () => db.close() };
  }
  const name = uniqueName("swm_test");
  const admin = new pg.Client({ connectionString: TEST_DATABASE_ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(TEST_DATABASE_ADMIN_URL);
  url.pathname = `/${name}`;
  const db = new PostgresDatabase({ connectionString: url.toString(), maxConnections: 10 });
  const run = await migrate(db);
  if (run.error) throw run.error;
  return {
    db,
    url: url.toString(),
    async drop() {
      await db.close();
      const cleanup = new pg.Client({ connectionString: TEST_DATABASE_ADMIN_URL });
      await cleanup.connect();
      await cleanup.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await cleanup.end();
    },
  };
}

/** A Redis connection and a key prefix of its own for one test file; `cleanup()` deletes its keys. */
export interface TestRedis {
  redis: RedisConnection;
  keyPrefix: string;
  cleanup(): Promise<void>;
}

export async function createTestRedis(): Promise<TestRedis> {
  const redis = await connectRedis({ url: TEST_REDIS_URL });
  const keyPrefix = uniqueName("t");
  return {
    redis,
    keyPrefix,
    async cleanup() {
      const keys = await redis.scanKeys(`${keyPrefix}:*`);
      for (let i = 0; i < keys.length; i += 500) await redis.send(["DEL", ...keys.slice(i, i + 500)]);
      await redis.close();
    },
  };
}

/**
 * Gives the calling test file its own database and, where Redis answers, its own Redis key
 * prefix, created before its tests and removed after them. Read the fields inside tests.
 */
export function useTestServers(): { database: TestDatabase; redis: TestRedis | undefined } {
  const servers = {} as { database: TestDatabase; redis: TestRedis | undefined };
  beforeAll(async () => {
    servers.database = await createTestDatabase();
    if (inject("redisAvailable")) servers.redis = await createTestRedis();
  });
  afterAll(async () => {
    await servers.redis?.cleanup();
    await servers.database?.drop();
  });
  return servers;
}
