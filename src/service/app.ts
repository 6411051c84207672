import Fastify, { type FastifyBaseLogger, type FastifyInstance } from "fastify";
import type { MemoryManager } from "../manager/memory-manager.js";
import { MemoryMetrics } from "../metrics/index.js";
import type { RedisConnection } from "../storage/redis-client.js";
import { readRedisStats } from "../storage/redis-stats.js";
import { ApiKeyring } from "./auth.js";
import { DEFAULT_BODY_LIMIT_BYTES, DEFAULT_RATE_LIMIT_PER_MINUTE } from "./config.js";
import { type BreakerSnapshots, createHealthProvider, type HealthProvider } from "./health.js";
import { apiDocs } from "./plugins/api-docs.js";
import { authentication, tenantMemory } from "./plugins/auth.js";
import { draining, drainingOptions } from "./plugins/draining.js";
import { errorMapping, frameworkErrors } from "./plugins/error-mapping.js";
import { httpMetrics } from "./plugins/http-metrics.js";
import { jsonOnly } from "./plugins/json-only.js";
import { rateLimiting } from "./plugins/rate-limit.js";
import { requestId, requestIdOptions } from "./plugins/request-id.js";
import { requestLogOptions } from "./plugins/request-log.js";
import { operationsRoutes } from "./routes/operations.js";
import { sessionRoutes } from "./routes/sessions.js";
import { zodValidatorCompiler } from "./validation.js";

export interface MemoryServiceOptions {
  /** The memory to serve. Each request uses `memory.forTenant(<its key's tenant>)`. */
  memory: MemoryManager;
  /** API keys bound to tenants. Default: none, so auth is off and every request is tenant "default". */
  apiKeys?: ApiKeyring;
  /** Largest request body, in bytes (default 2 MiB). Larger bodies get 413. */
  bodyLimitBytes?: number;
  /**
   * Largest body of `POST /v1/imports` (JSON Lines, streamed), in bytes (default 256 MiB). Larger
   * bodies get 413; sessions before the limit was reached are stored.
   */
  importBodyLimitBytes?: number;
  /** Requests per API key (per client address without keys) and minute; 0 turns it off (default 120000). */
  rateLimitPerMinute?: number;
  /**
   * The manager's Redis connection, if it has one: the rate limit counts there (shared by every
   * instance), `/health` PINGs it and `/metrics` reads its INFO. Never closed here.
   */
  redis?: RedisConnection | null;
  /** Prefix of the rate-limit keys in Redis (default "mem", as the manager's keys). */
  keyPrefix?: string;
  /** The instruments (default: new ones). Pass the same to `createMemoryManager`'s `onJob`. */
  metrics?: MemoryMetrics;
  /** Circuit breaker snapshots for `/health` and `/metrics` (default: the manager's, once it has them). */
  breakers?: BreakerSnapshots;
  /**
   * The `/health` check (default: `createHealthProvider` over `memory` and `redis`). `/ready`
   * answers `memory.canAcknowledgeWrites()`, the same health model.
   */
  health?: HealthProvider;
  /** What the system of record is ("postgres" or "pglite"), for `/health`. */
  databaseKind?: string;
  /** A pino logger (default: none, silent). */
  logger?: FastifyBaseLogger;
}

/** The options with their defaults applied. */
type Settings = Required<
  Pick<MemoryServiceOptions, "apiKeys" | "rateLimitPerMinute" | "keyPrefix" | "metrics">
> &
  MemoryServiceOptions;

/**
 * Builds the HTTP service (not yet listening): `/v1` session routes, `/live`, `/health`, `/ready`,
 * `/metrics`, `/openapi.json` and `/docs`. Every error answers `{ error: { code, message, field? } }`.
 * Closing the app closes nothing it was given (the manager, the Redis connection).
 */
