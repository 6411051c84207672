import { RedisBufferStore } from "../buffer/redis-buffer-store.js";
import { SqlBufferStore } from "../buffer/sql-buffer-store.js";
import { TieredBufferStore } from "../buffer/tiered-buffer-store.js";
import { type MemoryEnvironment, readMemoryEnvironment } from "../environment.js";
import { type Logger, stderrLogger } from "../logger.js";
import { DEFAULT_MESSAGE_LIMITS } from "../messages/validate.js";
import { GuardedDatabase, GuardedRedisConnection, isRedisOutage } from "../resilience/guarded-connections.js";
import {
  addressOf,
  assessHealth,
  CircuitBreaker,
  CircuitState,
  errorCode,
  HealthMonitor,
  logTransitions,
} from "../resilience/index.js";
import { startRecoveryProbe } from "../resilience/recovery-probe.js";
import {
  type Database,
  isConnectionError,
  PgliteDatabase,
  PostgresDatabase,
  type PostgresDatabaseOptions,
} from "../storage/database.js";
import { migrate } from "../storage/migrator.js";
import { connectRedis, type RedisConnection } from "../storage/redis-client.js";
import { type RedisDurability, readRedisDurability } from "../storage/redis-durability.js";
import { SessionRecords } from "../storage/session-records.js";
import { Transcript } from "../storage/transcript.js";
import {
  type CreateSummarizerOptions,
  createSummarizer,
  DEFAULT_OPENAI_BASE_URL,
  readSummarizerEnv,
  type Summarizer,
  SummarizerAbortedError,
  WorkerSummarizer,
} from "../summarizer/index.js";
import { RedisLeaseManager, SqlLeaseManager } from "../summary/leases.js";
import { SummaryStore } from "../summary/summary-store.js";
import { TokenCounter } from "../tokens/index.js";
import { type ManagerBreakers, type ManagerResources, MemoryManager } from "./memory-manager.js";
import {
  DEFAULT_SESSION_CONFIG,
  resolveSessionConfig,
  type SessionConfig,
  SessionConfigRecords,
} from "./session-config.js";
import {
  type JobReport,
  LeaseLostError,
  runSummarizationJob,
  type SummarizationJobDependencies,
} from "./summarization-job.js";
import { SummarizationScheduler } from "./summarization-scheduler.js";

type Environment = Record<string, string | undefined>;

export interface ResilienceOptions {
  /** Failures in a row that open a breaker (default 5). */
  failureThreshold?: number;
  /** Milliseconds an open breaker waits before a trial call (default 60000). */
  recoveryTimeoutMs?: number;
  /** Milliseconds a Redis command may take before it counts as a failure (default 1000). */
  redisCommandTimeoutMs?: number;
  /** Milliseconds between probes of a dependency whose breaker is open (default 1000). */
  probeIntervalMs?: number;
  /** Milliseconds a PostgreSQL query may take before it counts as a failure (default 10000). */
  databaseQueryTimeoutMs?: number;
}

export interface SummarizationOptions {
  /** Jobs running at once in this process (default 2). */
  concurrency?: number;
  /** First retry delay after a failed job, in ms; doubles per failure up to `backoffMaxMs` (default 1000). */
  backoffBaseMs?: number;
  /** Longest retry delay, in ms (default 60000). */
  backoffMaxMs?: number;
  /** Failures in a row before a session's job waits for the session's next write (default 8). */
  maxAttempts?: number;
  /** How long a job's lease lasts without renewal, in ms (default 30000; renewed every third). */
  leaseMs?: number;
  /**
   * A session idle this long, in ms, gets a final summary of everything unsummarized (default
   * `MEMORY_IDLE_FINALIZE_SECONDS` x 1000, else 24 h; 0 turns idle finalization off).
   */
  idleFinalizeAfterMs?: number;
  /** How often to look for idle sessions, in ms (default 60000). */
  idleCheckIntervalMs?: number;
  /**
   * Backpressure: a write that leaves more than `max_buffer_messages` of its session's messages in
   * neither the buffer nor a summary waits for the session's summarization step before it is
   * acknowledged, at most this long, in ms (default 5000). See README, "Summarization lifecycle".
   */
  backpressureTimeoutMs?: number;
  /** Told about every finished job step (for metrics and benchmarks). */
  onJob?(outcome: JobReport, elapsedMs: number): void;
}

