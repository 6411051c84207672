import { randomUUID } from "node:crypto";
import type { FastifyInstance, FastifyRequest } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import type { MemoryManager } from "../manager/memory-manager.js";
import type { SessionConfig } from "../manager/session-config.js";
import type { MemoryMetrics } from "../metrics/index.js";
import type { SwisperContext } from "../types.js";
import { bodyExamples, json, type ServiceErrors, v1ErrorAnswers } from "./answers.js";
import { notFound } from "./http-errors.js";
import { API_KEY_SECURITY } from "./openapi.js";
import {
  AddMessagesBodySchema,
  AppendResultSchema,
  ContextQuerySchema,
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
  /** Whether the routes need a credential (documents `security` and 401). */
  authenticated: boolean;
  /** Whether a rate limit applies (documents 429). */
  rateLimited: boolean;
}

const TAG = "sessions";

const MESSAGE_EXAMPLES = bodyExamples(AddMessagesBodySchema, {
  message: { summary: "One message", value: { role: "user", content: "I want to buy a laptop" } },
  batch: {
    summary: "A batch, with idempotency keys",
    value: {
      messages: [
        { role: "assistant", content: "What is your budget?", id: "msg-2" },
        { role: "user", content: "Under 1500 CHF, and light.", id: "msg-3" },
      ],
    },
  },
  tool_call: {
    summary: "A tool call and its result",
    value: {
      messages: [
        {
          role: "assistant",
          content: null,
          tool_calls: [
            {
              id: "call_1",
              type: "function",
              function: { name: "search_products", arguments: '{"query":"light laptop"}' },
            },
          ],
        },
        { role: "tool", tool_call_id: "call_1", content: '[{"name":"Air 13","price_chf":1299}]' },
      ],
    },
  },
});

/**
 * `/v1/sessions/{session_id}/...`: the library's methods over HTTP, with the library's shapes.
 * Reads of a session the tenant never wrote to answer 404, so a tenant probing another tenant's
 * session ids learns nothing (its own namespace has no such session).
 */
