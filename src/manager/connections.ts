import { type MemoryEnvironment, readMemoryEnvironment } from "../environment.js";
import { ValidationError } from "../errors.js";
import type { Logger } from "../logger.js";
import { errorCode } from "../resilience/transition-log.js";
import {
  type Database,
  PgliteDatabase,
  PostgresDatabase,
  type PostgresDatabaseOptions,
} from "../storage/database.js";
import { connectRedis, type RedisConnection } from "../storage/redis-client.js";
import { ShardedRedisConnection, ShardMap } from "../storage/redis-shards.js";
import { addressOf } from "../storage/server-address.js";

/**
 * The connections a manager runs on, from its options or the environment: the system of record
 * (PostgreSQL at a URL, or the embedded database in a folder) and Redis. Each names where its
 * address came from (an option or a variable), so that a connection error can say so.
 */

type Environment = Record<string, string | undefined>;

/** The system of record `options` (as `createMemoryManager`'s) or the environment name. */
export function openDatabase(
  options: { database?: string | Database; dataDir?: string },
  env: Environment,
  settings: DatabaseSettings,
): { database: Database; owned: boolean; address: string | null } {
  if (options.database !== undefined && typeof options.database !== "string") {
    return { database: options.database, owned: false, address: null };
  }
  if (options.database !== undefined) {
    const url = options.database;
    const database = new PostgresDatabase({
      connectionString: url,
      source: "options.database",
      ...settings,
    });
    return { database, owned: true, address: addressOf(url, 5432) };
  }
  const overrides = options.dataDir !== undefined ? { MEMORY_DATA_DIR: options.dataDir } : {};
  return { ...databaseFromEnv({ ...env, ...overrides }, settings), owned: true };
}

/** What `databaseFromEnv` opened; the caller owns `database`. */
export interface DatabaseFromEnv {
  database: Database;
  /** host:port of PostgreSQL; null for the embedded database. */
  address: string | null;
  /** "postgres (host:port)" or "pglite (<folder>)", for operators. */
  label: string;
}

/**
 * The system of record the environment names: PostgreSQL at DATABASE_URL, else the embedded
 * database in MEMORY_DATA_DIR (default ./.swisper-memory).
 */
/** How a PostgreSQL pool of ours is set up beyond its URL. */
export type DatabaseSettings = Pick<PostgresDatabaseOptions, "queryTimeoutMs" | "logger">;

export function databaseFromEnv(env: Environment, settings: DatabaseSettings = {}): DatabaseFromEnv {
  const variables = readMemoryEnvironment(env);
  const label = databaseLabel(variables);
  if (variables.DATABASE_URL) {
    const database = new PostgresDatabase({
      connectionString: variables.DATABASE_URL,
      source: "DATABASE_URL",
      ...settings,
    });
    return { database, address: addressOf(variables.DATABASE_URL, 5432), label };
  }
  const dataDir = variables.MEMORY_DATA_DIR ?? DEFAULT_DATA_DIR;
  return { database: new PgliteDatabase({ dataDir }), address: null, label };
}

/** "postgres (host:port)" or "pglite (<folder>)": the system of record the settings name. */
export function databaseLabel(settings: MemoryEnvironment): string {
  if (settings.DATABASE_URL) return `postgres (${addressOf(settings.DATABASE_URL, 5432)})`;
  return `pglite (${settings.MEMORY_DATA_DIR ?? DEFAULT_DATA_DIR})`;
}

/** Where the embedded database lives when MEMORY_DATA_DIR is unset. */
export const DEFAULT_DATA_DIR = "./.swisper-memory";

/** The Redis `options` (as `createMemoryManager`'s) or the environment name; none for `redis: false`. */
export async function openRedis(
  options: { redis?: string | RedisConnection | false; redisCluster?: boolean },
  env: Environment,
  commandTimeoutMs: number | undefined,
): Promise<{ connection: RedisConnection | null; owned: boolean; address: string | null }> {
  if (options.redis === false) return { connection: null, owned: false, address: null };
  if (options.redis !== undefined && typeof options.redis !== "string") {
    return { connection: options.redis, owned: false, address: redisAddressFromEnv(env) };
  }
  if (options.redis === undefined && readMemoryEnvironment(env).REDIS_URLS) {
    const connection = await connectShardsFromEnv(env, commandTimeoutMs);
    return { connection, owned: true, address: null };
  }
  if (options.redis === undefined && readMemoryEnvironment(env).REDIS_SENTINELS) {
    return { ...(await connectSentinelsFromEnv(env, commandTimeoutMs)), owned: true };
  }
  const url = options.redis ?? redisUrlFromEnv(env);
  if (!url) return { connection: null, owned: false, address: null };
  const cluster = options.redisCluster ?? readMemoryEnvironment(env).REDIS_CLUSTER ?? false;
  const source = options.redis !== undefined ? "options.redis" : redisSourceFromEnv(env);
  return {
    connection: await connectRedis({ url, cluster, source, ...definedOnly({ commandTimeoutMs }) }),
    owned: true,
    address: addressOf(url, 6379),
  };
}

/** A connection passed in was most likely opened from the same environment (as `serve` does). */
function redisAddressFromEnv(env: Environment): string | null {
  const url = redisUrlFromEnv(env);
  return url ? addressOf(url, 6379) : null;
}