export interface MemoryManagerOptions {
  /** Variables to read settings from (default `process.env`). */
  env?: Environment;
  /**
   * Redis: a URL, a connection you own (never closed by the manager), or `false` for none.
   * Default: `REDIS_URL`, else `REDIS_HOST`/`REDIS_PORT`/`REDIS_DB`/`REDIS_PASSWORD`; none when unset.
   */
  redis?: string | RedisConnection | false;
  /** Treat the Redis URL as a Redis Cluster node (default: `REDIS_CLUSTER=1`). */
  redisCluster?: boolean;
  /**
   * System of record: a PostgreSQL URL or a Database you own. Default: `DATABASE_URL`, else
   * embedded PGlite in `dataDir`.
   */
  database?: string | Database;
  /** Folder of the embedded database (default `MEMORY_DATA_DIR`, else `./.swisper-memory`). */
  dataDir?: string;
  /** Tenant of the returned manager (default "default"); `forTenant` gives others. */
  tenant?: string;
  /** Model whose tokens are counted (default `MEMORY_TOKENIZER_MODEL`, else "gpt-4o"). */
  model?: string;
  /** Prefix of every Redis key (default `MEMORY_KEY_PREFIX`, else "mem"). */
  keyPrefix?: string;
  /** Defaults of every session's config (see SessionConfig for each key's default). */
  sessionDefaults?: Partial<SessionConfig>;
  /** Largest message content in UTF-8 bytes (default 262144). */
  maxContentBytes?: number;
  /** Largest whole message as stored (content, tool calls, metadata), UTF-8 bytes of its JSON (default 524288). */
  maxMessageBytes?: number;
  /** Largest saved SwisperContext in UTF-8 bytes (default 1048576). */
  maxContextBytes?: number;
  /** Seconds the Redis copy of the current summary lives (default 86400). */
  summaryCacheTtlSeconds?: number;
  /** Entries in the token-count cache (default 10000). */
  tokenCacheSize?: number;
  /**
   * The summarizer: one you built, or how to build one (see `createSummarizer`). Default:
   * `MEMORY_SUMMARIZER` and the OpenAI variables, else the offline extractive summarizer. An
   * extractive summarizer built here runs on a worker thread (`WorkerSummarizer`), off the
   * event loop that serves requests; one you pass in runs where it is.
   */
  summarizer?: Summarizer | CreateSummarizerOptions;
  /** Summarization: jobs at once, retry backoff, lease time, idle finalization (defaults below). */
  summarization?: SummarizationOptions;
  /** Circuit breakers and timeouts (defaults below). */
  resilience?: ResilienceOptions;
  /** Apply pending schema migrations at start-up (default true; `MEMORY_AUTO_MIGRATE=false` turns it off). */
  autoMigrate?: boolean;
  /** Where warnings go (default: JSON lines on stderr). */
  logger?: Logger;
}

/**
 * Builds a MemoryManager from options and the environment. With nothing configured it runs on
 * embedded PGlite alone; with Redis it keeps the hot tier there. Closes only what it created.
 */
