import { json } from "../answers.js";
import { ListSessionsQuerySchema, SessionPageSchema } from "../schemas.js";
import type { SessionScope } from "./session-scope.js";

/** One session as a listing shows it, for the documentation's examples. */
export const SESSION_ITEM_EXAMPLE = {
  session_id: "session_123",
  title: "I want to buy a light laptop for university",
  user_id: "user_42",
  message_count: 14,
  last_user_message: "Under 1500 CHF, and light.",
  created_at: "2026-01-31T12:00:00.000Z",
  updated_at: "2026-01-31T12:04:10.250Z",
  has_summary: true,
  has_context: false,
};

/** `GET /v1/sessions`: the tenant's sessions, a keyset page at a time. */
export function sessionListRoutes({ routes, memoryFor, metrics, tag, security, errors }: SessionScope): void {
  routes.get(
    "/sessions",
    {
      schema: {
        operationId: "listSessions",
        tags: [tag],
        summary: "List the tenant's sessions",
        description:
          "A page of sessions, most recently updated first (`order=updated_desc`, the default) or newest " +
          "first (`order=created_desc`); `next_cursor` continues the listing. In `created_desc` order pages " +
          "never skip or repeat a session while writes go on; in `updated_desc` order none repeats, and a " +
          "session updated after the listing began moves to the front (a new listing sees it). A session " +
          "is listed from its first message on.",
        security,
        querystring: ListSessionsQuerySchema,
        response: {
          200: json("A page of sessions", SessionPageSchema, {
            page: {
              summary: "One session, and more to come",
              value: {
                sessions: [SESSION_ITEM_EXAMPLE],
                next_cursor: "WyJ1IiwiMjAyNi0wMS0zMVQxMjowNDoxMC4yNTAxMjNaIiwic2Vzc2lvbl8xMjMiXQ",
              },
            },
          }),
          ...errors([400]),
        },
      },
    },
    async (request) => {
      const memory = memoryFor(request);
      return metrics.timeRead("list_sessions", () => memory.listSessions(request.query));
    },
  );
}
