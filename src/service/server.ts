import type { FastifyInstance } from "fastify";
import { type Logger as PinoLogger, pino } from "pino";
import { type MemoryEnvironment, readProductEnvironment } from "../environment.js";
import {
  connectRedisFromEnv,
  createMemoryManager,
  DEFAULT_DATA_DIR,
  databaseLabel,
} from "../manager/create-memory-manager.js";
import type { MemoryManager } from "../manager/memory-manager.js";
import { MemoryMetrics } from "../metrics/index.js";
import type { RedisConnection } from "../storage/redis-client.js";
import { createMemoryService } from "./app.js";
import { type ServiceConfig, serviceConfigFromEnv } from "./config.js";
import { gracefulShutdown } from "./shutdown.js";

type Environment = Record<string, string | undefined>;

export interface StartOptions {
  /** Variables to read settings from (default `process.env`). */
  env?: Environment;
  /** Where JSON log lines go (default stdout). */
  logDestination?: NodeJS.WritableStream;
  /** Stop on SIGTERM and SIGINT (default true). */
  handleSignals?: boolean;
}

export interface RunningService {
  app: FastifyInstance;
  memory: MemoryManager;
  config: ServiceConfig;
  /** e.g. `http://127.0.0.1:8080`. */
  url: string;
  /** Resolves when the service has stopped (after `stop()` or a signal). */
  stopped: Promise<void>;
  /**
   * Stops: refuses new requests, waits for the running ones, lets running summarization jobs
   * finish (up to the shutdown timeout), then closes the connections it opened.
   */
  stop(): Promise<void>;
}

/** What the service opened: closed on a failed start, and by `stop()`. */
interface Storage {
  memory: MemoryManager;
  redis: RedisConnection | null;
}

/**
 * What `swisper-memory serve` runs: reads the environment, opens Redis (when configured) and the
 * system of record, and listens. Without API keys it binds to loopback only and says so.
 */
export async function startMemoryService(options: StartOptions = {}): Promise<RunningService> {
  const env = options.env ?? process.env;
  const settings = readProductEnvironment(env);
  const config = serviceConfigFromEnv(env);
  const log = serviceLogger(config, options.logDestination ?? process.stdout);
  const metrics = new MemoryMetrics({ defaultMetrics: true });
  const storage = await openStorage(env, settings, log, metrics);
  const { memory, redis } = storage;
  const app = await createMemoryService({
    memory,
    apiKeys: config.apiKeys,
    bodyLimitBytes: config.bodyLimitBytes,
    rateLimitPerMinute: config.rateLimitPerMinute,
    redis,
    keyPrefix: settings.MEMORY_KEY_PREFIX ?? "mem",
    metrics,
    databaseKind: settings.DATABASE_URL ? "postgres" : "pglite",
    logger: log,
  });
  const url = await listen(app, config, storage);
  announce(log, url, config, settings, redis !== null);
  const { stop, stopped } = gracefulShutdown({
    app,
    memory,
    redis,
    log,
    timeoutMs: config.shutdownTimeoutMs,
    handleSignals: options.handleSignals ?? true,
  });
  return { app, memory, config, url, stopped, stop };
}

function serviceLogger(config: ServiceConfig, destination: NodeJS.WritableStream): PinoLogger {
  return pino(
    {
      level: config.logLevel,
      base: { service: "swisper-memory" },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
}

/** Redis (when configured), then the system of record; a failure closes what was opened. */
async function openStorage(
  env: Environment,
  settings: MemoryEnvironment,
  log: PinoLogger,
  metrics: MemoryMetrics,
): Promise<Storage> {
  let redis: RedisConnection | null = null;
  try {
    redis = await connectRedisFromEnv(env);
    if (!settings.DATABASE_URL) {
      // PGlite's first start creates a whole cluster: say so, or the wait looks like a hang.
      log.info(
        { dataDir: settings.MEMORY_DATA_DIR ?? DEFAULT_DATA_DIR },
        "opening the embedded database (the first start in an empty folder creates it, which takes seconds)",
      );
    }
    const memory = await createMemoryManager({
      env,
      redis: redis ?? false,
      logger: log,
      summarization: { onJob: metrics.onJob },
    });
    return { memory, redis };
  } catch (error) {
    await redis?.close();
    throw error;
  }
}

/** Listens and returns the URL; a failure closes the app and the storage. */
async function listen(app: FastifyInstance, config: ServiceConfig, storage: Storage): Promise<string> {
  try {
    const address = await app.listen({ port: config.port, host: config.host });
    return address.replace("[::1]", "localhost");
  } catch (error) {
    await app.close();
    await storage.memory.close();
    await storage.redis?.close();
    throw error;
  }
}

function announce(
  log: PinoLogger,
  url: string,
  config: ServiceConfig,
  settings: MemoryEnvironment,
  withRedis: boolean,
): void {
  if (!config.apiKeys.enabled) {
    log.warn(
      { host: config.host },
      "authentication is off: no MEMORY_API_KEYS configured, so the service listens on loopback only",
    );
  }
  log.info(
    {
      url,
      docs: `${url}/docs`,
      tenants: config.apiKeys.tenants,
      redis: withRedis,
      database: databaseLabel(settings),
      rate_limit_per_minute: config.rateLimitPerMinute,
    },
    `swisper-memory listening on ${url} (docs at ${url}/docs)`,
  );
}
