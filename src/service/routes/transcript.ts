import { json } from "../answers.js";
import { SessionParamsSchema, TranscriptPageSchema, TranscriptQuerySchema } from "../schemas.js";
import type { SessionScope } from "./session-scope.js";

/** `GET /v1/sessions/{session_id}/messages`: the whole transcript, a page at a time. */
export function transcriptRoutes(scope: SessionScope): void {
  const { routes, memoryFor, metrics, tag, security, errors } = scope;
  routes.get(
    "/sessions/:session_id/messages",
    {
      schema: {
        operationId: "getTranscript",
        tags: [tag],
        summary: "Read the session's whole transcript",
        description:
          "Every message ever written, summarized ones included, in seq order: those after `after_seq`, at " +
          "most `limit`. Each has its seq, tokens and `summarized` (the current summary covers it). " +
          "`next_after_seq` continues; null on the last page.",
        security,
        params: SessionParamsSchema,
        querystring: TranscriptQuerySchema,
        response: {
          200: json("A page of the transcript", TranscriptPageSchema, {
            page: {
              summary: "The first two messages, the first one summarized",
              value: {
                session_id: "session_123",
                messages: [
                  {
                    role: "user",
                    content: "I want to buy a laptop",
                    timestamp: 1795492748,
                    seq: 1,
                    tokens: 10,
                    summarized: true,
                  },
                  {
                    role: "assistant",
                    content: "What is your budget?",
                    timestamp: 1795492751,
                    seq: 2,
                    tokens: 12,
                    summarized: false,
                  },
                ],
                next_after_seq: 2,
              },
            },
          }),
          ...errors([400, 404]),
        },
      },
    },
    async (request) => {
      const { session_id: sessionId } = request.params;
      const memory = memoryFor(request);
      const page = await metrics.timeRead("transcript", () => memory.getTranscript(sessionId, request.query));
      if (page.messages.length === 0 && request.query.after_seq === 0) {
        await scope.requireSession(memory, sessionId);
      }
      return page;
    },
  );
}
