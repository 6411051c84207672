import rateLimit from "@fastify/rate-limit";
import fp from "fastify-plugin";
import type { CircuitBreaker } from "../../resilience/index.js";
import { CircuitState } from "../../resilience/index.js";
import type { RedisConnection } from "../../storage/redis-client.js";
import { HttpError } from "../http-errors.js";
import { redisRateLimitStore } from "../rate-limit-store.js";

export interface RateLimitOptions {
  /** Requests per API key (per client address without keys) and minute. */
  perMinute: number;
  /** Where every instance's counts meet; without it, each instance counts alone. Never closed here. */
  redis: RedisConnection | null;
  /** Prefix of the counter keys in Redis (the manager's). */
  keyPrefix: string;
  /** The manager's Redis breaker: while it is open, counting stays in this process (no sync waits on a timeout). */
  redisBreaker: CircuitBreaker;
}

/**
 * More than `perMinute` requests of one key in a minute answer 429 `rate_limited` with
 * Retry-After. Register it after `authentication` (its hook decides the key) and `draining`.
 */
export const rateLimiting = fp<RateLimitOptions>(
  async (app, { perMinute, redis, keyPrefix, redisBreaker }) => {
    // While draining, the connections close under the store's syncs: not news.
    const quietWhileDraining =
      (log: (details: Record<string, unknown>, message: string) => void) =>
      (details: Record<string, unknown>, message: string) =>
        app.isDraining() || log(details, message);
    await app.register(rateLimit, {
      max: perMinute,
      timeWindow: 60_000,
      hook: "onRequest",
      keyGenerator: (request) => (request.principal ? `key:${request.principal.keyId}` : `ip:${request.ip}`),
      ...(redis
        ? {
            store: redisRateLimitStore({
              redis,
              keyPrefix,
              logger: {
                warn: quietWhileDraining((details, message) => app.log.warn(details, message)),
                error: quietWhileDraining((details, message) => app.log.error(details, message)),
              },
              redisUsable: () =>
                !app.isDraining() && redis.isReady && redisBreaker.getState() !== CircuitState.OPEN,
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
  },
  { name: "rate-limit", dependencies: ["auth", "draining"] },
);
