import type { FastifyInstance } from "fastify";
import { type Logger as PinoLogger, pino } from "pino";
import { readProductEnvironment } from "../environment.js";
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

/**
 * What `swisper-memory serve` runs: reads the environment, opens Redis (when configured) and the
 * system of record, and listens. Without API keys it binds to loopback only and says so.
 */
export async function startMemoryService(options: StartOptions = {}): Promise<RunningService> {
  const env = options.env ?? process.env;
  const settings = readProductEnvironment(env);
  const config = serviceConfigFromEnv(env);
  const log: PinoLogger = pino(
    {
      level: config.logLevel,
      base: { service: "swisper-memory" },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    options.logDestination ?? process.stdout,
  );

  const metrics = new MemoryMetrics({ defaultMetrics: true });
  let redis: RedisConnection | null = null;
  let memory: MemoryManager | null = null;
  try {
    redis = await connectRedisFromEnv(env);
    if (!settings.DATABASE_URL) {
      // PGlite's first start creates a whole cluster: say so, or the wait looks like a hang.
      log.info(
        { dataDir: settings.MEMORY_DATA_DIR ?? DEFAULT_DATA_DIR },
        "opening the embedded database (the first start in an empty folder creates it, which takes seconds)",
      );
    }
    memory = await createMemoryManager({
      env,
      redis: redis ?? false,
      logger: log,
      summarization: { onJob: metrics.onJob },
    });
  } catch (error) {
    await memory?.close();
    await redis?.close();
    throw error;
  }
  const keyPrefix = settings.MEMORY_KEY_PREFIX ?? "mem";
  const app = await createMemoryService({
    memory,
    apiKeys: config.apiKeys,
    bodyLimitBytes: config.bodyLimitBytes,
    rateLimitPerMinute: config.rateLimitPerMinute,
    redis,
    keyPrefix,
    metrics,
    databaseKind: settings.DATABASE_URL ? "postgres" : "pglite",
    logger: log,
  });

  let address: string;
  try {
    address = await app.listen({ port: config.port, host: config.host });
  } catch (error) {
    await app.close();
    await memory.close();
    await redis?.close();
    throw error;
  }
  const url = address.replace("[::1]", "localhost");
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
      redis: redis !== null,
      database: databaseLabel(settings),
      rate_limit_per_minute: config.rateLimitPerMinute,
    },
    `swisper-memory listening on ${url} (docs at ${url}/docs)`,
  );

  let resolveStopped: () => void = () => {};
  const stopped = new Promise<void>((resolve) => {
    resolveStopped = resolve;
  });
  let stopping: Promise<void> | null = null;
  const openMemory = memory;

  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      const started = Date.now();
      log.info({ timeout_ms: config.shutdownTimeoutMs }, "shutting down: draining requests");
      // A shutdown that hangs (a request that never ends) must not keep the process forever.
      const deadline = setTimeout(() => {
        log.error({}, "shutdown timed out; exiting");
        process.exit(1);
      }, config.shutdownTimeoutMs + 5000);
      deadline.unref();
      try {
        await app.close();
        const remaining = Math.max(0, config.shutdownTimeoutMs - (Date.now() - started));
        const idle = await settlesWithin(openMemory.waitForIdle(), remaining);
        log.info(
          { summarization_idle: idle },
          idle ? "summarization jobs drained" : "summarization jobs cut short",
        );
        await openMemory.close();
        await redis?.close();
        log.info({ ms: Date.now() - started }, "stopped");
      } finally {
        clearTimeout(deadline);
        removeSignalHandlers();
        resolveStopped();
      }
    })();
    return stopping;
  };

  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      log.warn({ signal }, "second signal: exiting now");
      process.exit(1);
    }
    log.info({ signal }, "signal received");
    stop().catch((error: unknown) => {
      log.error({ err: error }, "shutdown failed");
      process.exitCode = 1;
    });
  };
  const removeSignalHandlers = () => {
    process.off("SIGTERM", onSignal);
    process.off("SIGINT", onSignal);
  };
  if (options.handleSignals ?? true) {
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
  }

  return { app, memory, config, url, stopped, stop };
}

async function settlesWithin(promise: Promise<unknown>, timeoutMs: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), timeoutMs);
  });
  try {
    return await Promise.race([promise.then(() => true as const), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
