import { RedisBufferStore } from "../buffer/redis-buffer-store.js";
import { SqlBufferStore } from "../buffer/sql-buffer-store.js";
import { TieredBufferStore } from "../buffer/tiered-buffer-store.js";
import { type MemoryEnvironment, readMemoryEnvironment } from "../environment.js";
import { ValidationError } from "../errors.js";
import { ConsistencyCheck } from "../legacy/consistency.js";
import { type LegacySessionStore, PostgresLegacyStore } from "../legacy/legacy-store.js";
import { LegacyMigration } from "../legacy/migration.js";
import { LegacyMirror, MIGRATION_PHASES, type MigrationPhase } from "../legacy/mirror.js";
import { type Logger, stderrLogger } from "../logger.js";
import { DEFAULT_MESSAGE_LIMITS, type MessageLimits } from "../messages/validate.js";
import { GuardedDatabase, isRedisOutage } from "../resilience/guarded-connections.js";
import {
  addressOf,
  CircuitBreaker,
  CircuitState,
  errorCode,
  HealthModel,
  logTransitions,
} from "../resilience/index.js";
import { startRecoveryProbe } from "../resilience/recovery-probe.js";
import { SessionCatalog } from "../sessions/catalog.js";
import {
  DEFAULT_RETENTION_SWEEP_MS,
  type RetentionOptions,
  RetentionSweeper,
  retentionPolicyOf,
} from "../sessions/retention.js";
import { checkLanguage, INDEXED_LANGUAGE } from "../sessions/search-language.js";
import { type Database, isConnectionError } from "../storage/database.js";
import { migrate } from "../storage/migrator.js";
import type { RedisConnection } from "../storage/redis-client.js";
import { type RedisDurability, readRedisDurability } from "../storage/redis-durability.js";
import { adviseOnRedisSettings, readRedisSettings } from "../storage/redis-settings.js";
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
import { definedOnly, openDatabase, openRedis, warnIfRedisAway } from "./connections.js";
import { buildHotTier, type HotTier } from "./hot-tier.js";
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

export {
  connectRedisFromEnv,
  type DatabaseFromEnv,
  DEFAULT_DATA_DIR,
  databaseFromEnv,
  databaseLabel,
  redisUrlFromEnv,
} from "./connections.js";

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
  /**
   * Migration from the legacy session store (README, "Migrating from the legacy session store").
   * Default: `MEMORY_MIGRATION_PHASE` (else off) with a store on `LEGACY_DATABASE_URL`.
   */
  legacy?: LegacyOptions;
  /**
   * Search mode words: the text search configuration used when a search names none (default
   * `MEMORY_SEARCH_LANGUAGE`, else simple); one the database does not have stops start-up.
   */
  searchLanguage?: string;
  /** Retention: how long idle sessions are kept, per tenant and per session, and the sweep. */
  retention?: RetentionOptions;
}

export type { RetentionOptions };

export interface LegacyOptions {
  /**
   * `coexistence`: every acknowledged write is also made in the legacy store, waiting for it at
   * most `writeTimeoutMs`; `gradual`: that, and a sample of context reads compared with the legacy
   * store; `full`: the legacy store is a backup, written in the background and never waited for.
   * Default off.
   */
  phase?: MigrationPhase;
  /** Phase gradual: the fraction of context reads compared (default `MEMORY_MIGRATION_SAMPLE_RATE`, else 0.01). */
  sampleRate?: number;
  /** The legacy store (default: `swisper_sessions` at `LEGACY_DATABASE_URL`); yours stays open. */
  store?: LegacySessionStore;
  /** Coexistence and gradual: how long a write waits for the legacy store before queueing it (default `MEMORY_LEGACY_WRITE_TIMEOUT_MS`, else 200). */
  writeTimeoutMs?: number;
  /** How often queued legacy writes are retried (default 1000 ms). */
  retryIntervalMs?: number;
}

