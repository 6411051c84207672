import { json } from "../answers.js";
import { SearchQuerySchema, SearchResultsSchema } from "../schemas.js";
import type { SessionScope } from "./session-scope.js";

/** `GET /v1/search`: full-text search of the tenant's messages. */
export function searchRoutes({ routes, memoryFor, metrics, tag, security, errors }: SessionScope): void {
  routes.get(
    "/search",
    {
      schema: {
        operationId: "searchMessages",
        tags: [tag],
        summary: "Search the tenant's messages",
        description:
          "Mode `words` (default): PostgreSQL full-text search (the `simple` configuration: words of any " +
          "language, no stemming; `language` picks another of the database's configurations) of every message " +
          'of every session of the tenant: `q` in web-search syntax (all words, "a phrase", `or`, -word), most ' +
          "relevant first. Mode `substring`: messages containing `q` as typed (case-insensitive; % and _ are " +
          "literal), by session and seq, through a trigram index where pg_trgm is installed, else a bounded " +
          "scan (`scan_limited`). Each hit has its session, seq, role and an HTML-escaped snippet whose " +
          "matches are in <mark> tags. `next_cursor` continues the same search.",
        security,
        querystring: SearchQuerySchema,
        response: {
          200: json("The most relevant messages", SearchResultsSchema, {
            hits: {
              summary: "One hit",
              value: {
                results: [
                  {
                    session_id: "session_123",
                    seq: 3,
                    role: "user",
                    snippet: "Under 1500 CHF, and <mark>light</mark>.",
                    rank: 0.0607927,
                    created_at: "2026-01-31T12:04:10.250Z",
                  },
                ],
                next_cursor: null,
                scan_limited: false,
              },
            },
          }),
          ...errors([400]),
        },
      },
    },
    async (request) => {
      const memory = memoryFor(request);
      return metrics.timeRead("search", () => memory.searchMessages(request.query));
    },
  );
}
