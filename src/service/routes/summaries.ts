import { json } from "../answers.js";
import { SessionParamsSchema, SummariesQuerySchema, SummaryHistorySchema } from "../schemas.js";
import type { SessionScope } from "./session-scope.js";

/** `GET /v1/sessions/{session_id}/summaries`: the summary versions, newest first. */
export function summariesRoutes(scope: SessionScope): void {
  const { routes, memoryFor, metrics, tag, security, errors } = scope;
  routes.get(
    "/sessions/:session_id/summaries",
    {
      schema: {
        operationId: "getSummaryHistory",
        tags: [tag],
        summary: "List the session's summary versions",
        description: "The newest versions first, each with the transcript range it covers.",
        security,
        params: SessionParamsSchema,
        querystring: SummariesQuerySchema,
        response: {
          200: json("The newest summary versions (none yet: an empty list)", SummaryHistorySchema),
          ...errors([400, 404]),
        },
      },
    },
    async (request) => {
      const { session_id: sessionId } = request.params;
      const memory = memoryFor(request);
      const summaries = await metrics.timeRead("summaries", () =>
        memory.summaryStore.getSummaryHistory(sessionId, request.query.limit),
      );
      if (summaries.length === 0) await scope.requireSession(memory, sessionId);
      return { session_id: sessionId, summaries };
    },
  );
}