/** What every builder below reads: the options, the checked environment, and the closers. */
interface Wiring {
  options: MemoryManagerOptions;
  env: Environment;
  settings: MemoryEnvironment;
  logger: Logger;
  resilience: ResilienceOptions;
  /** The config every session starts from. */
  defaults: SessionConfig;
  /** What `close()` undoes, in reverse order. */
  closers: (() => Promise<void>)[];
}

/**
 * Builds a MemoryManager from options and the environment. With nothing configured it runs on
 * embedded PGlite alone; with Redis it keeps the hot tier there. Closes only what it created.
 */
export async function createMemoryManager(options: MemoryManagerOptions = {}): Promise<MemoryManager> {
  const env = options.env ?? process.env;
  const logger = options.logger ?? stderrLogger;
  const wiring: Wiring = {
    options,
    env,
    settings: readMemoryEnvironment(env),
    logger,
    resilience: options.resilience ?? {},
    defaults: sessionDefaultsOf(options),
    closers: [],
  };
  try {
    return await wire(wiring);
  } catch (error) {
    await closeAll(wiring.closers, logger);
    throw error;
  }
}

async function wire(wiring: Wiring): Promise<MemoryManager> {
  const { options, logger, closers, defaults } = wiring;
  const opened = await openSystemOfRecord(wiring);
  const breakers = buildBreakers(wiring);
  const hot = await openHotTier(wiring);
  const database = new GuardedDatabase(opened.database, breakers.postgres);
  const tier = hot.connection ? await buildTier(wiring, hot, breakers, opened.database) : null;
  const redis = tier?.connection ?? null;
  // Whether Redis keeps an outbox durably: read from its settings at start-up and after.
  const durability = { durable: false };
  const outboxDurable = () => durability.durable;
  const health = buildHealth(wiring, breakers, { database: opened.address, tier }, outboxDurable);
  const tokens = buildTokenCounters(wiring);
  // PGlite runs one statement at a time: appends that arrive meanwhile share the next one.
  const transcript = new Transcript(database, { appendConcurrency: database.kind === "pglite" ? 1 : 4 });
  const stores = buildBufferStores(wiring, {
    transcript,
    tier,
    breakers,
    outboxDurable,
    measurer: tokens.tokenCounter,
  });
  if (stores.tiered && hot.connection && tier)
    await followRedis(wiring, stores.tiered, hot.connection, { tier, breakers, durability });
  startRecoveryProbes(wiring, breakers, opened.database, tier);
  const summaryStore = new SummaryStore({
    db: database,
    ...(stores.redis ? { cache: stores.redis } : {}),
    countTokens: (text) => tokens.tokenCounter.countTokens(text),
    onCacheFailure: (ref) => (stores.tiered ?? transcript).markRedisStale(ref),
  });
  const scheduler = buildScheduler(wiring, { transcript, summaryStore, database, tier, breakers, tokens });
  const legacyMigration = buildLegacyMigration(wiring, database);
  startIdleSweep(wiring, transcript, scheduler);
  let manager: MemoryManager | null = null;
  const searchLanguage = await searchLanguageOf(wiring, opened.database);
  const retention = buildRetention(wiring, database, (tenant, sessionId, guard) =>
    (manager as MemoryManager).forTenant(tenant).eraseSessionIf(sessionId, guard),
  );
  const resources: ManagerResources = {
    db: database,
    redis,
    breakers,
    health,
    tokenCounter: tokens.tokenCounter,
    counterFor: tokens.counterFor,
    bufferStore: stores.tiered ?? stores.sql,
    redisBufferStore: stores.redis,
    tieredBufferStore: stores.tiered,
    summaryStore,
    configs: new SessionConfigRecords(database),
    scheduler,
    records: new SessionRecords(database),
    sessions: new SessionCatalog(database),
    defaults,
    maxContextBytes: options.maxContextBytes ?? 1024 * 1024,
    messageLimits: messageLimits(options),
    legacyMirror: legacyMigration.mirror,
    consistency: legacyMigration.consistency,
    legacyMigration,
    retention,
    searchLanguage,
    close: () => closeAll(closers, logger),
  };
  manager = new MemoryManager(resources, options.tenant ?? "default");
  // Outbox writes are not in the transcript yet: their sessions look idle there until replayed.
  retention.start(retentionIntervalOf(wiring), () => (manager as MemoryManager).outboxBacklog() > 0);
  return manager;
}