export async function createMemoryManager(options: MemoryManagerOptions = {}): Promise<MemoryManager> {
  const env = options.env ?? process.env;
  const settings = readMemoryEnvironment(env);
  const logger = options.logger ?? stderrLogger;
  const defaults = resolveSessionConfig(options.sessionDefaults ?? {}, DEFAULT_SESSION_CONFIG);
  const closers: (() => Promise<void>)[] = [];

  try {
    const resilience = options.resilience ?? {};
    const opened = openDatabase(options, env, {
      logger,
      ...definedOnly({ queryTimeoutMs: resilience.databaseQueryTimeoutMs }),
    });
    if (opened.owned) closers.push(() => opened.database.close());
    const autoMigrate = options.autoMigrate ?? settings.MEMORY_AUTO_MIGRATE ?? true;
    if (autoMigrate) {
      const run = await migrate(opened.database);
      if (run.error) throw run.error;
    }

    const breakerOptions = {
      logger,
      ...definedOnly({
        failureThreshold: resilience.failureThreshold,
        recoveryTimeoutMs: resilience.recoveryTimeoutMs,
      }),
    };
    const breakers: ManagerBreakers = {
      redis: new CircuitBreaker({ name: "redis", isFailure: isRedisOutage, ...breakerOptions }),
      postgres: new CircuitBreaker({ name: "postgres", isFailure: isConnectionError, ...breakerOptions }),
      summarizer: new CircuitBreaker({
        name: "summarizer",
        // A job cancelled by shutdown or a lost lease says nothing about the summarizer.
        isFailure: (error) => !(error instanceof SummarizerAbortedError || error instanceof LeaseLostError),
        ...breakerOptions,
      }),
    };
    const db = { database: new GuardedDatabase(opened.database, breakers.postgres) };

    const opening = await openRedis(options, env, resilience.redisCommandTimeoutMs);
    if (opening.owned && opening.connection) closers.push(() => opening.connection!.close());
    if (opening.connection && !opening.connection.isReady) {
      // The PING's error names the address, the variable and the socket's code (ECONNREFUSED...).
      const failure: unknown = await opening.connection.send(["PING"]).then(
        () => null,
        (error: unknown) => error,
      );
      const reason = failure instanceof Error ? failure.message : "it answered just now";
      logger.warn(
        { address: opening.address, code: failure === null ? null : errorCode(failure) },
        `Redis does not answer yet; serving from the system of record until it does: ${reason}`,
      );
    }
    const redis = {
      connection: opening.connection ? new GuardedRedisConnection(opening.connection, breakers.redis) : null,
    };
    // Whether Redis keeps an outbox durably: read from its settings below, at start-up and after.
    const durability = { durable: false };
    const outboxDurable = () => durability.durable;
    const health = new HealthMonitor({
      components: redis.connection ? ["redis", "postgres", "summarizer"] : ["postgres", "summarizer"],
      canServe: (statuses) =>
        assessHealth({ breakers: statuses, outboxDurable: outboxDurable() }).canAcknowledgeWrites,
      logger,
    });
    // Without Redis its breaker guards nothing: attached, it would report a Redis that is "up".
    const guarded: [CircuitBreaker, string | null][] = [
      [breakers.postgres, opened.address],
      [breakers.summarizer, summarizerAddress(options.summarizer, env)],
    ];
    if (redis.connection) guarded.push([breakers.redis, opening.address]);
    for (const [breaker, address] of guarded) {
      health.attachBreaker(breaker);
      logTransitions(breaker, { logger, address });
    }

    const model = options.model ?? settings.MEMORY_TOKENIZER_MODEL ?? "gpt-4o";
    const tokenCacheSize = options.tokenCacheSize ?? 10_000;
    const tokenCounter = new TokenCounter({ model, cacheSize: tokenCacheSize });
    const counters = new Map<string, TokenCounter>([[model, tokenCounter]]);
    const counterFor = (otherModel: string) => {
      let counter = counters.get(otherModel);
      if (!counter) {
        counter = new TokenCounter({ model: otherModel, cacheSize: tokenCacheSize });
        counters.set(otherModel, counter);
      }
      return counter;
    };

    // PGlite runs one statement at a time: appends that arrive meanwhile share the next one.
    const transcript = new Transcript(db.database, {
      appendConcurrency: db.database.kind === "pglite" ? 1 : 4,
    });
    const bufferDependencies = {
      transcript,
      measurer: tokenCounter,
      defaults: {
        maxMessages: defaults.max_buffer_messages,
        maxTokens: defaults.max_buffer_tokens,
        summaryTriggerTokens: defaults.summary_trigger_tokens,
        ttlSeconds: defaults.buffer_ttl_seconds,
      },
      limits: {
        ...DEFAULT_MESSAGE_LIMITS,
        maxContentBytes: options.maxContentBytes ?? DEFAULT_MESSAGE_LIMITS.maxContentBytes,
        maxMessageBytes: options.maxMessageBytes ?? DEFAULT_MESSAGE_LIMITS.maxMessageBytes,
      },
      logger,
    };
    const redisBufferStore = redis.connection
      ? new RedisBufferStore({
          ...bufferDependencies,
          redis: redis.connection,
          keyPrefix: options.keyPrefix ?? settings.MEMORY_KEY_PREFIX ?? "mem",
          summaryCacheTtlSeconds: options.summaryCacheTtlSeconds ?? 24 * 60 * 60,
        })
      : null;
    const sqlBufferStore = new SqlBufferStore(bufferDependencies);
    const tieredBufferStore = redisBufferStore
      ? new TieredBufferStore({
          redis: redisBufferStore,
          sql: sqlBufferStore,
          redisAvailable: () => breakers.redis.getState() === CircuitState.CLOSED,
          databaseAvailable: () => breakers.postgres.getState() === CircuitState.CLOSED,
          outboxDurable,
        })
      : null;
    if (tieredBufferStore) {
      const raw = opening.connection!;
      const checkDurability = () =>
        readRedisDurability(raw).then((found) => {
          if (found.durable !== durability.durable || !checked) logDurability(logger, found);
          durability.durable = found.durable;
          checked = true;
        });
      let checked = false;
      await checkDurability();
      const onDrainError = (error: unknown) =>
        logger.warn(
          { error: String(error) },
          "could not finish the work Redis's return asks for (dropping buffers that missed writes, replaying outboxes); it is retried",
        );
      const onReplayError = (error: unknown) =>
        logger.warn({ error: String(error) }, "could not replay the outbox into PostgreSQL yet");
      breakers.redis.onStateChange((change) => {
        if (change.to === CircuitState.CLOSED) tieredBufferStore.redisRecovered(onDrainError);
      });
      // A reconnect may follow a restart this process never noticed (it sent nothing meanwhile):
      // drop what other processes marked before serving from the Redis that came back, and read
      // its settings again (a restarted or failed-over server may keep writes differently).
      raw.onReconnect(() => {
        tieredBufferStore.redisRecovered(onDrainError);
        void checkDurability();
      });
      // Settings can change at run time (CONFIG SET): look again every minute.
      const recheck = setInterval(() => void checkDurability(), 60_000);
      recheck.unref();
      closers.push(async () => clearInterval(recheck));
      breakers.postgres.onStateChange((change) => {
        if (change.to === CircuitState.CLOSED) tieredBufferStore.databaseRecovered(onReplayError);
      });
      closers.push(async () => tieredBufferStore.stop());
      // Marks and outboxes left by processes that stopped before their dependency came back.
      tieredBufferStore.redisRecovered(onDrainError);
    }
    const probeOptions = definedOnly({ intervalMs: resilience.probeIntervalMs });
    const stopProbes = [
      startRecoveryProbe(breakers.postgres, () => opened.database.query("SELECT 1"), probeOptions),
    ];
    if (opening.connection) {
      const raw = opening.connection;
      stopProbes.push(startRecoveryProbe(breakers.redis, () => raw.send(["PING"]), probeOptions));
    }
    closers.push(async () => {
      for (const stop of stopProbes) stop();
    });
    const bufferStore = tieredBufferStore ?? sqlBufferStore;
    const summaryStore = new SummaryStore({
      db: db.database,
      ...(redisBufferStore ? { cache: redisBufferStore } : {}),
      countTokens: (text) => tokenCounter.countTokens(text),
      onCacheFailure: (ref) => (tieredBufferStore ?? transcript).markRedisStale(ref),
    });

    const innerSummarizer = isSummarizer(options.summarizer)
      ? options.summarizer
      : buildSummarizer(options.summarizer ?? {}, env, model, closers);
    const summarizer: Summarizer = {
      name: innerSummarizer.name,
      summarize: (request) => breakers.summarizer.execute(() => innerSummarizer.summarize(request)),
    };
    const summarization = options.summarization ?? {};
    const leaseMs = summarization.leaseMs ?? 30_000;
    const leases = redis.connection
      ? new RedisLeaseManager(redis.connection, options.keyPrefix ?? settings.MEMORY_KEY_PREFIX ?? "mem", {
          leaseMs,
        })
      : new SqlLeaseManager(db.database, { leaseMs });
    const configs = new SessionConfigRecords(db.database);
    const jobDependencies: SummarizationJobDependencies = {
      transcript,
      summaryStore,
      leases,
      summarizer,
      countTokens: (text) => tokenCounter.countTokens(text),
      defaults,
      heartbeatMs: Math.max(1, Math.floor(leaseMs / 3)),
      logger,
    };
    const scheduler = new SummarizationScheduler({
      runJob: (ref, mode, signal) => runSummarizationJob(jobDependencies, ref, mode, signal),
      logger,
      ...definedOnly({
        concurrency: summarization.concurrency,
        backoffBaseMs: summarization.backoffBaseMs,
        backoffMaxMs: summarization.backoffMaxMs,
        maxAttempts: summarization.maxAttempts,
        onOutcome: summarization.onJob,
        holdTimeoutMs: summarization.backpressureTimeoutMs,
      }),
    });
    closers.push(() => scheduler.close());
    const idleFinalizeAfterMs =
      summarization.idleFinalizeAfterMs ?? (settings.MEMORY_IDLE_FINALIZE_SECONDS ?? 24 * 60 * 60) * 1000;
    if (idleFinalizeAfterMs > 0) {
      const sweep = setInterval(() => {
        transcript.idleUnsummarized(new Date(Date.now() - idleFinalizeAfterMs), 100).then(
          (refs) => {
            for (const ref of refs) scheduler.request(ref, "final");
          },
          (error: unknown) => logger.warn({ error: String(error) }, "could not look for idle sessions"),
        );
      }, summarization.idleCheckIntervalMs ?? 60_000);
      // Housekeeping only: it must not keep a process alive that has nothing else to do.
      sweep.unref();
      closers.push(async () => clearInterval(sweep));
    }

    const resources: ManagerResources = {
      db: db.database,
      redis: redis.connection,
      breakers,
      health,
      tokenCounter,
      counterFor,
      bufferStore,
      redisBufferStore,
      tieredBufferStore,
      summaryStore,
      configs,
      scheduler,
      outboxDurable,
      records: new SessionRecords(db.database),
      defaults,
      maxContextBytes: options.maxContextBytes ?? 1024 * 1024,
      close: () => closeAll(closers, logger),
    };
    return new MemoryManager(resources, options.tenant ?? "default");
  } catch (error) {
    await closeAll(closers, logger);
    throw error;
  }
}

