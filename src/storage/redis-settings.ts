import { ErrorReply } from "redis";
import type { RedisConnection } from "./redis-client.js";

/**
 * Redis's memory and persistence settings, as the service reads them at start-up to say what
 * they mean here. The Memory Manager API specification's production settings are `maxmemory 4gb`,
 * `maxmemory-policy allkeys-lru`, `save "900 1 300 10"`, `appendonly no`.
 */
export interface RedisSettings {
  /** Bytes; 0 means no limit. */
  maxmemory: number;
  maxmemory_policy: string;
  /** `appendonly` (yes or no). */
  appendonly: string;
  /** `save` (RDB snapshot points); null where only INFO could be read (it does not say). */
  save: string | null;
  /** Keys without a TTL, over every database (INFO keyspace): a volatile-* policy cannot evict them. */
  keys_without_ttl: number;
  /** "CONFIG GET", or "INFO" where CONFIG was refused (renamed, or not allowed to this user). */
  source: "CONFIG GET" | "INFO";
  /** Redis's answer to CONFIG GET when it refused it; null when it answered. */
  config_refused: string | null;
}

/** Redis did not answer (down, timed out): the settings are read again later. */
export class RedisSettingsUnreadable extends Error {
  constructor(cause: unknown) {
    super(`Redis did not answer: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.name = "RedisSettingsUnreadable";
  }
}

/**
 * Reads the settings with CONFIG GET (of the server the connection sends to: in a Redis Cluster,
 * one node, as its nodes are set up alike). Where CONFIG is refused (an error reply: renamed away,
 * or an ACL without `config|get`, as on most managed Redis services) it reads what INFO says
 * instead (everything but `save`) and says so in `config_refused`. Throws
 * RedisSettingsUnreadable when Redis does not answer at all.
 */
export async function readRedisSettings(redis: RedisConnection): Promise<RedisSettings> {
  try {
    const keyspace = keysWithoutTtl(await redis.info("keyspace"));
    const config = await readConfig(redis);
    if (!(config instanceof ErrorReply))
      return { ...config, keys_without_ttl: keyspace, source: "CONFIG GET", config_refused: null };
    const [memory, persistence] = await Promise.all([redis.info("memory"), redis.info("persistence")]);
    const fields = { ...infoFields(memory[0] ?? ""), ...infoFields(persistence[0] ?? "") };
    return {
      maxmemory: Number(fields.maxmemory ?? 0),
      maxmemory_policy: fields.maxmemory_policy ?? "unknown",
      appendonly: fields.aof_enabled === "1" ? "yes" : "no",
      save: null,
      keys_without_ttl: keyspace,
      source: "INFO",
      config_refused: config.message,
    };
  } catch (error) {
    throw new RedisSettingsUnreadable(error);
  }
}

/** The four settings by CONFIG GET, or the error reply that refused it. */
async function readConfig(
  redis: RedisConnection,
): Promise<Pick<RedisSettings, "maxmemory" | "maxmemory_policy" | "appendonly" | "save"> | ErrorReply> {
  const names = ["maxmemory", "maxmemory-policy", "appendonly", "save"] as const;
  const values: Record<string, string> = {};
  try {
    // One name a command: CONFIG GET takes several only from Redis 7 on.
    const replies = await Promise.all(names.map((name) => redis.send(["CONFIG", "GET", name])));
    // A flat [name, value] array (RESP2), or an object of them (node-redis maps RESP3 maps so).
    for (const reply of replies) {
      const pairs = Array.isArray(reply)
        ? reply.flatMap((item, i) => (i % 2 === 0 ? [[item, reply[i + 1]]] : []))
        : Object.entries((reply ?? {}) as Record<string, unknown>);
      for (const [name, value] of pairs) values[String(name)] = String(value);
    }
  } catch (error) {
    if (error instanceof ErrorReply) return error;
    throw error;
  }
  return {
    maxmemory: Number(values.maxmemory ?? 0),
    maxmemory_policy: values["maxmemory-policy"] ?? "unknown",
    appendonly: values.appendonly ?? "unknown",
    save: values.save ?? null,
  };
}

/** What the settings mean for this service: one line, and whether it is a warning. */
export interface RedisSettingsAdvice {
  level: "info" | "warn";
  message: string;
}

/**
 * What the settings mean here. Warns only where they can change what callers see:
 * - `noeviction` with a `maxmemory`: a full Redis refuses writes (OOM). Nothing fails for
 *   callers: the breaker opens and writes and reads are served by PostgreSQL, slower.
 * - a `volatile-*` policy with a `maxmemory` while keys without a TTL are present: every key
 *   this service writes to the buffer has a TTL, so volatile-* evicts them as allkeys-* would
 *   (and a buffer evicted is rebuilt from PostgreSQL); but keys without one (another
 *   application's, or outboxes waiting for PostgreSQL) cannot be evicted, and once they fill
 *   the memory Redis refuses writes as under noeviction. Without such keys it is information.
 * Everything else (allkeys-*, no maxmemory) is information.
 */
export function adviseOnRedisSettings(settings: RedisSettings): RedisSettingsAdvice {
  const { maxmemory, maxmemory_policy: policy } = settings;
  const limit = `maxmemory ${formatBytes(maxmemory)}`;
  if (maxmemory === 0) {
    return {
      level: "info",
      message:
        "Redis has no maxmemory: it grows until the machine runs out of memory (buffer keys expire after buffer_ttl_seconds). The Memory Manager API specification sets maxmemory 4gb with maxmemory-policy allkeys-lru",
    };
  }
  if (policy === "noeviction") {
    return {
      level: "warn",
      message: `Redis has maxmemory-policy noeviction with ${limit}: when it is full it refuses writes (OOM). Nothing is lost: the Redis circuit breaker opens, writes are stored in PostgreSQL and acknowledged, and reads are served from PostgreSQL (slower) until Redis has room again. For a cache that never refuses, set maxmemory-policy allkeys-lru (the Memory Manager API specification's setting); keep noeviction only to hold writes in Redis during a PostgreSQL outage (with appendonly yes), sized so that it does not fill`,
    };
  }
  if (policy.startsWith("volatile-") && settings.keys_without_ttl > 0) {
    return {
      level: "warn",
      message: `Redis has maxmemory-policy ${policy} with ${limit}, and ${settings.keys_without_ttl} keys without a TTL that it can never evict (another application's, or outboxes waiting for PostgreSQL): should they fill the memory, Redis refuses writes (OOM) as under noeviction, and writes and reads are served from PostgreSQL (slower; nothing is lost). allkeys-lru (the Memory Manager API specification's setting) cannot fill up that way`,
    };
  }
  return {
    level: "info",
    message: policy.startsWith("volatile-")
      ? `Redis evicts with ${policy} at ${limit}: every buffer key has a TTL, so it evicts them as allkeys-lru would; an evicted buffer is rebuilt from PostgreSQL`
      : `Redis evicts with ${policy} at ${limit}: an evicted buffer is rebuilt from PostgreSQL`,
  };
}

/**
 * One line for operators (`inspect`): "maxmemory 1mb, maxmemory-policy noeviction (when full,
 * Redis refuses writes: they are served by PostgreSQL)".
 */
export function describeRedisMemory(maxmemory: number, policy: string): string {
  if (maxmemory === 0) return `no maxmemory (maxmemory-policy ${policy} never applies)`;
  const settings = `maxmemory ${formatBytes(maxmemory)}, maxmemory-policy ${policy}`;
  if (policy === "noeviction")
    return `${settings} (when full, Redis refuses writes: they go to PostgreSQL, which serves the reads too)`;
  return `${settings} (an evicted buffer is rebuilt from PostgreSQL)`;
}

/** "4gb", "1mb", "1500b": as redis.conf writes sizes. */
export function formatBytes(bytes: number): string {
  for (const [unit, size] of [
    ["gb", 1024 ** 3],
    ["mb", 1024 ** 2],
    ["kb", 1024],
  ] as const) {
    if (bytes >= size && bytes % size === 0) return `${bytes / size}${unit}`;
  }
  return `${bytes}b`;
}

function keysWithoutTtl(sections: readonly string[]): number {
  let count = 0;
  for (const text of sections) {
    for (const match of text.matchAll(/^db\d+:keys=(\d+),expires=(\d+)/gm)) {
      count += Number(match[1]) - Number(match[2]);
    }
  }
  return count;
}

export function infoFields(text: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    const colon = line.indexOf(":");
    if (colon > 0 && !line.startsWith("#")) fields[line.slice(0, colon)] = line.slice(colon + 1).trim();
  }
  return fields;
}