/** The search language, checked against the database's text search configurations. */
async function searchLanguageOf({ options, settings }: Wiring, db: Database): Promise<string> {
  const language = options.searchLanguage ?? settings.MEMORY_SEARCH_LANGUAGE;
  if (language === undefined) return INDEXED_LANGUAGE;
  const field = options.searchLanguage === undefined ? "MEMORY_SEARCH_LANGUAGE" : "searchLanguage";
  if (!/^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(language)) {
    throw new ValidationError(
      field,
      "must be the name of a text search configuration, like simple or english",
    );
  }
  return checkLanguage(db, language, field);
}

/** The config every session starts from; retention_days stays null (see `retention`). */
function sessionDefaultsOf(options: MemoryManagerOptions): SessionConfig {
  // A default retention_days would not be stored with the sessions, so the sweeper could not see
  // it: the tenant's retention is `retention.defaultDays`.
  if (options.sessionDefaults?.retention_days != null) {
    throw new ValidationError(
      "sessionDefaults.retention_days",
      "is not a session default: set retention.defaultDays (MEMORY_RETENTION_DAYS) instead",
    );
  }
  return resolveSessionConfig(options.sessionDefaults ?? {}, DEFAULT_SESSION_CONFIG);
}

/** The retention sweeper (started by the caller), stopped on close before the connections close. */
function buildRetention(
  wiring: Wiring,
  db: Database,
  erase: ConstructorParameters<typeof RetentionSweeper>[0]["erase"],
): RetentionSweeper {
  const { options, settings, logger, closers } = wiring;
  const retention = options.retention ?? {};
  const sweeper = new RetentionSweeper({
    db,
    policy: retentionPolicyOf(retention, settings),
    erase,
    logger,
    ...definedOnly({ batchSize: retention.batchSize, now: retention.now }),
  });
  closers.push(() => sweeper.stop());
  return sweeper;
}

function retentionIntervalOf({ options, settings }: Wiring): number {
  const interval = options.retention?.sweepIntervalMs;
  if (interval === undefined) {
    const seconds = settings.MEMORY_RETENTION_SWEEP_SECONDS;
    return seconds === undefined ? DEFAULT_RETENTION_SWEEP_MS : seconds * 1000;
  }
  if (!Number.isInteger(interval) || interval < 0) {
    throw new ValidationError("retention.sweepIntervalMs", "must be a whole number of milliseconds (0: off)");
  }
  return interval;
}

/** The system of record, opened and migrated (unless auto-migration is off). */
async function openSystemOfRecord(wiring: Wiring): Promise<{ database: Database; address: string | null }> {
  const { options, env, settings, logger, resilience, closers } = wiring;
  const opened = openDatabase(options, env, {
    logger,
    ...definedOnly({ queryTimeoutMs: resilience.databaseQueryTimeoutMs }),
  });
  if (opened.owned) closers.push(() => opened.database.close());
  if (options.autoMigrate ?? settings.MEMORY_AUTO_MIGRATE ?? true) {
    const run = await migrate(opened.database);
    if (run.error) throw run.error;
  }
  return opened;
}

/** The Memory Manager API specification's breakers, one per dependency. */
function buildBreakers({ logger, resilience }: Wiring): ManagerBreakers {
  const breakerOptions = {
    logger,
    ...definedOnly({
      failureThreshold: resilience.failureThreshold,
      recoveryTimeoutMs: resilience.recoveryTimeoutMs,
    }),
  };
  return {
    redis: new CircuitBreaker({ name: "redis", isFailure: isRedisOutage, ...breakerOptions }),
    postgres: new CircuitBreaker({ name: "postgres", isFailure: isConnectionError, ...breakerOptions }),
    summarizer: new CircuitBreaker({
      name: "summarizer",
      // A job cancelled by shutdown or a lost lease says nothing about the summarizer.
      isFailure: (error) => !(error instanceof SummarizerAbortedError || error instanceof LeaseLostError),
      ...breakerOptions,
    }),
  };
}