/**
 * Says at start-up, and on every change, whether writes may wait in Redis while PostgreSQL is
 * away. Either answer is a supported deployment (the Memory Manager API specification's production
 * settings give "no"), so it is information, not a warning.
 */
function logDurability(logger: Logger, found: RedisDurability): void {
  const settings = { redis: found.servers };
  if (found.durable) {
    logger.info?.(
      settings,
      "Redis keeps writes durably: while PostgreSQL is away, writes are acknowledged from the Redis outbox",
    );
  } else {
    logger.info?.(
      { ...settings, reasons: found.reasons },
      "Redis may evict or lose what it holds: while PostgreSQL is away, writes are refused (503 with Retry-After) rather than held in Redis",
    );
  }
}

function openDatabase(
  options: MemoryManagerOptions,
  env: Environment,
  settings: DatabaseSettings,
): { database: Database; owned: boolean; address: string | null } {
  if (options.database !== undefined && typeof options.database !== "string") {
    return { database: options.database, owned: false, address: null };
  }
  if (options.database !== undefined) {
    const url = options.database;
    const database = new PostgresDatabase({
      connectionString: url,
      source: "options.database",
      ...settings,
    });
    return { database, owned: true, address: addressOf(url, 5432) };
  }
  const overrides = options.dataDir !== undefined ? { MEMORY_DATA_DIR: options.dataDir } : {};
  return { ...databaseFromEnv({ ...env, ...overrides }, settings), owned: true };
}

