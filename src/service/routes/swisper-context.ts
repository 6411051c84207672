import type { SwisperContext } from "../../types.js";
import { bodyExamples, json } from "../answers.js";
import { notFound } from "../http-errors.js";
import { SessionParamsSchema, SwisperContextSchema } from "../schemas.js";
import { bodyFieldNames } from "../validation.js";
import type { SessionScope } from "./session-scope.js";

bodyFieldNames.set(SwisperContextSchema, "context");

/** `GET` and `PUT /v1/sessions/{session_id}/swisper-context`: the orchestrator's saved state. */
export function swisperContextRoutes(scope: SessionScope): void {
  loadRoute(scope);
  saveRoute(scope);
}

function loadRoute({ routes, memoryFor, metrics, tag, security, errors }: SessionScope): void {
  routes.get(
    "/sessions/:session_id/swisper-context",
    {
      schema: {
        operationId: "loadSwisperContext",
        tags: [tag],
        summary: "Load the session's SwisperContext",
        description: "The orchestrator's state, as last saved.",
        security,
        params: SessionParamsSchema,
        response: {
          200: json("The saved SwisperContext", SwisperContextSchema),
          ...errors([400, 404], { 404: "The session has no saved SwisperContext (`not_found`)" }),
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
}

function saveRoute({ routes, memoryFor, metrics, tag, security, errors }: SessionScope): void {
  routes.put(
    "/sessions/:session_id/swisper-context",
    {
      schema: {
        operationId: "saveSwisperContext",
        tags: [tag],
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
          ...errors([400, 413, 415]),
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
}