/** Redis when configured (it may not answer yet: the system of record serves meanwhile). */
async function openHotTier(
  wiring: Wiring,
): Promise<{ connection: RedisConnection | null; address: string | null }> {
  const opening = await openRedis(wiring.options, wiring.env, wiring.resilience.redisCommandTimeoutMs);
  const connection = opening.connection;
  if (opening.owned && connection) wiring.closers.push(() => connection.close());
  if (connection) await warnIfRedisAway(connection, opening.address, wiring.logger);
  return opening;
}

/** Redis behind its breaker, or each shard behind its own (see hot-tier.ts). */
function buildTier(
  wiring: Wiring,
  hot: { connection: RedisConnection | null; address: string | null },
  breakers: ManagerBreakers,
  database: Database,
): Promise<HotTier> {
  const { logger, resilience, closers } = wiring;
  return buildHotTier({
    raw: hot.connection as RedisConnection,
    address: hot.address,
    redisBreaker: breakers.redis,
    breakerOptions: {
      logger,
      ...definedOnly({
        failureThreshold: resilience.failureThreshold,
        recoveryTimeoutMs: resilience.recoveryTimeoutMs,
      }),
    },
    keyPrefix: keyPrefixOf(wiring),
    database,
    logger,
    closers,
    eventualReads: wiring.settings.MEMORY_READ_FROM_REPLICAS === "eventual",
  });
}

/**
 * The health model every report reads, with the breakers of the components in use (without
 * Redis, its breaker guards nothing: attached, it would report a Redis that is "up").
 */
function buildHealth(
  wiring: Wiring,
  breakers: ManagerBreakers,
  addresses: { database: string | null; tier: HotTier | null },
  outboxDurable: () => boolean,
): HealthModel {
  const { logger, options, env } = wiring;
  const redisServers = addresses.tier?.servers ?? [];
  const health = new HealthModel({
    components: [...redisServers.map((server) => server.breaker.name), "postgres", "summarizer"],
    outboxDurable,
  });
  const guarded: [CircuitBreaker, string | null][] = [
    [breakers.postgres, addresses.database],
    [breakers.summarizer, summarizerAddress(options.summarizer, env)],
  ];
  for (const server of redisServers) guarded.push([server.breaker, server.address]);
  for (const [breaker, address] of guarded) {
    health.monitor.attachBreaker(breaker);
    logTransitions(breaker, { logger, address });
  }
  return health;
}

/** The manager's model's counter, and one per other model a context is packed for. */
function buildTokenCounters({ options, settings }: Wiring) {
  const model = options.model ?? settings.MEMORY_TOKENIZER_MODEL ?? "gpt-4o";
  const cacheSize = options.tokenCacheSize ?? 10_000;
  const tokenCounter = new TokenCounter({ model, cacheSize });
  const counters = new Map<string, TokenCounter>([[model, tokenCounter]]);
  const counterFor = (otherModel: string) => {
    let counter = counters.get(otherModel);
    if (!counter) {
      counter = new TokenCounter({ model: otherModel, cacheSize });
      counters.set(otherModel, counter);
    }
    return counter;
  };
  return { model, tokenCounter, counterFor };
}

function messageLimits(options: MemoryManagerOptions): MessageLimits {
  return {
    maxContentBytes: options.maxContentBytes ?? DEFAULT_MESSAGE_LIMITS.maxContentBytes,
    maxMessageBytes: options.maxMessageBytes ?? DEFAULT_MESSAGE_LIMITS.maxMessageBytes,
  };
}

interface StoreParts {
  transcript: Transcript;
  tier: HotTier | null;
  breakers: ManagerBreakers;
  outboxDurable: () => boolean;
  measurer: TokenCounter;
}

