import type { FastifyInstance } from "fastify";
import pg from "pg";
import { pino } from "pino";
import {
  createMemoryManager,
  type MemoryManagerOptions,
} from "../../../src/manager/create-memory-manager.js";
import type { MemoryManager } from "../../../src/manager/memory-manager.js";
import type { SessionConfig } from "../../../src/manager/session-config.js";
import { CircuitState } from "../../../src/resilience/index.js";
import { createMemoryService } from "../../../src/service/index.js";
import { connectRedis, type RedisConnection } from "../../../src/storage/redis-client.js";
import { recordingLogger } from "../../support/fixtures.js";
import { PostgresClusterProcess, RedisServerProcess } from "../../support/processes.js";

// Servers of a fault test's own, and the managers and services it opens on them.

/** Fast breakers, probes and timeouts, so that faults are noticed and recovered from in a test's time. */
export const FAST_RESILIENCE = {
  failureThreshold: 2,
  recoveryTimeoutMs: 300,
  probeIntervalMs: 100,
  // The product's default: on a busy 2-core machine a shorter one times out healthy commands,
  // and the Redis hiccups it makes drop buffers the scenario needs (a second fault of its own).
  redisCommandTimeoutMs: 1000,
  databaseQueryTimeoutMs: 1000,
};

/** Small budgets, so that summaries commit (and trim the buffer) throughout the faults. */
export const SMALL_SESSIONS: Partial<SessionConfig> = {
  summary_trigger_tokens: 400,
  max_buffer_tokens: 600,
  keep_recent_tokens: 150,
};

/** Redis settings under which a write held only in Redis survives eviction and a crash. */
export const DURABLE_REDIS = ["--maxmemory-policy", "noeviction", "--appendonly", "yes"] as const;

/** The API specification's production Redis: any key may be evicted, nothing is persisted. */
export const EVICTING_REDIS = ["--maxmemory-policy", "allkeys-lru", "--appendonly", "no"] as const;

/** One test's own servers: a redis-server, a PostgreSQL cluster, and a pool to read the transcript. */
export class FaultServers {
  readonly redis: RedisServerProcess;
  readonly postgres: PostgresClusterProcess;
  readonly pool: pg.Pool;
  readonly keyPrefix: string;
  readonly #opened: { close(): Promise<void> }[] = [];

  private constructor(redis: RedisServerProcess, postgres: PostgresClusterProcess, keyPrefix: string) {
    this.redis = redis;
    this.postgres = postgres;
    this.keyPrefix = keyPrefix;
    // Only the checks use this pool, after the faults; it is not a manager's.
    this.pool = new pg.Pool({ connectionString: postgres.url, max: 4 });
    this.pool.on("error", () => {});
  }

  /** Starts both servers (`redisArgs` go to redis-server last) and applies the schema once. */
  static async start(redisArgs: readonly string[] = []): Promise<FaultServers> {
    const [redis, postgres] = await Promise.all([
      RedisServerProcess.start({ args: redisArgs }),
      PostgresClusterProcess.start(),
    ]);
    const servers = new FaultServers(redis, postgres, "fault");
    // Migrate once; the managers the test opens then find the schema in place.
    const migrator = await createMemoryManager({
      database: postgres.url,
      redis: false,
      logger: quietLogger(),
    });
    await migrator.close();
    return servers;
  }

  /**
   * A manager over these servers with fast breakers and small sessions, unless overridden.
   * Closed by `stop()` if the test did not close it.
   */
  async openManager(options: Partial<MemoryManagerOptions> = {}): Promise<MemoryManager> {
    const manager = await createMemoryManager({
      database: this.postgres.url,
      redis: this.redis.url,
      keyPrefix: this.keyPrefix,
      logger: quietLogger(),
      resilience: FAST_RESILIENCE,
      sessionDefaults: SMALL_SESSIONS,
      // A job cut off by a fault holds its lease until it expires: keep that short.
      summarization: { idleFinalizeAfterMs: 0, backoffBaseMs: 20, backoffMaxMs: 200, leaseMs: 2000 },
      ...options,
    });
    this.#opened.push(manager);
    return manager;
  }

