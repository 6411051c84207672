import { describe } from "vitest";
import { createMemoryManager } from "../../src/manager/create-memory-manager.js";
import type { MemoryManager } from "../../src/manager/memory-manager.js";
import { type Database, PgliteDatabase } from "../../src/storage/database.js";
import { migrate } from "../../src/storage/migrator.js";
import { recordingLogger } from "../support/fixtures.js";
import type { TestDatabase, TestRedis } from "../support/servers.js";

/** A manager a suite opened, and how to close what was opened for it. */
export interface OpenedMemory {
  memory: MemoryManager;
  /** The system of record it runs on. */
  db: Database;
  close(): Promise<void>;
}

export type Opener = () => Promise<OpenedMemory>;

/** A manager on the test's PostgreSQL database, with its Redis where that answers. */
export function onPostgres(servers: { database: TestDatabase; redis: TestRedis | undefined }): Opener {
  return async () => {
    const memory = await createMemoryManager({
      database: servers.database.db,
      redis: servers.redis?.redis ?? false,
      ...(servers.redis ? { keyPrefix: servers.redis.keyPrefix } : {}),
      logger: recordingLogger(),
      autoMigrate: false,
      summarization: { idleFinalizeAfterMs: 0 },
    });
    return { memory, db: servers.database.db, close: () => memory.close() };
  };
}

/** A manager on a fresh embedded database (PGlite, in memory), without Redis: the default deployment. */
export const onPglite: Opener = async () => {
  const db = new PgliteDatabase();
  const run = await migrate(db);
  if (run.error) throw run.error;
  const memory = await createMemoryManager({
    database: db,
    redis: false,
    logger: recordingLogger(),
    autoMigrate: false,
    summarization: { idleFinalizeAfterMs: 0 },
  });
  return {
    memory,
    db,
    async close() {
      await memory.close();
      await db.close();
    },
  };
};

/** Runs `suite` on PostgreSQL (with Redis where it answers) and on the embedded database. */
export function inEveryDatabase(
  name: string,
  servers: { database: TestDatabase; redis: TestRedis | undefined },
  suite: (open: Opener) => void,
): void {
  describe(`${name} on PostgreSQL (with Redis where it answers)`, () => suite(onPostgres(servers)));
  describe(`${name} on the embedded database (PGlite)`, () => suite(onPglite));
}