/** What `databaseFromEnv` opened; the caller owns `database`. */
export interface DatabaseFromEnv {
  database: Database;
  /** host:port of PostgreSQL; null for the embedded database. */
  address: string | null;
  /** "postgres (host:port)" or "pglite (<folder>)", for operators. */
  label: string;
}

/**
 * The system of record the environment names: PostgreSQL at DATABASE_URL, else the embedded
 * database in MEMORY_DATA_DIR (default ./.swisper-memory).
 */
/** How a PostgreSQL pool of ours is set up beyond its URL. */
type DatabaseSettings = Pick<PostgresDatabaseOptions, "queryTimeoutMs" | "logger">;

export function databaseFromEnv(env: Environment, settings: DatabaseSettings = {}): DatabaseFromEnv {
  const variables = readMemoryEnvironment(env);
  const label = databaseLabel(variables);
  if (variables.DATABASE_URL) {
    const database = new PostgresDatabase({
      connectionString: variables.DATABASE_URL,
      source: "DATABASE_URL",
      ...settings,
    });
    return { database, address: addressOf(variables.DATABASE_URL, 5432), label };
  }
  const dataDir = variables.MEMORY_DATA_DIR ?? DEFAULT_DATA_DIR;
  return { database: new PgliteDatabase({ dataDir }), address: null, label };
}