export async function createMemoryService(options: MemoryServiceOptions): Promise<FastifyInstance> {
  const settings: Settings = {
    ...options,
    apiKeys: options.apiKeys ?? ApiKeyring.empty(),
    rateLimitPerMinute: options.rateLimitPerMinute ?? DEFAULT_RATE_LIMIT_PER_MINUTE,
    keyPrefix: options.keyPrefix ?? "mem",
    metrics: options.metrics ?? new MemoryMetrics(),
  };
  attachMetrics(settings);
  const app = Fastify({
    ...requestLogOptions(options.logger),
    ...requestIdOptions,
    ...drainingOptions,
    frameworkErrors,
    bodyLimit: options.bodyLimitBytes ?? DEFAULT_BODY_LIMIT_BYTES,
    // Session ids are up to 256 characters, percent-encoded up to three times as long.
    routerOptions: { maxParamLength: 1024 },
  });
  app.setValidatorCompiler(zodValidatorCompiler);
  // Responses are built from the library's own objects: documented by the schemas, sent as JSON.
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));
  // onRequest hooks run in this order: the id first, so that every answer (a 503 too) carries it.
  await app.register(requestId);
  await app.register(jsonOnly);
  await app.register(draining);
  await app.register(httpMetrics, { metrics: settings.metrics });
  await app.register(errorMapping);
  await app.register(apiDocs, { authenticated: settings.apiKeys.enabled });
  operationsRoutes(app, { memory: options.memory, health: healthOf(settings), metrics: settings.metrics });
  await app.register((v1) => v1Routes(v1, settings), { prefix: "/v1" });
  return app;
}

/** `/metrics` reads the manager: its token cache, availability, outbox, breakers and Redis. */
function attachMetrics({ memory, metrics, breakers, redis }: Settings): void {
  metrics.attach({
    tokenCache: () => memory.tokenCounter.cacheStats(),
    available: () => memory.isAvailable(),
    outbox: () => memory.outboxBacklog(),
    legacyQueue: async () => (await memory.legacyQueueDepth(0))?.total ?? null,
    legacyFailures: () => memory.legacyWriteFailures(),
    divergences: () => memory.migrationDivergences(),
    retentionErased: () => memory.retentionErased(),
    backpressure: () => memory.summarizationBackpressure(),
    breakers: breakers ?? (() => memory.breakerSnapshots()),
    ...(redis ? { redis: () => readRedisStats(redis) } : {}),
  });
}

/** The `/health` check: the given one, or the manager's health model with probes of its own. */
function healthOf({ health, memory, redis, breakers, metrics, databaseKind }: Settings): HealthProvider {
  return (
    health ??
    createHealthProvider({
      memory,
      redis: redis ?? null,
      // Unless given other snapshots, /health reads the breakers from the health model itself.
      ...(breakers ? { breakers } : {}),
      summarizer: () => metrics.summarizerHealth(),
      ...(databaseKind ? { databaseKind } : {}),
    })
  );
}

/** `/v1`: authenticated, rate limited, each request served by its tenant's memory. */
async function v1Routes(v1: FastifyInstance, settings: Settings): Promise<void> {
  const { apiKeys, rateLimitPerMinute, memory } = settings;
  // Authentication runs before the rate limit (route-level hooks run after these), so that
  // limits count per key.
  await v1.register(authentication, { apiKeys });
  if (rateLimitPerMinute > 0) {
    await v1.register(rateLimiting, {
      perMinute: rateLimitPerMinute,
      redis: settings.redis ?? null,
      keyPrefix: settings.keyPrefix,
      redisBreaker: memory.circuitBreaker.redis,
    });
  }
  sessionRoutes(v1, {
    memoryFor: tenantMemory(memory),
    metrics: settings.metrics,
    authenticated: apiKeys.enabled,
    rateLimited: rateLimitPerMinute > 0,
    ...(settings.importBodyLimitBytes !== undefined
      ? { importBodyLimitBytes: settings.importBodyLimitBytes }
      : {}),
  });
}
