import { randomUUID } from "node:crypto";
import type { FastifyInstance, FastifyRequest } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import type { MemoryManager } from "../../manager/memory-manager.js";
import type { SessionConfig } from "../../manager/session-config.js";
import type { MemoryMetrics } from "../../metrics/index.js";
import { type ServiceErrors, v1ErrorAnswers } from "../answers.js";
import { notFound } from "../http-errors.js";
import { API_KEY_SECURITY } from "../openapi.js";
import type { ZodRoutes } from "../validation.js";

/**
 * Largest import body by default: a restore streams in (one session's transaction at a time), so
 * the bound is how long one request may hold the service, not memory. Larger restores: the CLI.
 */
export const DEFAULT_IMPORT_BODY_LIMIT_BYTES = 256 * 1024 * 1024;

export interface SessionRoutesOptions {
  /** The memory of the request's tenant (resolved from its API key). */
  memoryFor(request: FastifyRequest): MemoryManager;
  metrics: MemoryMetrics;
  /** Whether the routes need a credential (documents `security` and 401). */
  authenticated: boolean;
  /** Whether a rate limit applies (documents 429). */
  rateLimited: boolean;
  /** Largest body of `POST /v1/imports`, in bytes (default 256 MiB). */
  importBodyLimitBytes?: number;
}

/** What every `/v1/sessions/{session_id}/...` route shares; `sessionScope` builds it. */
export interface SessionScope {
  routes: ZodRoutes;
  memoryFor(request: FastifyRequest): MemoryManager;
  metrics: MemoryMetrics;
  /** The operations' tag in the OpenAPI document. */
  tag: string;
  /** Largest body of `POST /v1/imports`, in bytes. */
  importBodyLimitBytes: number;
  security: Record<string, string[]>[];
  /** A /v1 operation's error answers: its own, and those every /v1 operation gives. */
  errors: (
    own: Parameters<typeof v1ErrorAnswers>[1],
    descriptions?: Parameters<typeof v1ErrorAnswers>[2],
  ) => ReturnType<typeof v1ErrorAnswers>;
  /**
   * Throws 404 unless the tenant's session exists. Asked only when a read came back empty, so
   * reads of live sessions cost nothing extra.
   */
  requireSession(memory: MemoryManager, sessionId: string): Promise<void>;
  /** Whether a config is the defaults (a session never configured, or one that does not exist). */
  isDefaultConfig(memory: MemoryManager, config: SessionConfig): Promise<boolean>;
}

/**
 * Reads of a session the tenant never wrote to answer 404, so a tenant probing another tenant's
 * session ids learns nothing (its own namespace has no such session).
 */
export function sessionScope(app: FastifyInstance, options: SessionRoutesOptions): SessionScope {
  const { memoryFor, metrics } = options;
  const service: ServiceErrors = options;
  const existence = new SessionExistence(metrics);
  return {
    routes: app.withTypeProvider<ZodTypeProvider>(),
    memoryFor,
    metrics,
    tag: "sessions",
    importBodyLimitBytes: options.importBodyLimitBytes ?? DEFAULT_IMPORT_BODY_LIMIT_BYTES,
    security: options.authenticated ? API_KEY_SECURITY : [],
    errors: (own, descriptions) => v1ErrorAnswers(service, own, descriptions),
    async requireSession(memory, sessionId) {
      if (!(await existence.check(memory, sessionId))) {
        throw notFound(`session '${sessionId}' has no memory`);
      }
    },
    isDefaultConfig: (memory, config) => existence.isDefault(memory, config),
  };
}

/**
 * Whether a tenant's session exists: it has (or had, before a buffer clear) messages, a saved
 * SwisperContext, a summary (one added before any message), or a config that differs from the
 * defaults.
 */
class SessionExistence {
  // A session id nobody writes to: its config is the defaults (the same for every tenant).
  readonly #probeSession = `__swisper_memory_defaults_${randomUUID()}`;
  readonly #metrics: MemoryMetrics;
  #defaults: Promise<SessionConfig> | null = null;

  constructor(metrics: MemoryMetrics) {
    this.#metrics = metrics;
  }

  async isDefault(memory: MemoryManager, config: SessionConfig): Promise<boolean> {
    this.#defaults ??= memory.getSessionConfig(this.#probeSession).catch((error: unknown) => {
      this.#defaults = null;
      throw error;
    });
    const defaults = await this.#defaults;
    return (Object.keys(defaults) as (keyof SessionConfig)[]).every((key) => defaults[key] === config[key]);
  }

  check(memory: MemoryManager, sessionId: string): Promise<boolean> {
    return this.#metrics.timeRead("exists", async () => {
      const [info, saved, config, summaries] = await Promise.all([
        memory.bufferStore.getBufferInfo(sessionId),
        memory.loadContext(sessionId),
        memory.getSessionConfig(sessionId),
        memory.summaryStore.getSummaryHistory(sessionId, 1),
      ]);
      return (
        info.last_seq > 0 || saved !== null || summaries.length > 0 || !(await this.isDefault(memory, config))
      );
    });
  }
}
