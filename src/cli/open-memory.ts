import { type Logger, stderrLogger } from "../logger.js";
import {
  connectRedisFromEnv,
  createMemoryManager,
  databaseFromEnv,
  type LegacyOptions,
} from "../manager/create-memory-manager.js";
import type { MemoryManager } from "../manager/memory-manager.js";
import type { Database } from "../storage/database.js";
import type { RedisConnection } from "../storage/redis-client.js";
import { type Environment, TENANT_WITH_URL, UsageError } from "./command.js";
import { queryString, serviceClientFor } from "./service-client.js";

/** A manager for an operator command, with the connections it runs on (the command owns them). */
export interface OpenedMemory {
  memory: MemoryManager;
  db: Database;
  redis: RedisConnection | null;
  /** "postgres (host:port)" (DATABASE_URL) or "pglite (<folder>)". */
  databaseLabel: string;
  close(): Promise<void>;
}

/**
 * Opens what the environment configures, as the service does: DATABASE_URL or the embedded
 * database in MEMORY_DATA_DIR, REDIS_URL (or REDIS_HOST...) when set. The idle-session and
 * retention sweeps are off: a short operator command must not finalize or erase sessions behind
 * the service's back.
 */
export async function openMemory(
  env: Environment,
  options: { tenant?: string; logger?: Logger; autoMigrate?: boolean; legacy?: LegacyOptions } = {},
): Promise<OpenedMemory> {
  const { database: db, label } = databaseFromEnv(env);
  let redis: RedisConnection | null = null;
  try {
    redis = await connectRedisFromEnv(env);
    const memory = await createMemoryManager({
      env,
      database: db,
      redis: redis ?? false,
      ...(options.tenant !== undefined ? { tenant: options.tenant } : {}),
      // A short operator command reports problems, not the service's start-up information.
      logger: options.logger ?? { ...stderrLogger, info: () => {} },
      ...(options.autoMigrate !== undefined ? { autoMigrate: options.autoMigrate } : {}),
      ...(options.legacy !== undefined ? { legacy: options.legacy } : {}),
      summarization: { idleFinalizeAfterMs: 0 },
      // Nor sweep retention in the background (`retention sweep` sweeps when asked).
      retention: { sweepIntervalMs: 0 },
    });
    return {
      memory,
      db,
      redis,
      databaseLabel: label,
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

/** One kind of read, through the library or a running service's GET route. */
export interface ReadThrough<O, T> {
  read(options: O): Promise<T>;
  close(): Promise<void>;
}

/**
 * A read the command makes through the running service at --url / MEMORY_URL (GET `path` with
 * the options as its query; the API key decides the tenant), else through the memory the
 * environment opens for `tenant`.
 */
export async function openReadThrough<O extends object, T>(
  env: Environment,
  values: { url?: string | undefined; tenant?: string | undefined },
  path: string,
  read: (memory: MemoryManager, options: O) => Promise<T>,
): Promise<ReadThrough<O, T>> {
  const service = serviceClientFor(values.url, env);
  if (service) {
    if (values.tenant !== undefined) throw new UsageError(TENANT_WITH_URL);
    return {
      async read(options) {
        const answer = await service.get<T>(`${path}?${queryString(options)}`);
        if (answer === null) throw new Error(`the service does not have GET ${path} (404)`);
        return answer;
      },
      close: async () => {},
    };
  }
  const opened = await openMemory(env, values.tenant !== undefined ? { tenant: values.tenant } : {});
  return { read: (options) => read(opened.memory, options), close: () => opened.close() };
}
