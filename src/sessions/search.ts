import { createHash } from "node:crypto";
import type { z } from "zod";
import type { SearchOptionsSchema, SearchResults } from "../schemas/sessions.js";
import type { Database } from "../storage/database.js";
import { decodeCursor, encodeCursor, foreignCursor } from "./cursor.js";

type SearchQuery = z.output<typeof SearchOptionsSchema>;

/** The indexed expression (migration 011): the query repeats it exactly, so that it reads the index. */
const DOCUMENT = "to_tsvector('simple'::regconfig, coalesce(memory_message_text(m.message), ''))";

// The snippet is built from HTML-escaped text, so that only the <mark> tags are markup.
const ESCAPED_TEXT = `replace(replace(replace(coalesce(memory_message_text(m.message), ''),
  '&', '&amp;'), '<', '&lt;'), '>', '&gt;')`;
const HEADLINE_OPTIONS = "StartSel=<mark>, StopSel=</mark>, MaxWords=24, MinWords=8, MaxFragments=2";

/** The deepest page a cursor may ask for: a search is for the best matches, not an export. */
const MAX_OFFSET = 10_000;

interface HitRow {
  session_id: string;
  seq: string | number;
  role: string;
  snippet: string;
  rank: number;
  created_at: Date | string;
}

/**
 * Full-text search of a tenant's messages: PostgreSQL's text search (`simple` configuration, a
 * GIN index), ranked, with a highlighted snippet; works the same on the embedded database.
 */
export async function searchMessages(
  db: Database,
  tenant: string,
  query: SearchQuery,
): Promise<SearchResults> {
  const fingerprint = fingerprintOf(query);
  const offset = query.cursor === undefined ? 0 : decodeOffset(query.cursor, fingerprint);
  const params: unknown[] = [tenant, query.q];
  const where = ["m.tenant = $1", `${DOCUMENT} @@ q.query`];
  if (query.session_id !== undefined) {
    params.push(query.session_id);
    where.push(`m.session_id = $${params.length}`);
  }
  if (query.role !== undefined) {
    params.push(query.role);
    where.push(`memory_text_json(m.message) ->> 'role' = $${params.length}`);
  }
  if (query.user_id !== undefined) {
    params.push(query.user_id);
    where.push(`EXISTS (SELECT 1 FROM memory_sessions s WHERE s.tenant = m.tenant
                          AND s.session_id = m.session_id AND s.user_id = $${params.length})`);
  }
  params.push(query.limit + 1, offset);
  const { rows } = await db.query<HitRow>(
    `WITH q AS (SELECT websearch_to_tsquery('simple'::regconfig, $2) AS query),
     hits AS (
       SELECT m.session_id, m.seq, m.message, m.created_at, ts_rank(${DOCUMENT}, q.query) AS rank
       FROM memory_messages m CROSS JOIN q
       WHERE ${where.join(" AND ")}
       ORDER BY rank DESC, m.session_id, m.seq
       LIMIT $${params.length - 1} OFFSET $${params.length}
     )
     SELECT m.session_id, m.seq, memory_text_json(m.message) ->> 'role' AS role, m.created_at, m.rank::float8 AS rank,
            ts_headline('simple'::regconfig, ${ESCAPED_TEXT}, q.query, '${HEADLINE_OPTIONS}') AS snippet
     FROM hits m CROSS JOIN q
     ORDER BY m.rank DESC, m.session_id, m.seq`,
    params,
  );
  const page = rows.slice(0, query.limit);
  const more = rows.length > query.limit && offset + query.limit <= MAX_OFFSET;
  return {
    results: page.map((row) => ({
      session_id: row.session_id,
      seq: Number(row.seq),
      role: row.role,
      snippet: row.snippet,
      rank: Number(row.rank),
      created_at: new Date(row.created_at).toISOString(),
    })),
    next_cursor: more ? encodeCursor([offset + query.limit, fingerprint]) : null,
  };
}

/** What a cursor belongs to: the same words and filters (the page size may change). */
function fingerprintOf(query: SearchQuery): string {
  const { q, session_id, user_id, role } = query;
  return createHash("sha256")
    .update(JSON.stringify([q, session_id ?? null, user_id ?? null, role ?? null]))
    .digest("base64url")
    .slice(0, 16);
}

/** The offset a cursor of this search names. */
function decodeOffset(cursor: string, fingerprint: string): number {
  const [offset, of] = decodeCursor(
    cursor,
    "this search",
    (parts): parts is [number, string] =>
      parts.length === 2 &&
      Number.isInteger(parts[0]) &&
      (parts[0] as number) >= 0 &&
      (parts[0] as number) <= MAX_OFFSET &&
      typeof parts[1] === "string",
  );
  if (of !== fingerprint) throw foreignCursor("search (other words or filters)");
  return offset;
}
