import { z } from "zod";
import type { MemoryManager } from "../../manager/memory-manager.js";
import type { WriteOperation } from "../../metrics/index.js";
import { NO_BODY } from "../answers.js";
import { SessionParamsSchema } from "../schemas.js";
import type { SessionScope } from "./session-scope.js";

/** What a `DELETE` of (a part of) a session is: where, its name in the document, what it runs. */
export interface DeleteRoute {
  /** Below the session: "" for the session itself, "buffer", "summaries". */
  path: string;
  operationId: string;
  summary: string;
  description: string;
  /** What the 204 means ("Erased"). */
  done: string;
  /** The latency histogram's operation label. */
  operation: WriteOperation;
  run(memory: MemoryManager, sessionId: string): Promise<unknown>;
}

/**
 * A `DELETE` that takes no body and answers 204; on a session the tenant does not have, 404 (a
 * tenant learns nothing of another's session ids).
 */
export function deleteRoute(scope: SessionScope, route: DeleteRoute): void {
  const { routes, memoryFor, metrics, tag, security, errors } = scope;
  routes.delete(
    `/sessions/:session_id${route.path ? `/${route.path}` : ""}`,
    {
      schema: {
        operationId: route.operationId,
        tags: [tag],
        summary: route.summary,
        description: route.description,
        security,
        params: SessionParamsSchema,
        response: { 204: z.null().describe(route.done), ...errors([400, 404, 413, 415], NO_BODY) },
      },
    },
    async (request, reply) => {
      const { session_id: sessionId } = request.params;
      const memory = memoryFor(request);
      await scope.requireSession(memory, sessionId);
      await metrics.timeWrite(route.operation, () => route.run(memory, sessionId));
      return reply.code(204).send(null);
    },
  );
}
