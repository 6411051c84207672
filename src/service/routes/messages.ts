import { bodyExamples, json } from "../answers.js";
import {
  AddMessagesBodySchema,
  AddMessagesQuerySchema,
  AppendResultSchema,
  SessionParamsSchema,
} from "../schemas.js";
import { bodyFieldNames } from "../validation.js";
import type { SessionScope } from "./session-scope.js";

bodyFieldNames.set(AddMessagesBodySchema, "message");

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

/** `POST /v1/sessions/{session_id}/messages`: the write path's door. */
export function messagesRoutes({ routes, memoryFor, metrics, tag, security, errors }: SessionScope): void {
  routes.post(
    "/sessions/:session_id/messages",
    {
      schema: {
        operationId: "addMessages",
        tags: [tag],
        summary: "Add messages to the session",
        description:
          "One message, or a batch `{messages: [...]}` (1-1000, stored in order). Each message is in the " +
          "transcript (PostgreSQL) when this answers. A message with an `id` already stored is not stored " +
          "again (`duplicate: true`). `user_id` records the session's user when it has none yet.",
        security,
        params: SessionParamsSchema,
        querystring: AddMessagesQuerySchema,
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
          ...errors([400, 413, 415]),
        },
      },
    },
    async (request, reply) => {
      const { session_id: sessionId } = request.params;
      const body = request.body;
      // One message or a batch, as sent: the library names a bad field the way the body has it.
      const messages = "messages" in body ? body.messages : body;
      const memory = memoryFor(request);
      const appended = await metrics.timeWrite("add_messages", () =>
        memory.addMessages(sessionId, messages, request.query),
      );
      reply.code(appended.some((entry) => !entry.duplicate) ? 201 : 200);
      return { session_id: sessionId, messages: appended };
    },
  );
}
