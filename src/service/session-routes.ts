import { randomUUID } from "node:crypto";
import type { FastifyInstance, FastifyRequest } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import type { MemoryManager } from "../manager/memory-manager.js";
import type { SessionConfig } from "../manager/session-config.js";
import type { MemoryMetrics } from "../metrics/index.js";
import type { ChatMessage, SwisperContext } from "../types.js";
import { notFound } from "./http-errors.js";
import {
  AddMessagesBodySchema,
  AppendResultSchema,
  ContextQuerySchema,
  errorResponses,
  MemoryContextSchema,
  MemoryStatsSchema,
  SessionConfigPatchSchema,
  SessionConfigSchema,
  SessionParamsSchema,
  SummariesQuerySchema,
  SummaryHistorySchema,
  SwisperContextSchema,
} from "./schemas.js";
import { bodyFieldNames } from "./validation.js";

bodyFieldNames.set(AddMessagesBodySchema, "message");
bodyFieldNames.set(SessionConfigPatchSchema, "config");
bodyFieldNames.set(SwisperContextSchema, "context");

export interface SessionRoutesOptions {
  /** The memory of the request's tenant (resolved from its API key). */
  memoryFor(request: FastifyRequest): MemoryManager;
  metrics: MemoryMetrics;
  /** Whether the routes need a credential (documents `security`). */
  authenticated: boolean;
}

const TAG = "sessions";

/**
 * `/v1/sessions/{session_id}/...`: the library's methods over HTTP, with the library's shapes.
 * Reads of a session the tenant never wrote to answer 404, so a tenant probing another tenant's
 * session ids learns nothing (its own namespace has no such session).
 */
