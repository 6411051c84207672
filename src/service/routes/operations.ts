import type { FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import type { MemoryManager } from "../../manager/memory-manager.js";
import type { MemoryMetrics } from "../../metrics/index.js";
import { errorAnswers, json, SHUTTING_DOWN } from "../answers.js";
import type { HealthProvider } from "../health.js";
import { ErrorBodySchema, HealthReportSchema, LiveSchema, ReadySchema } from "../schemas.js";
import type { ZodRoutes } from "../validation.js";

export interface OperationsRoutesOptions {
  memory: MemoryManager;
  health: HealthProvider;
  metrics: MemoryMetrics;
}

const TAG = "operations";
// No API key: these hold no session data.
const PUBLIC: [] = [];

// While draining, every route but /live answers the error `shutting_down` (see plugins/draining.ts).
const DRAINING = "the service is shutting down (`shutting_down`): the error, with Retry-After";
const RETRY_AFTER = {
  "Retry-After": { type: "integer" as const, description: "While shutting down: seconds to wait" },
};

/** `/live`, `/health`, `/ready` and `/metrics`: for probes and Prometheus, never rate limited. */
export function operationsRoutes(app: FastifyInstance, options: OperationsRoutesOptions): void {
  const routes = app.withTypeProvider<ZodTypeProvider>();
  liveRoute(routes);
  healthRoute(routes, options.health);
  readyRoute(routes, options.memory);
  metricsRoute(routes, options.metrics);
}

function liveRoute(routes: ZodRoutes): void {
  routes.get(
    "/live",
    {
      schema: {
        operationId: "getLiveness",
        tags: [TAG],
        summary: "Liveness",
        description:
          "200 while the process works (its event loop answers); checks no dependency, and holds while " +
          "the service drains.",
        security: PUBLIC,
        response: { 200: json("The process works", LiveSchema) },
      },
    },
    async () => ({ live: true as const }),
  );
}

function healthRoute(routes: ZodRoutes, health: HealthProvider): void {
  routes.get(
    "/health",
    {
      schema: {
        operationId: "getHealth",
        tags: [TAG],
        summary: "Health of each component",
        description:
          "Each component (postgres, redis, summarizer) up, degraded, down or disabled, and the circuit " +
          "breakers. Overall `down` (503) when no write can be acknowledged.",
        security: PUBLIC,
        response: {
          200: json("Up or degraded: writes are acknowledged", HealthReportSchema),
          503: {
            ...json(
              `Down (no write can be acknowledged): the report; or ${DRAINING}`,
              z.union([HealthReportSchema, ErrorBodySchema]),
              { shutting_down: SHUTTING_DOWN },
            ),
            headers: RETRY_AFTER,
          },
          ...errorAnswers([500]),
        },
      },
    },
    async (_request, reply) => {
      const report = await health();
      return reply.code(report.status === "down" ? 503 : 200).send(report);
    },
  );
}

function readyRoute(routes: ZodRoutes, memory: MemoryManager): void {
  routes.get(
    "/ready",
    {
      schema: {
        operationId: "getReadiness",
        tags: [TAG],
        summary: "Readiness",
        description:
          "200 while this instance can acknowledge writes (PostgreSQL, or Redis with a durable outbox). " +
          "Reads the breakers only: cheap at any probe rate.",
        security: PUBLIC,
        response: {
          200: json("Ready", ReadySchema, { ready: { summary: "Ready", value: { ready: true } } }),
          503: {
            ...json(
              `Not ready (no write can be acknowledged); or ${DRAINING}`,
              z.union([ReadySchema, ErrorBodySchema]),
              {
                storage_unavailable: {
                  summary: "No storage tier can acknowledge a write",
                  value: { ready: false, reason: "storage_unavailable" },
                },
                shutting_down: SHUTTING_DOWN,
              },
            ),
            headers: RETRY_AFTER,
          },
          ...errorAnswers([500]),
        },
      },
    },
    async (_request, reply) => {
      // The breakers' states, no probe: cheap enough for a load balancer's every few seconds.
      if (!memory.canAcknowledgeWrites()) {
        return reply.code(503).send({ ready: false, reason: "storage_unavailable" });
      }
      return { ready: true };
    },
  );
}

function metricsRoute(routes: ZodRoutes, metrics: MemoryMetrics): void {
  routes.get(
    "/metrics",
    {
      schema: {
        operationId: "getMetrics",
        tags: [TAG],
        summary: "Prometheus metrics",
        description: "Every metric prefixed `swisper_memory_`, in Prometheus text format 0.0.4.",
        security: PUBLIC,
        response: {
          200: {
            description: "The metrics",
            content: { "text/plain": { schema: z.string().describe("Prometheus text format 0.0.4") } },
          },
          503: {
            ...json(`While ${DRAINING}`, ErrorBodySchema, { shutting_down: SHUTTING_DOWN }),
            headers: RETRY_AFTER,
          },
          ...errorAnswers([500]),
        },
      },
    },
    async (_request, reply) => reply.type(metrics.contentType).send(await metrics.exposition()),
  );
}
