/**
 * Sharding across standalone Redis instances (REDIS_URLS). Each session lives on one shard,
 * chosen by rendezvous hashing of its hash tag over the shard list: adding or removing one of N
 * shards moves about 1/N of the sessions, and every process with the same list agrees without
 * talking to the others.
 *
 * The shard lists a deployment has run with are numbered (epochs, kept in PostgreSQL). A session's
 * keys name the epoch since which its current shard has been its home without a break
 * (`mem:e3:{tenant:session}:buf`), and a key is routed by the list of the epoch it names. So a
 * session that moves away and back gets new key names: the keys its shard still holds from
 * before never serve it (they expire with their TTL), while sessions that did not move keep
 * theirs. PostgreSQL is the system of record: a moved session is rebuilt from the transcript.
 *
 * The hash is FNV-1a with murmur3's finalizer, by hand: rendezvous hashing scores every shard
 * for every key, so it wants a fast, allocation-free, well-mixed 32-bit hash of short strings;
 * node:crypto would allocate a Hash object per score.
 */
import type { Queryable } from "./database.js";
import type { RedisConnection } from "./redis-client.js";

/** One shard list and its number. */
export interface Topology {
  epoch: number;
  /** The shards' names (host:port/db), in the order given. */
  shards: readonly string[];
}

function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let index = 0; index < text.length; index++) {
    hash ^= text.charCodeAt(index);
    hash = Math.imul(hash, 0x01000193);
  }
  // murmur3 fmix32: FNV alone leaves the high bits poorly mixed for similar inputs.
  hash ^= hash >>> 16;
  hash = Math.imul(hash, 0x85ebca6b);
  hash ^= hash >>> 13;
  hash = Math.imul(hash, 0xc2b2ae35);
  hash ^= hash >>> 16;
  return hash >>> 0;
}

/** The shard with the highest score for `tag` (ties, which need equal hashes, go to the first). */
export function rendezvousShard(tag: string, shards: readonly string[]): string {
  let best = "";
  let bestScore = -1;
  for (const shard of shards) {
    const score = fnv1a(`${shard}\u0000${tag}`);
    if (score > bestScore) {
      best = shard;
      bestScore = score;
    }
  }
  return best;
}

/** The hash tag of a key (what is between its first `{` and the next `}`), else the whole key. */
export function hashTagOf(key: string): string {
  const open = key.indexOf("{");
  const close = open < 0 ? -1 : key.indexOf("}", open + 1);
  return close > open + 1 ? key.slice(open + 1, close) : key;
}

/** The epoch a session key names (`...:e<epoch>:{...}`), or null. */
export function epochOfKey(key: string): number | null {
  const open = key.indexOf("{");
  if (open < 0) return null;
  const match = /:e(\d+):$/.exec(key.slice(0, open));
  return match ? Number(match[1]) : null;
}

/** The shard lists in order of epoch, the last being this process's. */
export class ShardMap {
  #history: Topology[];

  constructor(current: readonly string[]) {
    this.#history = [{ epoch: 0, shards: current }];
  }

  get current(): Topology {
    return this.#history.at(-1) as Topology;
  }

  /** Takes the epochs read from PostgreSQL; the last must be this process's list. */
  adopt(history: readonly Topology[]): void {
    if (history.length > 0) this.#history = [...history];
  }

  /** The shard that is `tag`'s home in `epoch` (default: now). An unknown epoch counts as now. */
  homeOf(tag: string, epoch?: number): string {
    const topology =
      epoch === undefined ? this.current : (this.#history.find((t) => t.epoch === epoch) ?? this.current);
    return rendezvousShard(tag, topology.shards);
  }

  /** The first epoch since which `tag`'s home has been its home now without a break. */
  runStart(tag: string): number {
    const home = this.homeOf(tag);
    let start = this.current.epoch;
    for (let index = this.#history.length - 2; index >= 0; index--) {
      const topology = this.#history[index] as Topology;
      if (rendezvousShard(tag, topology.shards) !== home) break;
      start = topology.epoch;
    }
    return start;
  }
}

/**
 * Records this process's shard list as the newest epoch (unless it already is) and returns every
 * epoch, oldest first. Two processes starting with the same new list at once may both add one:
 * equal lists in a row change no session's home.
 */
export async function recordTopology(db: Queryable, shards: readonly string[]): Promise<Topology[]> {
  await db.query(
    `INSERT INTO memory_redis_topologies (shards)
     SELECT $1::text[]
     WHERE (SELECT shards FROM memory_redis_topologies ORDER BY epoch DESC LIMIT 1) IS DISTINCT FROM $1::text[]`,
    [shards],
  );
  const { rows } = await db.query<{ epoch: number; shards: string[] }>(
    "SELECT epoch::int AS epoch, shards FROM memory_redis_topologies ORDER BY epoch",
  );
  return rows.map((row) => ({ epoch: row.epoch, shards: row.shards }));
}

/**
 * Several standalone Redis instances as one connection: a command is sent to the shard its key
 * routes to (by the epoch the key names, else by the current list); a command without a key
 * (PING, CONFIG GET) goes to every shard and fails when one does.
 */
export class ShardedRedisConnection implements RedisConnection {
  readonly map: ShardMap;
  readonly shards: ReadonlyMap<string, RedisConnection>;

  constructor(shards: ReadonlyMap<string, RedisConnection>, map: ShardMap) {
    this.shards = shards;
    this.map = map;
  }

  /** The shard a key lives on. */
  shardOf(key: string): string {
    return this.map.homeOf(hashTagOf(key), epochOfKey(key) ?? undefined);
  }

  /** The same shards, each wrapped (a circuit breaker each), routed by the same map. */
  wrap(wrapShard: (name: string, shard: RedisConnection) => RedisConnection): ShardedRedisConnection {
    const wrapped = new Map([...this.shards].map(([name, shard]) => [name, wrapShard(name, shard)]));
    return new ShardedRedisConnection(wrapped, this.map);
  }

  get isReady(): boolean {
    return [...this.shards.values()].every((shard) => shard.isReady);
  }

  onReconnect(listener: () => void): void {
    for (const shard of this.shards.values()) shard.onReconnect(listener);
  }

  async send(args: readonly string[], route?: { key?: string; readonly?: boolean }): Promise<unknown> {
    if (route?.key !== undefined) return this.#shard(this.shardOf(route.key)).send(args, route);
    const replies = await Promise.all([...this.shards.values()].map((shard) => shard.send(args)));
    return replies[0];
  }

  async info(section: string): Promise<string[]> {
    const texts = await Promise.all([...this.shards.values()].map((shard) => shard.info(section)));
    return texts.flat();
  }

  async scanKeys(pattern: string): Promise<string[]> {
    const keys = await Promise.all([...this.shards.values()].map((shard) => shard.scanKeys(pattern)));
    return keys.flat();
  }

  async close(): Promise<void> {
    await Promise.all([...this.shards.values()].map((shard) => shard.close()));
  }

  #shard(name: string): RedisConnection {
    const shard = this.shards.get(name);
    if (!shard) throw new Error(`no connection to Redis shard ${name}`);
    return shard;
  }
}
