import type { FastifyRateLimitStore, FastifyRateLimitStoreCtor } from "@fastify/rate-limit";
import type { Logger } from "../logger.js";
import type { RedisConnection } from "../storage/redis-client.js";
import { addToRateWindow } from "./lua/rate-limit.js";

type Callback = (error: Error | null, result?: { current: number; ttl: number }) => void;

/** Default time between two syncs of the counts with Redis, in ms. */
export const DEFAULT_RATE_LIMIT_SYNC_MS = 100;

export interface RateLimitStoreOptions {
  /** Where the counters live, shared by every instance of the service. */
  redis: RedisConnection;
  /** Prefix of the counter keys (the manager's key prefix; default "mem"). */
  keyPrefix?: string;
  /** Told once when Redis fails and the store counts in this process alone. */
  logger?: Logger;
  /**
   * Whether Redis is worth asking (default: the connection is ready). The service passes the
   * manager's Redis breaker too, so that an outage costs no sync a timeout.
   */
  redisUsable?: () => boolean;
  /**
   * How often this instance adds its counts to the shared windows in Redis and reads the other
   * instances' back, in ms (default 100). Across instances a limit can be exceeded by what the
   * others counted since their last sync.
   */
  syncIntervalMs?: number;
  /** After a failed sync, how long to count in this process before asking Redis again, in ms (default 1000). */
  retryAfterMs?: number;
}

/** One key's fixed window as this instance sees it. */
interface Window {
  endsAt: number;
  /** The shared count at the last sync (every instance's requests, ours included). */
  shared: number;
  /** Requests counted here since the last sync. */
  pending: number;
  /** When the last sync was sent (0: never). */
  syncedAt: number;
  windowMs: number;
}

/**
 * A store for @fastify/rate-limit whose limits are shared by every instance behind a load
 * balancer, without a Redis round trip on most requests: requests are counted in this process
 * and the counts are added to fixed windows in Redis every `syncIntervalMs` (one Lua call per
 * active key, pipelined), which answer with every instance's total. A key's first request after
 * an interval without a sync waits for one, so each decision sees the shared count as of at most
 * one interval ago plus this instance's own requests since; one instance alone counts exactly.
 * While Redis is away (not ready, its breaker open, or a sync just failed), counting goes on here
 * and the counts are added once Redis answers.
 */
export function redisRateLimitStore(options: RateLimitStoreOptions): FastifyRateLimitStoreCtor {
  const windows = new Map<string, Window>();
  return countingStore(windows, syncWithRedis(options, windows), options.syncIntervalMs);
}

/** What the store asks of the sync: see `syncWithRedis`. */
interface RedisSync {
  /** Adds the window's pending count in Redis and reads the shared total back; false on failure. */
  syncWindow(key: string, window: Window): Promise<boolean>;
  /** Syncs every window with pending counts once the interval has passed. */
  scheduleSync(): void;
  /** Whether Redis is worth asking now: usable, and no sync failed within `retryAfterMs`. */
  redisAnswers(): boolean;
}

/**
 * Keeps the windows in step with Redis: one Lua call per window with pending counts, pipelined,
 * every interval. A failed sync keeps its counts pending and the store counts here alone for
 * `retryAfterMs`.
 */
