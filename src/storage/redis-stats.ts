import type { RedisConnection } from "./redis-client.js";

/** Redis server figures from INFO, summed over cluster primaries. */
export interface RedisStats {
  available: boolean;
  used_memory: number | null;
  /** Redis's memory limit in bytes (0: none), summed over cluster primaries, as used_memory. */
  maxmemory: number | null;
  /** What Redis does at that limit (`allkeys-lru`, `noeviction`, ...); a cluster's distinct ones, comma-separated. */
  maxmemory_policy: string | null;
  evicted_keys: number | null;
  expired_keys: number | null;
  keyspace_hits: number | null;
  keyspace_misses: number | null;
  /** keyspace_hits / (hits + misses); null before any lookup. */
  hit_ratio: number | null;
}

const UNAVAILABLE: RedisStats = Object.freeze({
  available: false,
  used_memory: null,
  maxmemory: null,
  maxmemory_policy: null,
  evicted_keys: null,
  expired_keys: null,
  keyspace_hits: null,
  keyspace_misses: null,
  hit_ratio: null,
});

/**
 * The Redis server's figures from `INFO memory` and `INFO stats`, summed over cluster primaries
 * (the same shape as `getMemoryStats().redis`). Never throws: a Redis that does not answer is
 * reported as unavailable.
 */
export async function readRedisStats(redis: RedisConnection | null | undefined): Promise<RedisStats> {
  if (!redis) return UNAVAILABLE;
  try {
    const [memory, stats] = await Promise.all([redis.info("memory"), redis.info("stats")]);
    const hits = sumField(stats, "keyspace_hits");
    const misses = sumField(stats, "keyspace_misses");
    return {
      available: true,
      used_memory: sumField(memory, "used_memory"),
      maxmemory: sumField(memory, "maxmemory"),
      maxmemory_policy: distinctField(memory, "maxmemory_policy"),
      evicted_keys: sumField(stats, "evicted_keys"),
      expired_keys: sumField(stats, "expired_keys"),
      keyspace_hits: hits,
      keyspace_misses: misses,
      hit_ratio: hits + misses > 0 ? hits / (hits + misses) : null,
    };
  } catch {
    return UNAVAILABLE;
  }
}

function sumField(sections: readonly string[], field: string): number {
  const line = new RegExp(`^${field}:(\\d+)`, "m");
  return sections.reduce((total, text) => total + Number(line.exec(text)?.[1] ?? 0), 0);
}

function distinctField(sections: readonly string[], field: string): string | null {
  const line = new RegExp(`^${field}:(\\S+)`, "m");
  const values = new Set(sections.flatMap((text) => line.exec(text)?.[1] ?? []));
  return values.size === 0 ? null : [...values].join(",");
}
