import type { FastifyRateLimitStore, FastifyRateLimitStoreCtor } from "@fastify/rate-limit";
import type { Logger } from "../logger.js";
import { LuaScript } from "../storage/lua-script.js";
import type { RedisConnection } from "../storage/redis-client.js";

type Callback = (error: Error | null, result?: { current: number; ttl: number }) => void;

const rateLimitScript = new LuaScript(new URL("./lua/rate-limit-1.lua", import.meta.url));

export interface RateLimitStoreOptions {
  /** Where the counters live, shared by every instance of the service. */
  redis: RedisConnection;
  /** Prefix of the counter keys (the manager's key prefix; default "mem"). */
  keyPrefix?: string;
  /** Told once when Redis fails and the store falls back to counting in this process. */
  logger?: Logger;
  /**
   * Whether Redis is worth asking (default: the connection is ready). The service passes the
   * manager's Redis breaker too, so that an outage costs no request a timeout here.
   */
  redisUsable?: () => boolean;
  /** After a failed call, how long to count in this process before asking Redis again, in ms (default 1000). */
  retryAfterMs?: number;
}

/**
 * A store for @fastify/rate-limit that counts in Redis, so that every instance behind a load
 * balancer shares one limit per key: one Lua call per request (INCR and the window's expiry
 * together). While Redis is away (not ready, its breaker open, or a call just failed), it counts in
 * this process instead of failing or delaying requests.
 */
export function redisRateLimitStore(options: RateLimitStoreOptions): FastifyRateLimitStoreCtor {
  const {
    redis,
    keyPrefix = "mem",
    logger,
    redisUsable = () => redis.isReady,
    retryAfterMs = 1000,
  } = options;
  const fallback = new LocalWindows();
  let degraded = false;
  let localUntil = 0;

  async function count(key: string, windowMs: number): Promise<{ current: number; ttl: number }> {
    const redisKey = `${keyPrefix}:ratelimit:{${key}}`;
    const [current, ttl] = (await rateLimitScript.run(redis, [redisKey], [String(windowMs)])) as [
      number,
      number,
    ];
    return { current: Number(current), ttl: Number(ttl) };
  }

  return class RedisRateLimitStore implements FastifyRateLimitStore {
    incr(key: string, callback: Callback, timeWindow: number): void {
      if (Date.now() < localUntil || !redisUsable()) {
        callback(null, fallback.incr(key, timeWindow));
        return;
      }
      count(key, timeWindow).then(
        (result) => {
          if (degraded) {
            degraded = false;
            logger?.warn({}, "rate limiting counts in Redis again");
          }
          callback(null, result);
        },
        (error: unknown) => {
          localUntil = Date.now() + retryAfterMs;
          if (!degraded) {
            degraded = true;
            logger?.warn(
              { error: String(error) },
              "Redis did not answer; rate limiting counts in this process",
            );
          }
          callback(null, fallback.incr(key, timeWindow));
        },
      );
    }

    child(): FastifyRateLimitStore {
      return this;
    }
  };
}

/** Fixed windows in process memory (the fallback while Redis is away). */
class LocalWindows {
  readonly #windows = new Map<string, { count: number; endsAt: number }>();

  incr(key: string, windowMs: number): { current: number; ttl: number } {
    const now = Date.now();
    let window = this.#windows.get(key);
    if (!window || window.endsAt <= now) {
      if (this.#windows.size >= 10_000) this.#prune(now);
      window = { count: 0, endsAt: now + windowMs };
      this.#windows.set(key, window);
    }
    window.count++;
    return { current: window.count, ttl: window.endsAt - now };
  }

  #prune(now: number): void {
    for (const [key, window] of this.#windows) if (window.endsAt <= now) this.#windows.delete(key);
    // Still full of live windows: start over rather than grow without bound.
    if (this.#windows.size >= 10_000) this.#windows.clear();
  }
}