/** The buffer: in PostgreSQL alone, or in Redis in front of it (tiered). */
function buildBufferStores(wiring: Wiring, parts: StoreParts) {
  const { options, defaults, logger } = wiring;
  const dependencies = {
    transcript: parts.transcript,
    measurer: parts.measurer,
    defaults: {
      maxMessages: defaults.max_buffer_messages,
      maxTokens: defaults.max_buffer_tokens,
      summaryTriggerTokens: defaults.summary_trigger_tokens,
      ttlSeconds: defaults.buffer_ttl_seconds,
    },
    limits: messageLimits(options),
    logger,
  };
  const sql = new SqlBufferStore(dependencies);
  const { tier } = parts;
  if (!tier) return { sql, redis: null, tiered: null };
  const redis = new RedisBufferStore({
    ...dependencies,
    redis: tier.connection,
    keyPrefix: keyPrefixOf(wiring),
    placement: tier.placement,
    replicas: tier.replicas,
    summaryCacheTtlSeconds: options.summaryCacheTtlSeconds ?? 24 * 60 * 60,
  });
  const { breakers } = parts;
  const tiered = new TieredBufferStore({
    redis,
    sql,
    redisAvailable: (ref) => tier.available(ref),
    databaseAvailable: () => breakers.postgres.getState() === CircuitState.CLOSED,
    outboxDurable: parts.outboxDurable,
  });
  return { sql, redis, tiered };
}

function keyPrefixOf({ options, settings }: Wiring): string {
  return options.keyPrefix ?? settings.MEMORY_KEY_PREFIX ?? "mem";
}

/**
 * Keeps the tiered store in step with Redis and PostgreSQL: whether Redis keeps writes durably
 * (read now, on every reconnect and every minute: CONFIG SET can change it), what Redis's return
 * asks for (drop buffers that missed writes, replay outboxes), and PostgreSQL's return.
 */
async function followRedis(
  wiring: Wiring,
  tiered: TieredBufferStore,
  raw: RedisConnection,
  parts: { tier: HotTier; breakers: ManagerBreakers; durability: { durable: boolean } },
): Promise<void> {
  const { logger, closers } = wiring;
  const { tier, breakers, durability } = parts;
  let checked = false;
  const checkDurability = async () => {
    // Shards keep no outbox: a shard list may change, and an outbox must be found where it is.
    if (tier.sharded) return;
    const found = await readRedisDurability(raw);
    if (found.durable !== durability.durable || !checked) logDurability(logger, found);
    durability.durable = found.durable;
    checked = true;
  };
  await checkDurability();
  const checkSettings = followRedisSettings(logger, raw);
  await checkSettings();
  const onDrainError = (error: unknown) =>
    logger.warn(
      { code: errorCode(error), error: String(error) },
      "could not finish the work Redis's return asks for (dropping buffers that missed writes, replaying outboxes); it is retried",
    );
  const onReplayError = (error: unknown) =>
    logger.warn(
      { code: errorCode(error), error: String(error) },
      "could not replay the outbox into PostgreSQL yet",
    );
  for (const server of tier.servers) {
    server.breaker.onStateChange((change) => {
      if (change.to !== CircuitState.CLOSED) return;
      tiered.redisRecovered(onDrainError);
      void checkSettings();
    });
  }
  // A reconnect may follow a restart this process never noticed (it sent nothing meanwhile):
  // drop what other processes marked before serving from the Redis that came back, and read its
  // settings again (a restarted or failed-over server may keep writes differently).
  raw.onReconnect(() => {
    tiered.redisRecovered(onDrainError);
    void checkDurability();
    void checkSettings();
  });
  const recheck = setInterval(() => void checkDurability(), 60_000);
  recheck.unref();
  closers.push(async () => clearInterval(recheck));
  breakers.postgres.onStateChange((change) => {
    if (change.to === CircuitState.CLOSED) tiered.databaseRecovered(onReplayError);
  });
  closers.push(async () => tiered.stop());
  // Marks and outboxes left by processes that stopped before their dependency came back.
  tiered.redisRecovered(onDrainError);
}

/**
 * Reads Redis's maxmemory, maxmemory-policy, appendonly and save (CONFIG GET, else INFO) and logs
 * them with what they mean here: a warning where a full Redis can refuse writes (see
 * `adviseOnRedisSettings`), else information. Logged at start-up, or when Redis first answers, and
 * again when a reconnect or a closing breaker finds them changed (a restarted or failed-over
 * server); a refused CONFIG is said once.
 */
