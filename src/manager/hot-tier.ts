/**
 * Redis as the manager uses it: one server (or a Redis Cluster) behind the `redis` breaker, or
 * several standalone shards (REDIS_URLS), each behind a breaker of its own, so that a dead shard
 * sends only its own sessions to PostgreSQL. The rest of the wiring reads the same shape for both.
 */
import { fixedPlacement, type KeyPlacement, type SessionRef, sessionTag } from "../buffer/keys.js";
import type { ReplicaReads } from "../buffer/redis-buffer-store.js";
import { RedisUnavailableError } from "../errors.js";
import type { Logger } from "../logger.js";
import { GuardedRedisConnection, isRedisOutage } from "../resilience/guarded-connections.js";
import { CircuitBreaker, type CircuitBreakerOptions, CircuitState } from "../resilience/index.js";
import type { Queryable } from "../storage/database.js";
import { type RedisConnection, SentinelConnection } from "../storage/redis-client.js";
import { recordTopology, ShardedRedisConnection } from "../storage/redis-shards.js";

/** One Redis server the manager talks to: its breaker, its address, and how to probe it. */
export interface HotTierServer {
  breaker: CircuitBreaker;
  address: string | null;
  /** Its own connection (no breaker), for the recovery probe and reconnect events. */
  raw: RedisConnection;
}

export interface HotTier {
  /** What the stores send through: each command behind its server's breaker. */
  connection: RedisConnection;
  /** One entry, or one per shard. */
  servers: HotTierServer[];
  /** The prefix of each session's keys (with shards, with the session's epoch). */
  placement: KeyPlacement;
  /** Whether the Redis holding `ref` (without `ref`: any) may serve: its breaker is CLOSED. */
  available(ref?: SessionRef): boolean;
  /** True with REDIS_URLS. */
  sharded: boolean;
  /** Behind Sentinel: the reads its replicas may serve; else null. */
  replicas: ReplicaReads | null;
}

export interface HotTierOptions {
  raw: RedisConnection;
  /** The address of a single server (for logs and /health). */
  address: string | null;
  /** The breaker of a single server: the specification's `redis` breaker. */
  redisBreaker: CircuitBreaker;
  /** How a shard's breaker is set up (its name is `redis:<shard>`). */
  breakerOptions: Omit<CircuitBreakerOptions, "name" | "isFailure">;
  keyPrefix: string;
  /** Where the shard lists are numbered (memory_redis_topologies). */
  database: Queryable;
  logger: Logger;
  /** Where the retry of an unrecorded shard list is stopped on close. */
  closers: (() => Promise<void>)[];
  /** Behind Sentinel, also reads without min_seq go to replicas (MEMORY_READ_FROM_REPLICAS=eventual). */
  eventualReads: boolean;
}

export async function buildHotTier(options: HotTierOptions): Promise<HotTier> {
  const { raw, redisBreaker } = options;
  if (raw instanceof ShardedRedisConnection) return buildShardedTier(raw, options);
  return {
    connection: new GuardedRedisConnection(raw, redisBreaker),
    servers: [{ breaker: redisBreaker, address: options.address, raw }],
    placement: fixedPlacement(options.keyPrefix),
    available: () => redisBreaker.getState() === CircuitState.CLOSED,
    sharded: false,
    replicas: raw instanceof SentinelConnection ? replicaReads(raw, options.eventualReads) : null,
  };
}

/**
 * Reads a replica of the Sentinel primary may serve. Its buffers are proven by the primary's run
 * id, read every 5 s at most: after a failover a stale id only makes replicas miss (the new
 * primary's buffers carry the new one), and reads that pass min_seq never see less than it.
 */
function replicaReads(raw: SentinelConnection, eventual: boolean): ReplicaReads {
  let known: { runId: Promise<string>; until: number } | null = null;
  return {
    connection: raw,
    eventual,
    primaryRunId: () => {
      if (!known || known.until < Date.now()) {
        const runId = raw.info("server").then(([text]) => /run_id:(\w+)/.exec(text ?? "")?.[1] ?? "");
        known = { runId, until: Date.now() + 5_000 };
        runId.catch(() => {
          known = null;
        });
      }
      return known.runId;
    },
  };
}

async function buildShardedTier(raw: ShardedRedisConnection, options: HotTierOptions): Promise<HotTier> {
  const breakers = new Map<string, CircuitBreaker>();
  for (const name of raw.shards.keys()) {
    breakers.set(
      name,
      new CircuitBreaker({ ...options.breakerOptions, name: `redis:${name}`, isFailure: isRedisOutage }),
    );
  }
  const breakerOf = (name: string) => breakers.get(name) as CircuitBreaker;
  const connection = raw.wrap((name, shard) => new GuardedRedisConnection(shard, breakerOf(name)));
  const topology = await numberTopology(raw, options);
  const closed = (name: string) => topology.recorded && breakerOf(name).getState() === CircuitState.CLOSED;
  return {
    connection,
    servers: [...raw.shards].map(([name, shard]) => ({
      breaker: breakerOf(name),
      address: name,
      raw: shard,
    })),
    placement: (ref) => {
      // Without the numbered lists a key could name an epoch another process numbers otherwise.
      if (!topology.recorded) throw new RedisUnavailableError("the Redis shard lists are not read yet");
      return `${options.keyPrefix}:e${raw.map.runStart(sessionTag(ref))}`;
    },
    available: (ref) => (ref ? closed(raw.map.homeOf(sessionTag(ref))) : [...raw.shards.keys()].some(closed)),
    sharded: true,
    replicas: null,
  };
}

/**
 * Records this process's shard list in PostgreSQL and reads every list before it. While
 * PostgreSQL does not answer, Redis is not used (nothing could be acknowledged then anyway:
 * shards keep no outbox) and the recording is retried every 5 s.
 */
async function numberTopology(
  raw: ShardedRedisConnection,
  options: HotTierOptions,
): Promise<{ recorded: boolean }> {
  const state = { recorded: false };
  let retry: NodeJS.Timeout | undefined;
  options.closers.push(async () => clearTimeout(retry));
  const attempt = async () => {
    try {
      raw.map.adopt(await recordTopology(options.database, [...raw.shards.keys()]));
      state.recorded = true;
      options.logger.info?.(
        { epoch: raw.map.current.epoch, shards: raw.map.current.shards },
        "Redis shards: sessions placed by rendezvous hashing over this list",
      );
    } catch (error) {
      options.logger.warn(
        { error: String(error) },
        "could not record the Redis shard list in PostgreSQL; Redis is not used until it is",
      );
      retry = setTimeout(() => void attempt(), 5_000);
      retry.unref();
    }
  };
  await attempt();
  return state;
}
