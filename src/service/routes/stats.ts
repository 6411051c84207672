import { json } from "../answers.js";
import { MemoryStatsSchema, SessionParamsSchema } from "../schemas.js";
import type { SessionScope } from "./session-scope.js";

/** `GET /v1/sessions/{session_id}/stats` (spec: `get_memory_stats`). */
export function statsRoutes(scope: SessionScope): void {
  const { routes, memoryFor, metrics, tag, security, errors } = scope;
  routes.get(
    "/sessions/:session_id/stats",
    {
      schema: {
        operationId: "getMemoryStats",
        tags: [tag],
        summary: "Get the session's memory figures",
        description:
          "Buffer, summary, Redis, config and token-cache figures for the session (get_memory_stats in " +
          "the Memory Manager API specification).",
        security,
        params: SessionParamsSchema,
        response: { 200: json("The session's figures", MemoryStatsSchema), ...errors([400, 404]) },
      },
    },
    async (request) => {
      const { session_id: sessionId } = request.params;
      const memory = memoryFor(request);
      const stats = await metrics.timeRead("stats", () => memory.getMemoryStats(sessionId));
      if (stats.buffer.last_seq === 0 && (await scope.isDefaultConfig(memory, stats.session_config))) {
        await scope.requireSession(memory, sessionId);
      }
      return stats;
    },
  );
}