function followRedisSettings(logger: Logger, raw: RedisConnection): () => Promise<void> {
  let logged: string | null = null;
  let refusalSaid = false;
  return () =>
    readRedisSettings(raw).then(
      (found) => {
        if (found.config_refused !== null && !refusalSaid) {
          refusalSaid = true;
          logger.info?.(
            { reply: found.config_refused },
            "Redis refused CONFIG GET (renamed, or not allowed to this user): its maxmemory, maxmemory-policy and appendonly are read from INFO instead",
          );
        }
        const advice = adviseOnRedisSettings(found);
        const { keys_without_ttl: _, config_refused: __, ...settings } = found;
        const said = JSON.stringify([settings, advice.level]);
        if (said === logged) return;
        logged = said;
        const details = { redis: settings };
        if (advice.level === "warn") logger.warn(details, advice.message);
        else logger.info?.(details, advice.message);
      },
      // RedisSettingsUnreadable: not answering is said by warnIfRedisAway and the breaker; the
      // settings are read again when it answers.
      () => {},
    );
}

/** Probes an OPEN breaker's dependency directly, so that its return is used within a probe interval. */
function startRecoveryProbes(
  { resilience, closers }: Wiring,
  breakers: ManagerBreakers,
  database: Database,
  tier: HotTier | null,
): void {
  const probeOptions = definedOnly({ intervalMs: resilience.probeIntervalMs });
  const stops = [startRecoveryProbe(breakers.postgres, () => database.query("SELECT 1"), probeOptions)];
  for (const server of tier?.servers ?? []) {
    stops.push(startRecoveryProbe(server.breaker, () => server.raw.send(["PING"]), probeOptions));
  }
  closers.push(async () => {
    for (const stop of stops) stop();
  });
}

interface SchedulerParts {
  transcript: Transcript;
  summaryStore: SummaryStore;
  database: Database;
  tier: HotTier | null;
  breakers: ManagerBreakers;
  tokens: ReturnType<typeof buildTokenCounters>;
}

