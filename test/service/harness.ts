import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from "fastify";
import { createMemoryManager, type MemoryManagerOptions } from "../../src/manager/create-memory-manager.js";
import type { MemoryManager } from "../../src/manager/memory-manager.js";
import { MemoryMetrics } from "../../src/metrics/index.js";
import { createMemoryService, type MemoryServiceOptions } from "../../src/service/index.js";
import { recordingLogger } from "../support/fixtures.js";
import type { TestDatabase, TestRedis } from "../support/servers.js";

/** How the service is deployed in a suite: Redis + PostgreSQL, or PostgreSQL alone. */
export interface Deployment {
  name: string;
  needsRedis: boolean;
}

export const DEPLOYMENTS: readonly Deployment[] = [
  { name: "Redis + PostgreSQL", needsRedis: true },
  { name: "PostgreSQL only", needsRedis: false },
];

export interface TestService {
  app: FastifyInstance;
  memory: MemoryManager;
  metrics: MemoryMetrics;
  close(): Promise<void>;
}

/**
 * A service over a manager on the test's own database (and Redis key prefix, when `redis` is
 * given), with instruments wired as `serve` wires them (`service.metrics`, default new ones).
 */
export async function openTestService(
  database: TestDatabase,
  redis: TestRedis | undefined,
  service: Omit<MemoryServiceOptions, "memory" | "redis"> = {},
  manager: Partial<MemoryManagerOptions> = {},
): Promise<TestService> {
  const metrics = service.metrics ?? new MemoryMetrics();
  const memory = await createMemoryManager({
    database: database.db,
    redis: redis?.redis ?? false,
    ...(redis ? { keyPrefix: redis.keyPrefix } : {}),
    logger: recordingLogger(),
    autoMigrate: false,
    ...manager,
    summarization: { idleFinalizeAfterMs: 0, ...manager.summarization, onJob: metrics.onJob },
  });
  const app = await createMemoryService({
    memory,
    metrics,
    redis: redis?.redis ?? null,
    ...(redis ? { keyPrefix: redis.keyPrefix } : {}),
    ...service,
  });
  return {
    app,
    memory,
    metrics,
    async close() {
      await app.close();
      await memory.close();
    },
  };
}

/**
 * The chat workload the metrics tests scrape after: per session, a config with a trigger low
 * enough that summaries are written, then 10 turns (POST the question, GET the context packed
 * into 200 tokens, POST the answer), one unbudgeted context read and one stats read.
 */
export async function chatWorkload(app: FastifyInstance, sessions: readonly string[]): Promise<void> {
  for (const id of sessions) {
    await call(app, "PUT", `/v1/sessions/${id}/config`, {
      body: {
        summary_trigger_tokens: 100,
        max_buffer_tokens: 400,
        keep_recent_tokens: 30,
        max_summary_tokens: 60,
      },
    });
    for (let turn = 0; turn < 10; turn++) {
      await call(app, "POST", `/v1/sessions/${id}/messages`, {
        body: { role: "user", content: `Turn ${turn}: which laptop is lightest under 1500 CHF?` },
      });
      await call(app, "GET", `/v1/sessions/${id}/context?max_tokens=200`);
      await call(app, "POST", `/v1/sessions/${id}/messages`, {
        body: {
          role: "assistant",
          content: `Turn ${turn}: the ThinkPad X1 Carbon, at 1.12 kg and 1399 CHF.`,
        },
      });
    }
    await call(app, "GET", `/v1/sessions/${id}/context`);
    await call(app, "GET", `/v1/sessions/${id}/stats`);
  }
}

/** `app.inject` with a JSON body and a parsed JSON answer. */
export async function call(
  app: FastifyInstance,
  method: InjectOptions["method"],
  url: string,
  options: { body?: unknown; headers?: Record<string, string> } = {},
): Promise<LightMyRequestResponse & { json: <T = Record<string, unknown>>() => T }> {
  const response = await app.inject({
    method,
    url,
    headers: options.headers ?? {},
    ...(options.body !== undefined ? { payload: options.body as Record<string, unknown> } : {}),
  });
  return Object.assign(response, { json: <T>() => JSON.parse(response.body) as T });
}

/** The error shape every route answers with, and nothing else (no stack, no driver message). */
export function expectErrorShape(
  body: unknown,
): asserts body is { error: { code: string; message: string; field?: string } } {
  if (typeof body !== "object" || body === null) throw new Error("error body is not an object");
  const keys = Object.keys(body);
  if (keys.length !== 1 || keys[0] !== "error") throw new Error(`error body has keys ${keys.join(", ")}`);
  const error = (body as { error: Record<string, unknown> }).error;
  for (const key of Object.keys(error)) {
    if (!["code", "message", "field"].includes(key)) throw new Error(`error has an unexpected key ${key}`);
  }
  if (typeof error.code !== "string" || typeof error.message !== "string")
    throw new Error("code or message missing");
  if (/\n\s+at\s/.test(error.message)) throw new Error("the message carries a stack trace");
}