function syncWithRedis(options: RateLimitStoreOptions, windows: Map<string, Window>): RedisSync {
  const {
    redis,
    keyPrefix = "mem",
    logger,
    redisUsable = () => redis.isReady,
    syncIntervalMs = DEFAULT_RATE_LIMIT_SYNC_MS,
    retryAfterMs = 1000,
  } = options;
  const fallback = localFallback(logger, retryAfterMs);
  let timer: NodeJS.Timeout | null = null;

  function scheduleSync(): void {
    if (timer) return;
    timer = setTimeout(() => {
      timer = null;
      void sync();
    }, syncIntervalMs);
    // Pending counts never keep the process alive.
    timer.unref();
  }

  /** Adds the window's pending count in Redis and reads the shared total back; false on failure. */
  async function syncWindow(key: string, window: Window): Promise<boolean> {
    const added = window.pending;
    window.pending = 0;
    window.syncedAt = Date.now();
    try {
      const shared = await addToRateWindow(redis, `${keyPrefix}:ratelimit:{${key}}`, {
        windowMs: window.windowMs,
        added,
      });
      window.shared = shared.count;
      window.endsAt = Date.now() + shared.ttlMs;
      fallback.answered();
      return true;
    } catch (error) {
      window.pending += added;
      fallback.failed(error);
      scheduleSync();
      return false;
    }
  }

  const redisAnswers = () => fallback.retryDue() && redisUsable();

  async function sync(): Promise<void> {
    if (!redisAnswers()) {
      if (hasPending(windows)) scheduleSync();
      return;
    }
    const now = Date.now();
    const calls: Promise<boolean>[] = [];
    for (const [key, window] of windows) {
      if (window.endsAt <= now) windows.delete(key);
      // Issued in one tick: the client sends them as one pipeline.
      else if (window.pending > 0) calls.push(syncWindow(key, window));
    }
    await Promise.all(calls);
    if (hasPending(windows)) scheduleSync();
  }

  return { syncWindow, scheduleSync, redisAnswers };
}

/**
 * While Redis fails, the store counts in this process alone: when to ask Redis again, and one
 * warning when that starts and one when Redis answers again (not one per failed sync).
 */
function localFallback(logger: Logger | undefined, retryAfterMs: number) {
  let degraded = false;
  let localUntil = 0;
  return {
    retryDue: () => Date.now() >= localUntil,
    failed(error: unknown): void {
      localUntil = Date.now() + retryAfterMs;
      if (degraded) return;
      degraded = true;
      logger?.warn(
        { error: String(error) },
        "Redis did not answer; rate limits are counted in this process alone",
      );
    },
    answered(): void {
      if (!degraded) return;
      degraded = false;
      logger?.warn({}, "rate limits are shared through Redis again");
    },
  };
}

/**
 * The store @fastify/rate-limit calls: counts each request in its key's window here and answers
 * with the shared count as of the last sync plus this instance's requests since.
 */
function countingStore(
  windows: Map<string, Window>,
  { syncWindow, scheduleSync, redisAnswers }: RedisSync,
  syncIntervalMs = DEFAULT_RATE_LIMIT_SYNC_MS,
): FastifyRateLimitStoreCtor {
  return class SyncedRateLimitStore implements FastifyRateLimitStore {
    incr(key: string, callback: Callback, timeWindow: number): void {
      const now = Date.now();
      let window = windows.get(key);
      if (!window || window.endsAt <= now) {
        if (windows.size >= 10_000) prune(windows, now);
        window = { endsAt: now + timeWindow, shared: 0, pending: 0, syncedAt: 0, windowMs: timeWindow };
        windows.set(key, window);
      }
      window.pending++;
      if (now - window.syncedAt > syncIntervalMs && redisAnswers()) {
        // A key this instance has not synced lately (new, or idle here while other instances
        // used it): this request waits for the shared count, so no view is older than one interval.
        const current = window;
        void syncWindow(key, current).then(() =>
          callback(null, { current: current.shared + current.pending, ttl: current.endsAt - Date.now() }),
        );
        return;
      }
      scheduleSync();
      callback(null, { current: window.shared + window.pending, ttl: window.endsAt - now });
    }

    child(): FastifyRateLimitStore {
      return this;
    }
  };
}

function hasPending(windows: Map<string, Window>): boolean {
  for (const window of windows.values()) if (window.pending > 0) return true;
  return false;
}

function prune(windows: Map<string, Window>, now: number): void {
  for (const [key, window] of windows) if (window.endsAt <= now) windows.delete(key);
  // Still full of live windows: start over rather than grow without bound.
  if (windows.size >= 10_000) windows.clear();
}
