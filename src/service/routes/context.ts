import { json } from "../answers.js";
import { ContextQuerySchema, ContextResponseSchema, SessionParamsSchema } from "../schemas.js";
import type { SessionScope } from "./session-scope.js";

/** `GET /v1/sessions/{session_id}/context`: the read path, packed into a budget when asked. */
export function contextRoutes(scope: SessionScope): void {
  const { routes, memoryFor, metrics, tag, security, errors } = scope;
  routes.get(
    "/sessions/:session_id/context",
    {
      schema: {
        operationId: "getContext",
        tags: [tag],
        summary: "Get the session's context",
        description:
          "The buffer (recent messages), the current summary and the totals. With `max_tokens` (and " +
          "`model`), `messages` instead of `buffer_messages`: the summary as a system message, then the " +
          "newest messages that fit, ready to send to the model within the budget.",
        security,
        params: SessionParamsSchema,
        querystring: ContextQuerySchema,
        response: { 200: json("The session's context", ContextResponseSchema), ...errors([400, 404]) },
      },
    },
    async (request) => {
      const { session_id: sessionId } = request.params;
      const { max_tokens: maxTokens, model, min_seq: minSeq } = request.query;
      const memory = memoryFor(request);
      const budgeted = maxTokens !== undefined || model !== undefined;
      const read = () =>
        memory.getContext(sessionId, {
          ...(maxTokens !== undefined ? { max_tokens: maxTokens } : {}),
          ...(model !== undefined ? { model } : {}),
          ...(minSeq !== undefined ? { min_seq: minSeq } : {}),
        });
      const context = budgeted
        ? await metrics.timeContextPackaging(read)
        : await metrics.timeRead("context", read);
      if (context.buffer_info.last_seq === 0 && context.summary === null) {
        await scope.requireSession(memory, sessionId);
      }
      metrics.observeContext(context);
      if (!budgeted) return context;
      // One copy of the messages: those that fit are in `messages`.
      const { buffer_messages: _buffer, ...packed } = context;
      return packed;
    },
  );
}
