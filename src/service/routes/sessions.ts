import type { FastifyInstance } from "fastify";
import { z } from "zod";
import { SessionParamsSchema } from "../schemas.js";
import { configRoutes } from "./config.js";
import { contextRoutes } from "./context.js";
import { legacyRoutes } from "./legacy.js";
import { messagesRoutes } from "./messages.js";
import { type SessionRoutesOptions, type SessionScope, sessionScope } from "./session-scope.js";
import { statsRoutes } from "./stats.js";
import { summariesRoutes } from "./summaries.js";
import { swisperContextRoutes } from "./swisper-context.js";

/**
 * `/v1/sessions/{session_id}/...`: the library's methods over HTTP, with the library's shapes,
 * one file a resource. Registered in the order the OpenAPI document lists them.
 */
export function sessionRoutes(app: FastifyInstance, options: SessionRoutesOptions): void {
  const scope = sessionScope(app, options);
  messagesRoutes(scope);
  contextRoutes(scope);
  configRoutes(scope);
  statsRoutes(scope);
  summariesRoutes(scope);
  swisperContextRoutes(scope);
  eraseSessionRoute(scope);
  legacyRoutes(scope);
}

/** `DELETE /v1/sessions/{session_id}`: erases the session everywhere. */
function eraseSessionRoute(scope: SessionScope): void {
  const { routes, memoryFor, metrics, tag, security, errors } = scope;
  routes.delete(
    "/sessions/:session_id",
    {
      schema: {
        operationId: "clearSessionMemory",
        tags: [tag],
        summary: "Erase the session",
        description:
          "Everywhere: transcript, summaries, config, SwisperContext and Redis. Nothing written before " +
          "the erase completed is visible again.",
        security,
        params: SessionParamsSchema,
        response: {
          204: z.null().describe("Erased"),
          // The operation takes no body, but one sent is read (and refused) before it runs.
          ...errors([400, 404, 413, 415], {
            413: "A body was sent (this operation takes none), larger than the limit (`payload_too_large`)",
            415: "A body was sent (this operation takes none), not JSON (`unsupported_media_type`)",
          }),
        },
      },
    },
    async (request, reply) => {
      const { session_id: sessionId } = request.params;
      const memory = memoryFor(request);
      await scope.requireSession(memory, sessionId);
      await metrics.timeWrite("clear", () => memory.clearSessionMemory(sessionId));
      return reply.code(204).send(null);
    },
  );
}