/** The variable the Redis URL comes from, named in connection errors: REDIS_URL, else REDIS_HOST. */
function redisSourceFromEnv(env: Environment): string {
  return readMemoryEnvironment(env).REDIS_URL ? "REDIS_URL" : "REDIS_HOST";
}

/**
 * Connects to the Redis the environment names (REDIS_URL, or REDIS_HOST...; REDIS_CLUSTER), or
 * null when it names none. The caller owns the connection.
 */
export async function connectRedisFromEnv(env: Environment): Promise<RedisConnection | null> {
  if (readMemoryEnvironment(env).REDIS_URLS) return connectShardsFromEnv(env);
  if (readMemoryEnvironment(env).REDIS_SENTINELS) return (await connectSentinelsFromEnv(env)).connection;
  const url = redisUrlFromEnv(env);
  if (!url) return null;
  const cluster = readMemoryEnvironment(env).REDIS_CLUSTER ?? false;
  return connectRedis({ url, cluster, source: redisSourceFromEnv(env) });
}

/**
 * The shards REDIS_URLS names, one connection each, as one connection that routes each session to
 * its shard (src/storage/redis-shards.ts). A shard that is down at start-up is connected in the
 * background, as a single Redis is.
 */
async function connectShardsFromEnv(env: Environment, commandTimeoutMs?: number): Promise<RedisConnection> {
  const settings = readMemoryEnvironment(env);
  const urls = settings.REDIS_URLS ?? [];
  const other = ["REDIS_URL", "REDIS_HOST", "REDIS_CLUSTER"].find((name) => env[name]?.trim());
  if (other) {
    throw new ValidationError(
      "REDIS_URLS",
      `names shards of standalone servers: unset ${other} (one Redis, or a Redis Cluster, is the other way)`,
    );
  }
  const shards = new Map<string, RedisConnection>();
  try {
    for (const url of urls) {
      const connection = await connectRedis({
        url,
        source: "REDIS_URLS",
        ...definedOnly({ commandTimeoutMs }),
      });
      shards.set(shardName(url), connection);
    }
  } catch (error) {
    for (const shard of shards.values()) await shard.close();
    throw error;
  }
  return new ShardedRedisConnection(shards, new ShardMap([...shards.keys()]));
}

/**
 * The primary that REDIS_SENTINELS monitor under REDIS_SENTINEL_NAME (default "mymaster"), through
 * node-redis' Sentinel client; REDIS_URL or REDIS_HOST, when set, give its password and database.
 */
async function connectSentinelsFromEnv(
  env: Environment,
  commandTimeoutMs?: number,
): Promise<{ connection: RedisConnection; address: string }> {
  const settings = readMemoryEnvironment(env);
  const sentinels = settings.REDIS_SENTINELS ?? [];
  if (settings.REDIS_CLUSTER || settings.REDIS_URLS) {
    throw new ValidationError("REDIS_SENTINELS", "cannot be combined with REDIS_CLUSTER or REDIS_URLS");
  }
  const nodes = sentinels.map((item) => {
    const colon = item.lastIndexOf(":");
    return { host: item.slice(0, colon), port: Number(item.slice(colon + 1)) };
  });
  const name = settings.REDIS_SENTINEL_NAME ?? "mymaster";
  const connection = await connectRedis({
    url: redisUrlFromEnv(env) ?? "redis://127.0.0.1",
    sentinel: { nodes, name },
    source: "REDIS_SENTINELS",
    ...definedOnly({ commandTimeoutMs }),
  });
  return { connection, address: `sentinel ${name} (${sentinels.join(",")})` };
}

/** A shard's name: host:port, and the database when not 0 (no credentials: it is logged). */
function shardName(url: string): string {
  const parsed = new URL(url);
  const database = parsed.pathname.replace(/^\//, "");
  const address = addressOf(url, 6379) ?? parsed.host;
  return database && database !== "0" ? `${address}/${database}` : address;
}

/** `REDIS_URL`, else the specification's `REDIS_HOST`, `REDIS_PORT` (6379) and `REDIS_DB` (0). */
export function redisUrlFromEnv(env: Environment): string | null {
  const settings = readMemoryEnvironment(env);
  if (settings.REDIS_URL) return settings.REDIS_URL;
  if (!settings.REDIS_HOST) return null;
  const password = settings.REDIS_PASSWORD ? `:${encodeURIComponent(settings.REDIS_PASSWORD)}@` : "";
  return `redis://${password}${settings.REDIS_HOST}:${settings.REDIS_PORT ?? 6379}/${settings.REDIS_DB ?? 0}`;
}

/**
 * Says that Redis does not answer yet, with the reason its PING gives: the address, the variable
 * it came from and the socket's code (ECONNREFUSED, ENOTFOUND, ...).
 */
export async function warnIfRedisAway(
  connection: RedisConnection,
  address: string | null,
  logger: Logger,
): Promise<void> {
  if (connection.isReady) return;
  const failure: unknown = await connection.send(["PING"]).then(
    () => null,
    (error: unknown) => error,
  );
  const reason = failure instanceof Error ? failure.message : "it answered just now";
  logger.warn(
    { address, code: failure === null ? null : errorCode(failure) },
    `Redis does not answer yet; serving from the system of record until it does: ${reason}`,
  );
}

/** Leaves out fields set to undefined, so that the receiver's defaults apply. */
export function definedOnly<T extends object>(fields: T): Partial<T> {
  return Object.fromEntries(Object.entries(fields).filter(([, value]) => value !== undefined)) as Partial<T>;
}
