import { bodyExamples, json } from "../answers.js";
import { notFound } from "../http-errors.js";
import { SessionInfoSchema, SessionParamsSchema, SessionPatchSchema } from "../schemas.js";
import { bodyFieldNames } from "../validation.js";
import { SESSION_ITEM_EXAMPLE } from "./session-list.js";
import type { SessionScope } from "./session-scope.js";

// Fields are named as the library names them: `title`, `metadata`.
bodyFieldNames.set(SessionPatchSchema, "");

const SESSION_EXAMPLE = {
  ...SESSION_ITEM_EXAMPLE,
  title: "Laptop for university",
  metadata: { channel: "web" },
};

const noRecord = (sessionId: string) => notFound(`session '${sessionId}' has no memory`);

/** `GET` and `PATCH /v1/sessions/{session_id}`: the session's record, title, user and metadata. */
export function sessionInfoRoutes({ routes, memoryFor, metrics, tag, security, errors }: SessionScope): void {
  routes.get(
    "/sessions/:session_id",
    {
      schema: {
        operationId: "getSession",
        tags: [tag],
        summary: "Get the session's record",
        description:
          "What the listing shows of the session (title, user, counts, times, flags) and its metadata. " +
          "404 before the session's first message.",
        security,
        params: SessionParamsSchema,
        response: {
          200: json("The session", SessionInfoSchema, {
            session: { summary: "A session", value: SESSION_EXAMPLE },
          }),
          ...errors([400, 404]),
        },
      },
    },
    async (request) => {
      const { session_id: sessionId } = request.params;
      const memory = memoryFor(request);
      const session = await metrics.timeRead("session", () => memory.getSession(sessionId));
      if (!session) throw noRecord(sessionId);
      return session;
    },
  );
  routes.patch(
    "/sessions/:session_id",
    {
      schema: {
        operationId: "updateSession",
        tags: [tag],
        summary: "Set the session's title, user or metadata",
        description:
          "Each key given replaces the stored value: `title` (null: back to the default, the first user " +
          "message), `user_id` (null: none), `metadata` (a JSON object of at most 16 KiB). Keys left out " +
          "keep their values. 404 before the session's first message (send `user_id` with it instead).",
        security,
        params: SessionParamsSchema,
        body: SessionPatchSchema,
        bodyExamples: bodyExamples(SessionPatchSchema, {
          title: {
            summary: "A title and a user",
            value: { title: "Laptop for university", user_id: "user_42" },
          },
          metadata: { summary: "Metadata", value: { metadata: { channel: "web", locale: "de-CH" } } },
        }),
        response: {
          200: json("The session as it is now", SessionInfoSchema),
          ...errors([400, 404, 413, 415]),
        },
      },
    },
    async (request) => {
      const { session_id: sessionId } = request.params;
      const memory = memoryFor(request);
      const session = await metrics.timeWrite("update_session", () =>
        memory.updateSession(sessionId, request.body),
      );
      if (!session) throw noRecord(sessionId);
      return session;
    },
  );
}