  /**
   * The HTTP service in-process over a manager of these servers (rate limit off), sharing one
   * Redis connection between the manager and the service's health check.
   */
  async openService(
    options: Partial<MemoryManagerOptions> = {},
    logger?: pino.Logger,
  ): Promise<{ app: FastifyInstance; memory: MemoryManager; redis: RedisConnection }> {
    const redis = await connectRedis({
      url: this.redis.url,
      commandTimeoutMs: options.resilience?.redisCommandTimeoutMs ?? FAST_RESILIENCE.redisCommandTimeoutMs,
    });
    const memory = await this.openManager({ redis, ...(logger ? { logger } : {}), ...options });
    const app = await createMemoryService({
      memory,
      redis,
      keyPrefix: this.keyPrefix,
      rateLimitPerMinute: 0,
      databaseKind: "postgres",
      ...(logger ? { logger } : {}),
    });
    this.#opened.push(app, { close: () => redis.close() });
    return { app, memory, redis };
  }

  /**
   * Gets the manager's summarizer going (its worker thread starts cold) by summarizing a session
   * of its own, then erases it: summaries then commit during the faults, not only after them.
   */
  async warmUp(manager: MemoryManager): Promise<void> {
    const session = `warm-up-${Math.random().toString(36).slice(2)}`;
    for (let i = 0; i < 12; i++)
      await manager.addMessage(session, { role: "user", content: `warming up ${i} ${"word ".repeat(40)}` });
    await manager.waitForIdle();
    await manager.clearSessionMemory(session);
  }

  /** A raw connection to this test's Redis, for the test's own SCAN, DEL, SAVE, INFO. */
  async rawRedis(): Promise<RedisConnection> {
    const redis = await connectRedis({ url: this.redis.url, commandTimeoutMs: 5000 });
    this.#opened.push(redis);
    return redis;
  }

  /** Keys of this test's sessions with a suffix (`buf`, `meta`, `cfg`, `sum`, `outbox`). */
  async sessionKeys(redis: RedisConnection, suffix: string): Promise<string[]> {
    return redis.scanKeys(`${this.keyPrefix}:{default:*}:${suffix}`);
  }

  async stop(): Promise<void> {
    for (const opened of this.#opened.reverse()) await opened.close().catch(() => {});
    await this.pool.end().catch(() => {});
    await this.redis.stop();
    await this.postgres.stop();
  }
}

/** A logger that keeps warnings and errors without printing them (faults make many). */
export function quietLogger() {
  return recordingLogger();
}

/** A pino logger writing JSON lines into `lines` (for asserting what an outage logs). */
export function capturingPino(lines: string[]): pino.Logger {
  return pino(
    { level: "debug", base: { service: "swisper-memory" } },
    {
      write(line: string) {
        lines.push(line);
      },
    },
  );
}

/** Waits (bounded) until `condition` holds; throws naming `what` when it does not in time. */
export async function until(
  condition: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 15_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting until ${what}`);
    await sleep(25);
  }
}

/** Like `until`, but returns false instead of throwing when the time runs out. */
export async function within(
  condition: () => boolean | Promise<boolean>,
  timeoutMs: number,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) return false;
    await sleep(25);
  }
  return true;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Waits until a manager's breaker is CLOSED (both, by default). */
export function untilClosed(
  manager: MemoryManager,
  which: ("redis" | "postgres")[] = ["redis", "postgres"],
  timeoutMs = 20_000,
): Promise<void> {
  return until(
    () => which.every((name) => manager.circuitBreaker[name].getState() === CircuitState.CLOSED),
    `the ${which.join(" and ")} breaker(s) close`,
    timeoutMs,
  );
}
