import type { FastifyInstance } from "fastify";
import { bufferRoutes } from "./buffer.js";
import { configRoutes } from "./config.js";
import { contextRoutes } from "./context.js";
import { deleteRoute } from "./delete-route.js";
import { exportRoutes } from "./export.js";
import { legacyRoutes } from "./legacy.js";
import { messagesRoutes } from "./messages.js";
import { searchRoutes } from "./search.js";
import { sessionInfoRoutes } from "./session-info.js";
import { sessionListRoutes } from "./session-list.js";
import { type SessionRoutesOptions, type SessionScope, sessionScope } from "./session-scope.js";
import { statsRoutes } from "./stats.js";
import { summariesRoutes } from "./summaries.js";
import { swisperContextRoutes } from "./swisper-context.js";
import { transcriptRoutes } from "./transcript.js";
import { usersRoutes } from "./users.js";

/**
 * `/v1/sessions/{session_id}/...`: the library's methods over HTTP, with the library's shapes,
 * one file a resource. Registered in the order the OpenAPI document lists them.
 */
export function sessionRoutes(app: FastifyInstance, options: SessionRoutesOptions): void {
  const scope = sessionScope(app, options);
  sessionListRoutes(scope);
  messagesRoutes(scope);
  transcriptRoutes(scope);
  contextRoutes(scope);
  bufferRoutes(scope);
  configRoutes(scope);
  statsRoutes(scope);
  summariesRoutes(scope);
  swisperContextRoutes(scope);
  sessionInfoRoutes(scope);
  exportRoutes(scope);
  eraseSessionRoute(scope);
  searchRoutes(scope);
  usersRoutes(scope);
  legacyRoutes(scope);
}

/** `DELETE /v1/sessions/{session_id}`: erases the session everywhere. */
function eraseSessionRoute(scope: SessionScope): void {
  deleteRoute(scope, {
    path: "",
    operationId: "clearSessionMemory",
    summary: "Erase the session",
    description:
      "Everywhere: transcript, summaries, config, SwisperContext and Redis. Nothing written before " +
      "the erase completed is visible again.",
    done: "Erased",
    operation: "clear",
    run: (memory, sessionId) => memory.clearSessionMemory(sessionId),
  });
}