export async function sessionRoutes(app: FastifyInstance, options: SessionRoutesOptions): Promise<void> {
  const { memoryFor, metrics } = options;
  const routes = app.withTypeProvider<ZodTypeProvider>();
  const security = options.authenticated ? API_KEY_SECURITY : [];
  const service: ServiceErrors = options;
  const errors = (...own: Parameters<typeof v1ErrorAnswers>[1]) => v1ErrorAnswers(service, own);
  const existence = new SessionExistence();
  const unknownSession = (sessionId: string) => notFound(`session '${sessionId}' has no memory`);

  routes.post(
    "/sessions/:session_id/messages",
    {
      schema: {
        operationId: "addMessages",
        tags: [TAG],
        summary: "Add messages to the session",
        description:
          "One message, or a batch `{messages: [...]}` (1-1000, stored in order). Each message is in the " +
          "transcript (PostgreSQL) when this answers. A message with an `id` already stored is not stored " +
          "again (`duplicate: true`).",
        security,
        params: SessionParamsSchema,
        body: AddMessagesBodySchema,
        bodyExamples: MESSAGE_EXAMPLES,
        response: {
          200: json("Every message had an `id` stored before: nothing new was written", AppendResultSchema, {
            duplicate: {
              summary: "Sent again",
              value: { session_id: "session_123", messages: [{ seq: 2, duplicate: true }] },
            },
          }),
          201: json("Stored: at least one message was new", AppendResultSchema),
          ...errors(400, 413, 415),
        },
      },
    },
    async (request, reply) => {
      const { session_id: sessionId } = request.params;
      const body = request.body;
      // One message or a batch, as sent: the library names a bad field the way the body has it.
      const messages = "messages" in body ? body.messages : body;
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
        operationId: "getContext",
        tags: [TAG],
        summary: "Get the session's context",
        description:
          "The buffer (recent messages), the current summary and the totals. With `max_tokens` (and " +
          "`model`), also `messages`: the summary as a system message, then the newest messages that fit, " +
          "ready to send to the model within the budget.",
        security,
        params: SessionParamsSchema,
        querystring: ContextQuerySchema,
        response: { 200: json("The session's context", MemoryContextSchema), ...errors(400, 404) },
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
        operationId: "getSessionConfig",
        tags: [TAG],
        summary: "Get the session's config",
        description: "Every key: the session's overrides over the defaults.",
        security,
        params: SessionParamsSchema,
        response: { 200: json("The session's whole config", SessionConfigSchema), ...errors(400, 404) },
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
        operationId: "setSessionConfig",
        tags: [TAG],
        summary: "Set some of the session's config",
        description:
          "Keys left out keep their values; defaults of keys never set follow the keys that are set. " +
          "`summary_trigger_tokens` must stay below `max_buffer_tokens`.",
        security,
        params: SessionParamsSchema,
        body: SessionConfigPatchSchema,
        bodyExamples: bodyExamples(SessionConfigPatchSchema, {
          budget: {
            summary: "Summarize later, keep more",
            value: { summary_trigger_tokens: 2500, max_buffer_tokens: 3500 },
          },
        }),
        response: {
          200: json("The session's whole config after the change", SessionConfigSchema),
          ...errors(400, 413, 415),
        },
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
        operationId: "getMemoryStats",
        tags: [TAG],
        summary: "Get the session's memory figures",
        description:
          "Buffer, summary, Redis, config and token-cache figures for the session (get_memory_stats in " +
          "the Memory Manager API specification).",
        security,
        params: SessionParamsSchema,
        response: { 200: json("The session's figures", MemoryStatsSchema), ...errors(400, 404) },
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
        operationId: "getSummaryHistory",
        tags: [TAG],
        summary: "List the session's summary versions",
        description: "The newest versions first, each with the transcript range it covers.",
        security,
        params: SessionParamsSchema,
        querystring: SummariesQuerySchema,
        response: {
          200: json("The newest summary versions (none yet: an empty list)", SummaryHistorySchema),
          ...errors(400, 404),
        },
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
        operationId: "loadSwisperContext",
        tags: [TAG],
        summary: "Load the session's SwisperContext",
        description: "The orchestrator's state, as last saved.",
        security,
        params: SessionParamsSchema,
        response: {
          200: json("The saved SwisperContext", SwisperContextSchema),
          ...v1ErrorAnswers(service, [400, 404], {
            404: "The session has no saved SwisperContext (`not_found`)",
          }),
        },
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
        operationId: "saveSwisperContext",
        tags: [TAG],
        summary: "Save the session's SwisperContext",
        description:
          "The orchestrator's state (at most 1 MiB; fields beyond the known ones are kept). It never " +
          "enters the LLM buffer. `session_id` is set to the path's when absent and must equal it.",
        security,
        params: SessionParamsSchema,
        body: SwisperContextSchema,
        bodyExamples: bodyExamples(SwisperContextSchema, {
          search: {
            summary: "Searching, with a budget",
            value: { current_state: "search", preferences: { budget_chf: 1500 } },
          },
        }),
        response: {
          200: json("The saved SwisperContext, with `session_id`", SwisperContextSchema),
          ...errors(400, 413, 415),
        },
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
        operationId: "clearSessionMemory",
        tags: [TAG],
        summary: "Erase the session",
        description:
          "Everywhere: transcript, summaries, config, SwisperContext and Redis. Nothing written before " +
          "the erase completed is visible again.",
        security,
        params: SessionParamsSchema,
        response: {
          204: z.null().describe("Erased"),
          // The operation takes no body, but one sent is read (and refused) before it runs.
          ...v1ErrorAnswers(service, [400, 404, 413, 415], {
            413: "A body was sent (this operation takes none), larger than the limit (`payload_too_large`)",
            415: "A body was sent (this operation takes none), not JSON (`unsupported_media_type`)",
          }),
        },
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
