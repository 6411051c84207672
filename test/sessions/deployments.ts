import { describe } from "vitest";
import { createMemoryManager, type MemoryManagerOptions } from "../../src/manager/create-memory-manager.js";
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
export function onPostgres(
  servers: { database: TestDatabase; redis: TestRedis | undefined },
  options: MemoryManagerOptions = {},
): Opener {
  return async () => {
    const memory = await createMemoryManager({
      database: servers.database.db,
      redis: servers.redis?.redis ?? false,
      ...(servers.redis ? { keyPrefix: servers.redis.keyPrefix } : {}),
      logger: recordingLogger(),
      autoMigrate: false,
      summarization: { idleFinalizeAfterMs: 0 },
      ...options,
    });
    return { memory, db: servers.database.db, close: () => memory.close() };
  };
}

/** A manager on a fresh embedded database (PGlite, in memory), without Redis: the default deployment. */
export const onPglite: Opener = () => onPgliteWith();

/** The same, with more options. */
export async function onPgliteWith(options: MemoryManagerOptions = {}): Promise<OpenedMemory> {
  const db = new PgliteDatabase();
  const run = await migrate(db);
  if (run.error) throw run.error;
  const memory = await createMemoryManager({
    database: db,
    redis: false,
    logger: recordingLogger(),
    autoMigrate: false,
    summarization: { idleFinalizeAfterMs: 0 },
    ...options,
  });
  return {
    memory,
    db,
    async close() {
      await memory.close();
      await db.close();
    },
  };
}

/** Runs `suite` on PostgreSQL (with Redis where it answers) and on the embedded database. */
export function inEveryDatabase(
  name: string,
  servers: { database: TestDatabase; redis: TestRedis | undefined },
  suite: (open: Opener) => void,
  options: MemoryManagerOptions = {},
): void {
  describe(`${name} on PostgreSQL (with Redis where it answers)`, () => suite(onPostgres(servers, options)));
  describe(`${name} on the embedded database (PGlite)`, () => suite(() => onPgliteWith(options)));
}
