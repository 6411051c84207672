import { json } from "../answers.js";
import { BufferQuerySchema, BufferSchema, SessionParamsSchema } from "../schemas.js";
import { deleteRoute } from "./delete-route.js";
import type { SessionScope } from "./session-scope.js";

/** `GET` and `DELETE /v1/sessions/{session_id}/buffer` (spec: the BufferStore's reads and `clear_buffer`). */
export function bufferRoutes(scope: SessionScope): void {
  getBufferRoute(scope);
  clearBufferRoute(scope);
}

function getBufferRoute(scope: SessionScope): void {
  const { routes, memoryFor, metrics, tag, security, errors } = scope;
  routes.get(
    "/sessions/:session_id/buffer",
    {
      schema: {
        operationId: "getBuffer",
        tags: [tag],
        summary: "Get the session's buffer",
        description:
          "The newest `limit` buffered messages (all without `limit`) and the buffer's info, in one read " +
          "(get_messages and get_buffer_info in the Memory Manager API specification).",
        security,
        params: SessionParamsSchema,
        querystring: BufferQuerySchema,
        response: { 200: json("The buffer", BufferSchema), ...errors([400, 404]) },
      },
    },
    async (request) => {
      const { session_id: sessionId } = request.params;
      const memory = memoryFor(request);
      const state = await metrics.timeRead("buffer", () =>
        memory.bufferStore.getBuffer(sessionId, request.query.limit),
      );
      if (state.info.last_seq === 0 && state.summary === null) await scope.requireSession(memory, sessionId);
      return { session_id: sessionId, messages: state.messages, buffer_info: state.info };
    },
  );
}

function clearBufferRoute(scope: SessionScope): void {
  deleteRoute(scope, {
    path: "buffer",
    operationId: "clearBuffer",
    summary: "Empty the session's buffer",
    description:
      "The messages leave the buffer (and the context); the transcript keeps them, and they are " +
      "summarized from there (clear_buffer in the Memory Manager API specification).",
    done: "Emptied",
    operation: "clear_buffer",
    run: (memory, sessionId) => memory.bufferStore.clearBuffer(sessionId),
  });
}
