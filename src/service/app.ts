import { randomUUID } from "node:crypto";
import rateLimit from "@fastify/rate-limit";
import swagger from "@fastify/swagger";
import swaggerUi from "@fastify/swagger-ui";
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  LogController,
} from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import type { MemoryManager } from "../manager/memory-manager.js";
import { MemoryMetrics } from "../metrics/index.js";
import { CircuitState } from "../resilience/index.js";
import type { RedisConnection } from "../storage/redis-client.js";
import { readRedisStats } from "../storage/redis-stats.js";
import { ApiKeyring, type Principal, presentedKey } from "./auth.js";
import { DEFAULT_BODY_LIMIT_BYTES, DEFAULT_RATE_LIMIT_PER_MINUTE } from "./config.js";
import { type BreakerSnapshots, createHealthProvider, type HealthProvider } from "./health.js";
import { HttpError, mapError } from "./http-errors.js";
import { swaggerOptions, swaggerUiOptions } from "./openapi.js";
import { redisRateLimitStore } from "./rate-limit-store.js";
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

/** One log line per request, when it completes (fastify's default is two, with whole headers). */
class RequestLog extends LogController {
  override incomingRequest(): void {}

  override requestCompleted(
    error: Error | null | undefined,
    request: FastifyRequest,
    reply: FastifyReply,
  ): void {
    const fields = {
      method: request.method,
      url: request.url,
      status: reply.statusCode,
      ms: Math.round(reply.elapsedTime * 1000) / 1000,
    };
    if (error) reply.log.error({ ...fields, err: error }, "request failed while responding");
    else reply.log.info(fields, "request");
  }
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
const ANONYMOUS: Principal = { tenant: "default", keyId: "anonymous" };

/**
 * Builds the HTTP service (not yet listening): `/v1` session routes, `/live`, `/health`, `/ready`,
 * `/metrics`, `/openapi.json` and `/docs`. Every error answers `{ error: { code, message, field? } }`.
 * Closing the app closes nothing it was given (the manager, the Redis connection).
 */
export async function createMemoryService(options: MemoryServiceOptions): Promise<FastifyInstance> {
  const {
    memory,
    apiKeys = ApiKeyring.empty(),
    bodyLimitBytes = DEFAULT_BODY_LIMIT_BYTES,
    rateLimitPerMinute = DEFAULT_RATE_LIMIT_PER_MINUTE,
    redis = null,
    keyPrefix = "mem",
    metrics = new MemoryMetrics(),
  } = options;
  const breakers = options.breakers ?? (() => memory.breakerSnapshots());
  const health =
    options.health ??
    createHealthProvider({
      memory,
      redis,
      // Unless given other snapshots, /health reads the breakers from the health model itself.
      ...(options.breakers ? { breakers: options.breakers } : {}),
      summarizer: () => metrics.summarizerHealth(),
      ...(options.databaseKind ? { databaseKind: options.databaseKind } : {}),
    });
  metrics.attach({
    tokenCache: () => memory.tokenCounter.cacheStats(),
    available: () => memory.isAvailable(),
    outbox: () => memory.outboxBacklog(),
    breakers,
    ...(redis ? { redis: () => readRedisStats(redis) } : {}),
  });

  const app = Fastify({
    ...(options.logger ? { loggerInstance: options.logger } : { logger: false }),
    bodyLimit: bodyLimitBytes,
    // Session ids are up to 256 characters, percent-encoded up to three times as long.
    routerOptions: { maxParamLength: 1024 },
    logController: new RequestLog(),
    requestIdHeader: false,
    genReqId: (request) => {
      const given = request.headers["x-request-id"];
      return typeof given === "string" && REQUEST_ID.test(given) ? given : randomUUID();
    },
    // While shutting down, requests get the service's own 503 shape (see the onRequest hook).
    return503OnClosing: false,
    // A path Fastify cannot decode (bad percent-encoding) answers in the service's error shape.
    frameworkErrors: (error, _request, reply) => {
      const answer =
        (error as { code?: string }).code === "FST_ERR_BAD_URL"
          ? {
              statusCode: 400,
              body: {
                error: {
                  code: "invalid_input",
                  message: "path: is not valid percent-encoding",
                  field: "path",
                },
              },
            }
          : mapError(error, "");
      void (reply as unknown as FastifyReply).code(answer.statusCode).send(answer.body);
    },
  });
  // JSON only: a text/plain body is a client mistake (415), not a string message.
  app.removeContentTypeParser("text/plain");
  app.setValidatorCompiler(zodValidatorCompiler);
  // Responses are built from the library's own objects: documented by the schemas, sent as JSON.
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));

  let draining = false;
  app.addHook("preClose", async () => {
    draining = true;
  });
  app.addHook("onRequest", async (request, reply) => {
    reply.header("x-request-id", request.id);
    // Many HTTP clients send Content-Type: application/json on every request: a GET or DELETE
    // with that header and no body has no body, not an empty JSON document.
    if ((request.method === "GET" || request.method === "DELETE") && !hasBody(request.headers)) {
      delete request.headers["content-type"];
    }
    // Liveness holds while draining: a process finishing its requests is alive, not to be killed.
    if (draining && request.url !== "/live") {
      reply.header("connection", "close");
      throw new HttpError(503, "shutting_down", "the service is shutting down; retry on another instance", {
        headers: { "retry-after": "1" },
      });
    }
  });
  app.addHook("onResponse", async (request, reply) => {
    const route = request.routeOptions.url ?? "unmatched";
    metrics.observeHttp(request.method, route, reply.statusCode, reply.elapsedTime / 1000);
  });

  app.setErrorHandler((error, request, reply) => {
    const mapped = mapError(error, request.id);
    if (mapped.internal) request.log.error({ err: error }, "request failed");
    else if (mapped.statusCode === 503) request.log.warn({ code: mapped.body.error.code }, "unavailable");
    return reply.code(mapped.statusCode).headers(mapped.headers).send(mapped.body);
  });
  app.setNotFoundHandler((request, reply) =>
    reply.code(404).send({
      error: { code: "not_found", message: `no route ${request.method} ${request.url.split("?")[0]}` },
    }),
  );

  await app.register(swagger, swaggerOptions({ authenticated: apiKeys.enabled }));
  await app.register(swaggerUi, swaggerUiOptions());
  app
    .withTypeProvider<ZodTypeProvider>()
    .get("/openapi.json", { schema: { hide: true } }, async () => app.swagger());
  operationsRoutes(app, { memory, health, metrics });

  const principals = new WeakMap<FastifyRequest, Principal>();
  const tenants = new Map<string, MemoryManager>();
  const memoryFor = (request: FastifyRequest): MemoryManager => {
    const { tenant } = principals.get(request) ?? ANONYMOUS;
    let tenantMemory = tenants.get(tenant);
    if (!tenantMemory) {
      tenantMemory = memory.forTenant(tenant);
      tenants.set(tenant, tenantMemory);
    }
    return tenantMemory;
  };

  await app.register(
    async (v1) => {
      // Authentication runs before the rate limit (route-level hooks run after these), so that
      // limits count per key.
      v1.addHook("onRequest", async (request, reply) => {
        if (!apiKeys.enabled) return;
        const key = presentedKey(request.headers);
        const principal = key === null ? null : apiKeys.authenticate(key);
        if (!principal) {
          reply.header("www-authenticate", 'Bearer realm="swisper-memory"');
          throw new HttpError(
            401,
            "unauthorized",
            key === null
              ? "an API key is required: Authorization: Bearer <key> or X-API-Key: <key>"
              : "the API key is not valid",
          );
        }
        principals.set(request, principal);
      });
      if (rateLimitPerMinute > 0) {
        await v1.register(rateLimit, {
          max: rateLimitPerMinute,
          timeWindow: 60_000,
          hook: "onRequest",
          keyGenerator: (request) => {
            const principal = principals.get(request);
            return principal ? `key:${principal.keyId}` : `ip:${request.ip}`;
          },
          ...(redis
            ? {
                store: redisRateLimitStore({
                  redis,
                  keyPrefix,
                  // While draining, the connections close under the store's syncs: not news.
                  logger: {
                    warn: (details, message) => draining || app.log.warn(details, message),
                    error: (details, message) => draining || app.log.error(details, message),
                  },
                  redisUsable: () =>
                    !draining &&
                    redis.isReady &&
                    memory.circuitBreaker.redis.getState() !== CircuitState.OPEN,
                }),
              }
            : {}),
          errorResponseBuilder: (_request, context) =>
            new HttpError(
              429,
              "rate_limited",
              `more than ${context.max} requests per minute; retry in ${context.after}`,
            ),
        });
      }
      sessionRoutes(v1, {
        memoryFor,
        metrics,
        authenticated: apiKeys.enabled,
        rateLimited: rateLimitPerMinute > 0,
      });
    },
    { prefix: "/v1" },
  );

  return app;
}

function hasBody(headers: Record<string, string | string[] | undefined>): boolean {
  const length = headers["content-length"];
  return headers["transfer-encoding"] !== undefined || (length !== undefined && length !== "0");
}
