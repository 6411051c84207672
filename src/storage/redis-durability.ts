import type { RedisConnection } from "./redis-client.js";
import { infoFields } from "./redis-settings.js";

/**
 * Whether Redis keeps what it is given, read from INFO on every primary: the outbox (writes held
 * while PostgreSQL is away) may only live where a write cannot be evicted or lost on a restart.
 */
export interface RedisDurability {
  /** True when every primary persists to an append-only file and never evicts the outbox. */
  durable: boolean;
  /** What was found, for the start-up log: policy, maxmemory, append-only file, per primary. */
  servers: { maxmemory_policy: string; maxmemory: number; aof_enabled: boolean }[];
  /** Why it is not durable, in words an operator can act on; empty when durable. */
  reasons: string[];
}

/**
 * Reads the settings. A server that does not answer, or an INFO without the fields, counts as not
 * durable: an acknowledgement must mean durable, so doubt means no outbox.
 *
 * Durable: `appendonly yes` (a restarted or crashed Redis replays its log; with `appendfsync
 * everysec` a machine crash may still lose the last second) and an eviction policy that never
 * touches the outbox: no `maxmemory`, `noeviction`, or a `volatile-*` policy (the outbox keys carry
 * no TTL, so volatile policies never pick them).
 */
export async function readRedisDurability(redis: RedisConnection): Promise<RedisDurability> {
  let memory: string[];
  let persistence: string[];
  try {
    [memory, persistence] = await Promise.all([redis.info("memory"), redis.info("persistence")]);
  } catch (error) {
    return { durable: false, servers: [], reasons: [`Redis did not answer INFO: ${String(error)}`] };
  }
  const servers = memory.map((text, index) => {
    const fields = { ...infoFields(text), ...infoFields(persistence[index] ?? "") };
    return {
      maxmemory_policy: fields.maxmemory_policy ?? "unknown",
      maxmemory: Number(fields.maxmemory ?? Number.NaN),
      aof_enabled: fields.aof_enabled === "1",
    };
  });
  const reasons: string[] = [];
  for (const server of servers) {
    if (!server.aof_enabled) reasons.push("appendonly is off: a restart would lose the outbox");
    const evicts =
      !server.maxmemory_policy.startsWith("volatile-") && server.maxmemory_policy !== "noeviction";
    if (evicts && server.maxmemory !== 0) {
      reasons.push(`maxmemory-policy ${server.maxmemory_policy} with a maxmemory may evict the outbox`);
    }
  }
  if (servers.length === 0) reasons.push("INFO named no server");
  return { durable: reasons.length === 0, servers, reasons: [...new Set(reasons)] };
}