/** "postgres (host:port)" or "pglite (<folder>)": the system of record the settings name. */
export function databaseLabel(settings: MemoryEnvironment): string {
  if (settings.DATABASE_URL) return `postgres (${addressOf(settings.DATABASE_URL, 5432)})`;
  return `pglite (${settings.MEMORY_DATA_DIR ?? DEFAULT_DATA_DIR})`;
}

/** Where the embedded database lives when MEMORY_DATA_DIR is unset. */
export const DEFAULT_DATA_DIR = "./.swisper-memory";

async function openRedis(
  options: MemoryManagerOptions,
  env: Environment,
  commandTimeoutMs: number | undefined,
): Promise<{ connection: RedisConnection | null; owned: boolean; address: string | null }> {
  if (options.redis === false) return { connection: null, owned: false, address: null };
  if (options.redis !== undefined && typeof options.redis !== "string") {
    return { connection: options.redis, owned: false, address: redisAddressFromEnv(env) };
  }
  const url = options.redis ?? redisUrlFromEnv(env);
  if (!url) return { connection: null, owned: false, address: null };
  const cluster = options.redisCluster ?? readMemoryEnvironment(env).REDIS_CLUSTER ?? false;
  const source = options.redis !== undefined ? "options.redis" : redisSourceFromEnv(env);
  return {
    connection: await connectRedis({ url, cluster, source, ...definedOnly({ commandTimeoutMs }) }),
    owned: true,
    address: addressOf(url, 6379),
  };
}

