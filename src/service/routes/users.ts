import { z } from "zod";
import { strictObjectErrors } from "../../schemas/issues.js";
import { json, NO_BODY } from "../answers.js";
import { EraseUserResultSchema, UserIdSchema } from "../schemas.js";
import type { SessionScope } from "./session-scope.js";

const UserParamsSchema = z.strictObject({ user_id: UserIdSchema }, strictObjectErrors());

/** `DELETE /v1/users/{user_id}`: erases every session of one user. */
export function usersRoutes({ routes, memoryFor, metrics, tag, security, errors }: SessionScope): void {
  routes.delete(
    "/users/:user_id",
    {
      schema: {
        operationId: "eraseUser",
        tags: [tag],
        summary: "Erase every session of a user",
        description:
          "Every session of the tenant whose `user_id` this is, each erased everywhere as `DELETE " +
          "/v1/sessions/{session_id}` erases one (transcript, summaries, config, SwisperContext, Redis). " +
          "Answers how many sessions and messages were erased (0 when the user has none). On a 503, " +
          "some sessions may be erased: send it again.",
        security,
        params: UserParamsSchema,
        response: {
          200: json("Erased", EraseUserResultSchema),
          ...errors([400, 413, 415], NO_BODY),
        },
      },
    },
    async (request) => {
      const memory = memoryFor(request);
      return metrics.timeWrite("erase_user", () => memory.eraseUser(request.params.user_id));
    },
  );
}