/** The summarizer behind its breaker, leases, and the scheduler that runs the jobs. */
function buildScheduler(wiring: Wiring, parts: SchedulerParts): SummarizationScheduler {
  const { options, env, logger, closers, defaults } = wiring;
  const inner = isSummarizer(options.summarizer)
    ? options.summarizer
    : buildSummarizer(options.summarizer ?? {}, env, parts.tokens.model, closers);
  const summarizer: Summarizer = {
    name: inner.name,
    summarize: (request) => parts.breakers.summarizer.execute(() => inner.summarize(request)),
  };
  const summarization = options.summarization ?? {};
  const leaseMs = summarization.leaseMs ?? 30_000;
  const leases = parts.tier
    ? new RedisLeaseManager(parts.tier.connection, parts.tier.placement, { leaseMs })
    : new SqlLeaseManager(parts.database, { leaseMs });
  const jobDependencies: SummarizationJobDependencies = {
    transcript: parts.transcript,
    summaryStore: parts.summaryStore,
    leases,
    summarizer,
    countTokens: (text) => parts.tokens.tokenCounter.countTokens(text),
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
  return scheduler;
}

/** A session idle this long gets a final summary (housekeeping: it keeps no process alive). */
function startIdleSweep(wiring: Wiring, transcript: Transcript, scheduler: SummarizationScheduler): void {
  const { options, settings, logger, closers } = wiring;
  const summarization = options.summarization ?? {};
  const idleMs =
    summarization.idleFinalizeAfterMs ?? (settings.MEMORY_IDLE_FINALIZE_SECONDS ?? 24 * 60 * 60) * 1000;
  if (idleMs <= 0) return;
  const sweep = setInterval(() => {
    transcript.idleUnsummarized(new Date(Date.now() - idleMs), 100).then(
      (refs) => {
        for (const ref of refs) scheduler.request(ref, "final");
      },
      (error: unknown) =>
        logger.warn({ code: errorCode(error), error: String(error) }, "could not look for idle sessions"),
    );
  }, summarization.idleCheckIntervalMs ?? 60_000);
  sweep.unref();
  closers.push(async () => clearInterval(sweep));
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

/**
 * The migration from the legacy store: its store (when LEGACY_DATABASE_URL is set or one is
 * given), and in phases coexistence, gradual and full the mirror into it (its retry pass stopped
 * on close); in gradual also the sampled check. In full the legacy store is a backup, written in
 * the background and never waited for.
 */
function buildLegacyMigration(wiring: Wiring, database: Database): LegacyMigration {
  const { options, settings, logger, closers } = wiring;
  const legacy = options.legacy ?? {};
  const phase = legacy.phase ?? settings.MEMORY_MIGRATION_PHASE ?? "off";
  if (!(MIGRATION_PHASES as readonly string[]).includes(phase)) {
    throw new ValidationError(
      "legacy.phase",
      `must be one of ${MIGRATION_PHASES.join(", ")} (got '${phase}')`,
    );
  }
  const timeZone = settings.LEGACY_TIME_ZONE ?? "UTC";
  const tenant = options.tenant ?? "default";
  const store = openLegacyStore(wiring, phase, timeZone);
  const mirror =
    store && phase !== "off" ? buildLegacyMirror(wiring, { database, store, phase, tenant }) : null;
  const consistency =
    mirror && store && phase === "gradual" ? buildConsistencyCheck(wiring, database, store, mirror) : null;
  const migration = new LegacyMigration({
    phase,
    store,
    database,
    tenant,
    timeZone,
    mirror,
    consistency,
    logger,
  });
  // Closed first (closers run in reverse): its jobs write through the connections closed after.
  closers.push(() => migration.close());
  return migration;
}

/** The given legacy store, or one on LEGACY_DATABASE_URL (connected on first use); null without either. */
function openLegacyStore(wiring: Wiring, phase: MigrationPhase, timeZone: string): LegacySessionStore | null {
  const { options, settings, closers } = wiring;
  if (options.legacy?.store) return options.legacy.store;
  const url = settings.LEGACY_DATABASE_URL;
  if (!url) {
    if (phase === "off") return null;
    throw new ValidationError("LEGACY_DATABASE_URL", `is needed in migration phase ${phase}`);
  }
  const opened = new PostgresLegacyStore({ connectionString: url, timeZone });
  closers.push(() => opened.close());
  return opened;
}

function buildLegacyMirror(
  wiring: Wiring,
  target: { database: Database; store: LegacySessionStore; phase: MigrationPhase; tenant: string },
): LegacyMirror {
  const { options, settings, logger, closers } = wiring;
  const legacy = options.legacy ?? {};
  const mirror = new LegacyMirror({
    database: target.database,
    legacy: target.store,
    logger,
    tenant: target.tenant,
    timeoutMs:
      target.phase === "full" ? 0 : (legacy.writeTimeoutMs ?? settings.MEMORY_LEGACY_WRITE_TIMEOUT_MS ?? 200),
    ...definedOnly({ retryIntervalMs: legacy.retryIntervalMs }),
  });
  closers.push(() => mirror.close());
  return mirror;
}

function buildConsistencyCheck(
  wiring: Wiring,
  database: Database,
  store: LegacySessionStore,
  mirror: LegacyMirror,
): ConsistencyCheck {
  const { options, settings, logger, closers } = wiring;
  const sampleRate = options.legacy?.sampleRate ?? settings.MEMORY_MIGRATION_SAMPLE_RATE ?? 0.01;
  if (!(sampleRate >= 0 && sampleRate <= 1)) {
    throw new ValidationError("legacy.sampleRate", `must be a number from 0 to 1 (got ${sampleRate})`);
  }
  const consistency = new ConsistencyCheck({
    legacy: store,
    database,
    sampleRate,
    timeZone: settings.LEGACY_TIME_ZONE ?? "UTC",
    logger,
    pending: (sessionId) => mirror.pending(sessionId),
  });
  // Closed before the mirror and the store it reads (closers run in reverse).
  closers.push(() => consistency.close());
  return consistency;
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
