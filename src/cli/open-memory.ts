import { type Logger, stderrLogger } from "../logger.js";
import { createMemoryManager, redisUrlFromEnv } from "../manager/create-memory-manager.js";
import type { MemoryManager } from "../manager/memory-manager.js";
import { type Database, PgliteDatabase, PostgresDatabase } from "../storage/database.js";
import { connectRedis, type RedisConnection } from "../storage/redis-client.js";
import type { Environment } from "./command.js";

/** A manager for an operator command, with the connections it runs on (the command owns them). */
export interface OpenedMemory {
  memory: MemoryManager;
  db: Database;
  redis: RedisConnection | null;
  /** "postgres" (DATABASE_URL) or "pglite (<folder>)". */
  databaseLabel: string;
  close(): Promise<void>;
}

/**
 * Opens what the environment configures, as the service does: DATABASE_URL or the embedded
 * database in MEMORY_DATA_DIR, REDIS_URL (or REDIS_HOST...) when set. The idle-session sweep is
 * off: a short operator command must not finalize sessions behind the service's back.
 */
export async function openMemory(
  env: Environment,
  options: { tenant?: string; logger?: Logger; autoMigrate?: boolean } = {},
): Promise<OpenedMemory> {
  const url = env.DATABASE_URL;
  const dataDir = env.MEMORY_DATA_DIR ?? "./.swisper-memory";
  const db: Database = url
    ? new PostgresDatabase({ connectionString: url })
    : new PgliteDatabase({ dataDir });
  let redis: RedisConnection | null = null;
  try {
    const redisUrl = redisUrlFromEnv(env);
    if (redisUrl) redis = await connectRedis({ url: redisUrl, cluster: env.REDIS_CLUSTER === "1" });
    const memory = await createMemoryManager({
      env,
      database: db,
      redis: redis ?? false,
      ...(options.tenant !== undefined ? { tenant: options.tenant } : {}),
      // A short operator command reports problems, not the service's start-up information.
      logger: options.logger ?? { ...stderrLogger, info: () => {} },
      ...(options.autoMigrate !== undefined ? { autoMigrate: options.autoMigrate } : {}),
      summarization: { idleFinalizeAfterMs: 0 },
    });
    return {
      memory,
      db,
      redis,
      databaseLabel: url ? "postgres" : `pglite (${dataDir})`,
      async close() {
        await memory.close();
        await redis?.close();
        await db.close();
      },
    };
  } catch (error) {
    await redis?.close();
    await db.close();
    throw error;
  }
}
