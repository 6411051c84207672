import { bodyExamples, json } from "../answers.js";
import {
  AddSummaryResultSchema,
  NewSummarySchema,
  SessionParamsSchema,
  SummariesQuerySchema,
  SummaryHistorySchema,
} from "../schemas.js";
import { bodyFieldNames } from "../validation.js";
import { deleteRoute } from "./delete-route.js";
import type { SessionScope } from "./session-scope.js";

// Fields are named as the library names them: `summary_text`, `metadata`.
bodyFieldNames.set(NewSummarySchema, "");

/** `GET`, `POST` and `DELETE /v1/sessions/{session_id}/summaries`: the summary versions. */
export function summariesRoutes(scope: SessionScope): void {
  historyRoute(scope);
  addSummaryRoute(scope);
  clearSummariesRoute(scope);
}

function historyRoute(scope: SessionScope): void {
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

function addSummaryRoute({ routes, memoryFor, metrics, tag, security, errors }: SessionScope): void {
  routes.post(
    "/sessions/:session_id/summaries",
    {
      schema: {
        operationId: "addSummary",
        tags: [tag],
        summary: "Add a summary version",
        description:
          "A new current summary that covers no new messages: the range stays the previous version's " +
          "(add_summary in the Memory Manager API specification), e.g. to import a summary from another " +
          "store or to correct one.",
        security,
        params: SessionParamsSchema,
        body: NewSummarySchema,
        bodyExamples: bodyExamples(NewSummarySchema, {
          imported: {
            summary: "A summary brought over from another store",
            value: {
              summary_text: "The user wants a light laptop under 1500 CHF for university.",
              metadata: { imported_from: "legacy" },
            },
          },
        }),
        response: {
          200: json(
            "A summarization step committed a version meanwhile: nothing was written (send it again to replace that one)",
            AddSummaryResultSchema,
            {
              raced: { summary: "Not added", value: { session_id: "session_123", added: false } },
            },
          ),
          201: json("Added: it is the current summary", AddSummaryResultSchema),
          ...errors([400, 413, 415]),
        },
      },
    },
    async (request, reply) => {
      const { session_id: sessionId } = request.params;
      const { summary_text: text, metadata } = request.body;
      const memory = memoryFor(request);
      const added = await metrics.timeWrite("add_summary", () =>
        memory.summaryStore.addSummary(sessionId, text, metadata),
      );
      reply.code(added ? 201 : 200);
      return { session_id: sessionId, added };
    },
  );
}

function clearSummariesRoute(scope: SessionScope): void {
  deleteRoute(scope, {
    path: "summaries",
    operationId: "clearSummaries",
    summary: "Delete the session's summaries",
    description:
      "Every version. The messages they covered count as unsummarized again: the transcript keeps " +
      "them, and they are summarized from it again (clear_summaries in the Memory Manager API specification).",
    done: "Deleted",
    operation: "clear_summaries",
    run: (memory, sessionId) => memory.summaryStore.clearSummaries(sessionId),
  });
}