/** A connection passed in was most likely opened from the same environment (as `serve` does). */
function redisAddressFromEnv(env: Environment): string | null {
  const url = redisUrlFromEnv(env);
  return url ? addressOf(url, 6379) : null;
}

/** host:port of an OpenAI-compatible summarizer's endpoint; null for one that runs in-process. */
function summarizerAddress(
  summarizer: Summarizer | CreateSummarizerOptions | undefined,
  env: Environment,
): string | null {
  if (isSummarizer(summarizer)) return null;
  const settings = readSummarizerEnv(summarizer?.env ?? env);
  if ((summarizer?.kind ?? settings.kind) !== "openai") return null;
  const baseUrl = summarizer?.openai?.baseUrl ?? settings.openai.baseUrl ?? DEFAULT_OPENAI_BASE_URL;
  return addressOf(baseUrl, baseUrl.startsWith("https:") ? 443 : 80);
}

/** `REDIS_URL`, else the specification's `REDIS_HOST`, `REDIS_PORT` (6379) and `REDIS_DB` (0). */
/** The variable the Redis URL comes from, named in connection errors: REDIS_URL, else REDIS_HOST. */
function redisSourceFromEnv(env: Environment): string {
  return readMemoryEnvironment(env).REDIS_URL ? "REDIS_URL" : "REDIS_HOST";
}

/**
 * Connects to the Redis the environment names (REDIS_URL, or REDIS_HOST...; REDIS_CLUSTER), or
 * null when it names none. The caller owns the connection.
 */
export async function connectRedisFromEnv(env: Environment): Promise<RedisConnection | null> {
  const url = redisUrlFromEnv(env);
  if (!url) return null;
  const cluster = readMemoryEnvironment(env).REDIS_CLUSTER ?? false;
  return connectRedis({ url, cluster, source: redisSourceFromEnv(env) });
}

export function redisUrlFromEnv(env: Environment): string | null {
  const settings = readMemoryEnvironment(env);
  if (settings.REDIS_URL) return settings.REDIS_URL;
  if (!settings.REDIS_HOST) return null;
  const password = settings.REDIS_PASSWORD ? `:${encodeURIComponent(settings.REDIS_PASSWORD)}@` : "";
  return `redis://${password}${settings.REDIS_HOST}:${settings.REDIS_PORT ?? 6379}/${settings.REDIS_DB ?? 0}`;
}

/** Closes in reverse order of opening; one that fails is logged and the others still close. */
async function closeAll(closers: (() => Promise<void>)[], logger: Logger): Promise<void> {
  for (const close of closers.reverse()) {
    await close().catch((error: unknown) =>
      logger.warn({ code: errorCode(error), error: String(error) }, "closing a connection or worker failed"),
    );
  }
}

/**
 * Builds the configured summarizer; the extractive one on a worker thread counting for `model`,
 * ended with the manager.
 */
function buildSummarizer(
  options: CreateSummarizerOptions,
  env: NodeJS.ProcessEnv,
  model: string,
  closers: (() => Promise<void>)[],
): Summarizer {
  const kind = options.kind ?? readSummarizerEnv(options.env ?? env).kind;
  if (kind !== "extractive") return createSummarizer({ env, ...options });
  const worker = new WorkerSummarizer({
    model,
    ...(options.extractive ? { extractive: options.extractive } : {}),
  });
  closers.push(() => worker.close());
  return worker;
}

function isSummarizer(value: Summarizer | CreateSummarizerOptions | undefined): value is Summarizer {
  return typeof (value as Summarizer | undefined)?.summarize === "function";
}

/** Leaves out fields set to undefined, so that the receiver's defaults apply. */
function definedOnly<T extends object>(fields: T): Partial<T> {
  return Object.fromEntries(Object.entries(fields).filter(([, value]) => value !== undefined)) as Partial<T>;
}