export async function sessionRoutes(app: FastifyInstance, options: SessionRoutesOptions): Promise<void> {
  const { memoryFor, metrics } = options;
  const routes = app.withTypeProvider<ZodTypeProvider>();
  const security: Record<string, string[]>[] = options.authenticated
    ? [{ bearerAuth: [] }, { apiKey: [] }]
    : [];
  const existence = new SessionExistence();
  const unknownSession = (sessionId: string) => notFound(`session '${sessionId}' has no memory`);

  routes.post(
    "/sessions/:session_id/messages",
    {
      schema: {
        tags: [TAG],
        summary: "Add one message, or a batch {messages: [...]}, to the session",
        description:
          "Each message is in the transcript (PostgreSQL) when this answers. A message with an `id` " +
          "already stored is not stored again (`duplicate: true`). 201 when something new was stored, " +
          "200 when every message was a duplicate.",
        security,
        params: SessionParamsSchema,
        body: AddMessagesBodySchema,
        response: {
          200: AppendResultSchema,
          201: AppendResultSchema,
          ...errorResponses(400, 401, 413, 429, 503),
        },
      },
    },
    async (request, reply) => {
      const { session_id: sessionId } = request.params;
      const body = request.body;
      const messages: ChatMessage[] = "messages" in body ? body.messages : [body];
      const memory = memoryFor(request);
      const appended = await metrics.timeWrite("add_messages", () => memory.addMessages(sessionId, messages));
      reply.code(appended.some((entry) => !entry.duplicate) ? 201 : 200);
      return { session_id: sessionId, messages: appended };
    },
  );

  routes.get(
    "/sessions/:session_id/context",
    {
      schema: {
        tags: [TAG],
        summary:
          "The session's context: buffer, current summary, totals; with max_tokens, a packed message list",
        security,
        params: SessionParamsSchema,
        querystring: ContextQuerySchema,
        response: { 200: MemoryContextSchema, ...errorResponses(400, 401, 404, 429, 503) },
      },
    },
    async (request) => {
      const { session_id: sessionId } = request.params;
      const { max_tokens: maxTokens, model } = request.query;
      const memory = memoryFor(request);
      const budgeted = maxTokens !== undefined || model !== undefined;
      const read = () =>
        memory.getContext(sessionId, {
          ...(maxTokens !== undefined ? { max_tokens: maxTokens } : {}),
          ...(model !== undefined ? { model } : {}),
        });
      const context = budgeted
        ? await metrics.timeContextPackaging(read)
        : await metrics.timeRead("context", read);
      if (context.buffer_info.last_seq === 0 && context.summary === null) {
        if (!(await existence.check(memory, sessionId, metrics))) throw unknownSession(sessionId);
      }
      metrics.observeContext(context);
      return context;
    },
  );

  routes.get(
    "/sessions/:session_id/config",
    {
      schema: {
        tags: [TAG],
        summary: "The session's whole config: its overrides over the defaults",
        security,
        params: SessionParamsSchema,
        response: { 200: SessionConfigSchema, ...errorResponses(400, 401, 404, 429, 503) },
      },
    },
    async (request) => {
      const { session_id: sessionId } = request.params;
      const memory = memoryFor(request);
      const config = await metrics.timeRead("config", () => memory.getSessionConfig(sessionId));
      if (await existence.isDefault(memory, config)) {
        if (!(await existence.check(memory, sessionId, metrics))) throw unknownSession(sessionId);
      }
      return config;
    },
  );

  routes.put(
    "/sessions/:session_id/config",
    {
      schema: {
        tags: [TAG],
        summary: "Set some of the session's settings; keys left out keep their values",
        security,
        params: SessionParamsSchema,
        body: SessionConfigPatchSchema,
        response: { 200: SessionConfigSchema, ...errorResponses(400, 401, 413, 429, 503) },
      },
    },
    async (request) => {
      const { session_id: sessionId } = request.params;
      const memory = memoryFor(request);
      const patch: Partial<SessionConfig> = request.body;
      return metrics.timeWrite("set_config", () => memory.setSessionConfig(sessionId, patch));
    },
  );

  routes.get(
    "/sessions/:session_id/stats",
    {
      schema: {
        tags: [TAG],
        summary:
          "Buffer, summary, Redis and config figures for the session (get_memory_stats in the Memory Manager API specification)",
        security,
        params: SessionParamsSchema,
        response: { 200: MemoryStatsSchema, ...errorResponses(400, 401, 404, 429, 503) },
      },
    },
    async (request) => {
      const { session_id: sessionId } = request.params;
      const memory = memoryFor(request);
      const stats = await metrics.timeRead("stats", () => memory.getMemoryStats(sessionId));
      if (stats.buffer.last_seq === 0 && (await existence.isDefault(memory, stats.session_config))) {
        if (!(await existence.check(memory, sessionId, metrics))) throw unknownSession(sessionId);
      }
      return stats;
    },
  );

  routes.get(
    "/sessions/:session_id/summaries",
    {
      schema: {
        tags: [TAG],
        summary: "The newest summary versions, newest first, each with the range it covers",
        security,
        params: SessionParamsSchema,
        querystring: SummariesQuerySchema,
        response: { 200: SummaryHistorySchema, ...errorResponses(400, 401, 404, 429, 503) },
      },
    },
    async (request) => {
      const { session_id: sessionId } = request.params;
      const memory = memoryFor(request);
      const summaries = await metrics.timeRead("summaries", () =>
        memory.summaryStore.getSummaryHistory(sessionId, request.query.limit),
      );
      if (summaries.length === 0 && !(await existence.check(memory, sessionId, metrics))) {
        throw unknownSession(sessionId);
      }
      return { session_id: sessionId, summaries };
    },
  );

  routes.get(
    "/sessions/:session_id/swisper-context",
    {
      schema: {
        tags: [TAG],
        summary: "The last saved SwisperContext (the orchestrator's state)",
        security,
        params: SessionParamsSchema,
        response: { 200: SwisperContextSchema, ...errorResponses(400, 401, 404, 429, 503) },
      },
    },
    async (request) => {
      const { session_id: sessionId } = request.params;
      const memory = memoryFor(request);
      const context = await metrics.timeRead("swisper_context", () => memory.loadContext(sessionId));
      if (!context) throw notFound(`session '${sessionId}' has no saved SwisperContext`);
      return context;
    },
  );

  routes.put(
    "/sessions/:session_id/swisper-context",
    {
      schema: {
        tags: [TAG],
        summary: "Save the orchestrator's state; it never enters the LLM buffer",
        security,
        params: SessionParamsSchema,
        body: SwisperContextSchema,
        response: { 200: SwisperContextSchema, ...errorResponses(400, 401, 413, 429, 503) },
      },
    },
    async (request) => {
      const { session_id: sessionId } = request.params;
      const memory = memoryFor(request);
      const context = { ...request.body, session_id: request.body.session_id ?? sessionId } as SwisperContext;
      await metrics.timeWrite("save_context", () => memory.saveContext(sessionId, context));
      return context;
    },
  );

  routes.delete(
    "/sessions/:session_id",
    {
      schema: {
        tags: [TAG],
        summary: "Erase the session everywhere: transcript, summaries, config, SwisperContext, Redis",
        security,
        params: SessionParamsSchema,
        response: { 204: z.null().describe("Erased"), ...errorResponses(400, 401, 404, 429, 503) },
      },
    },
    async (request, reply) => {
      const { session_id: sessionId } = request.params;
      const memory = memoryFor(request);
      if (!(await existence.check(memory, sessionId, metrics))) throw unknownSession(sessionId);
      await metrics.timeWrite("clear", () => memory.clearSessionMemory(sessionId));
      return reply.code(204).send(null);
    },
  );
}

/**
 * Whether a tenant's session exists: it has (or had, before a buffer clear) messages, a saved
 * SwisperContext, or a config that differs from the defaults. Asked only when a read came back
 * empty, so reads of live sessions cost nothing extra.
 */
class SessionExistence {
  // A session id nobody writes to: its config is the defaults (the same for every tenant).
  readonly #probeSession = `__swisper_memory_defaults_${randomUUID()}`;
  #defaults: Promise<SessionConfig> | null = null;

  async isDefault(memory: MemoryManager, config: SessionConfig): Promise<boolean> {
    this.#defaults ??= memory.getSessionConfig(this.#probeSession).catch((error: unknown) => {
      this.#defaults = null;
      throw error;
    });
    const defaults = await this.#defaults;
    return (Object.keys(defaults) as (keyof SessionConfig)[]).every((key) => defaults[key] === config[key]);
  }

  check(memory: MemoryManager, sessionId: string, metrics: MemoryMetrics): Promise<boolean> {
    return metrics.timeRead("exists", async () => {
      const [info, saved, config] = await Promise.all([
        memory.bufferStore.getBufferInfo(sessionId),
        memory.loadContext(sessionId),
        memory.getSessionConfig(sessionId),
      ]);
      return info.last_seq > 0 || saved !== null || !(await this.isDefault(memory, config));
    });
  }
}
