import { createHash } from "node:crypto";
import type { z } from "zod";
import type { SearchOptionsSchema, SearchResults } from "../schemas/sessions.js";
import type { Database } from "../storage/database.js";
import { decodeCursor, encodeCursor, foreignCursor } from "./cursor.js";
import { checkLanguage } from "./search-language.js";
import { substringSearch } from "./substring-search.js";

export type SearchQuery = z.output<typeof SearchOptionsSchema>;

/**
 * The indexed expression (migration 011) under a checked configuration name: with `simple` the
 * query repeats the index's expression exactly, so that it reads the index.
 */
const documentOf = (language: string) =>
  `to_tsvector('${language}'::regconfig, coalesce(memory_message_text(m.message), ''))`;

// The snippet is built from HTML-escaped text, so that only the <mark> tags are markup.
const ESCAPED_TEXT = `replace(replace(replace(coalesce(memory_message_text(m.message), ''),
  '&', '&amp;'), '<', '&lt;'), '>', '&gt;')`;
const HEADLINE_OPTIONS = "StartSel=<mark>, StopSel=</mark>, MaxWords=24, MinWords=8, MaxFragments=2";

/** The deepest page a cursor may ask for: a search is for the best matches, not an export. */
export const MAX_OFFSET = 10_000;

export interface HitRow {
  session_id: string;
  seq: string | number;
  role: string;
  snippet: string;
  rank: number;
  created_at: Date | string;
}

/**
 * A tenant's messages that match: words (PostgreSQL's text search, ranked, the configuration
 * `language` or `defaultLanguage`) or, in mode substring, the text as typed.
 */
export async function searchMessages(
  db: Database,
  tenant: string,
  query: SearchQuery,
  defaultLanguage = "simple",
): Promise<SearchResults> {
  const language =
    query.mode === "substring"
      ? defaultLanguage
      : await checkLanguage(
          db,
          query.language ?? defaultLanguage,
          query.language ? "language" : "MEMORY_SEARCH_LANGUAGE",
        );
  const fingerprint = fingerprintOf(query, language);
  const offset = query.cursor === undefined ? 0 : decodeOffset(query.cursor, fingerprint);
  if (query.mode === "substring") return substringSearch(db, tenant, query, { offset, fingerprint });
  return wordSearch(db, tenant, query, { offset, fingerprint, language });
}

/** The filters every mode shares (after `m.tenant = $1`), their values appended to `params`. */
export function filtersOf(query: SearchQuery, params: unknown[]): string[] {
  const where: string[] = [];
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
  return where;
}

/** A page of hits, with the cursor of the next one while there are more within MAX_OFFSET. */
export function pageOf(
  rows: HitRow[],
  query: SearchQuery,
  at: { offset: number; fingerprint: string },
  scanLimited = false,
): SearchResults {
  const page = rows.slice(0, query.limit);
  const more = rows.length > query.limit && at.offset + query.limit <= MAX_OFFSET;
  return {
    results: page.map((row) => ({
      session_id: row.session_id,
      seq: Number(row.seq),
      role: row.role,
      snippet: row.snippet,
      rank: Number(row.rank),
      created_at: new Date(row.created_at).toISOString(),
    })),
    next_cursor: more ? encodeCursor([at.offset + query.limit, at.fingerprint]) : null,
    scan_limited: scanLimited,
  };
}

/**
 * Full-text search of a tenant's messages: PostgreSQL's text search (the `simple` configuration
 * reads a GIN index; another one reads every message of the tenant), ranked, with a highlighted
 * snippet; works the same on the embedded database.
 */
async function wordSearch(
  db: Database,
  tenant: string,
  query: SearchQuery,
  at: { offset: number; fingerprint: string; language: string },
): Promise<SearchResults> {
  const document = documentOf(at.language);
  const config = `'${at.language}'::regconfig`;
  const params: unknown[] = [tenant, query.q];
  const where = ["m.tenant = $1", `${document} @@ q.query`, ...filtersOf(query, params)];
  params.push(query.limit + 1, at.offset);
  const { rows } = await db.query<HitRow>(
    `WITH q AS (SELECT websearch_to_tsquery(${config}, $2) AS query),
     hits AS (
       SELECT m.session_id, m.seq, m.message, m.created_at, ts_rank(${document}, q.query) AS rank
       FROM memory_messages m CROSS JOIN q
       WHERE ${where.join(" AND ")}
       ORDER BY rank DESC, m.session_id, m.seq
       LIMIT $${params.length - 1} OFFSET $${params.length}
     )
     SELECT m.session_id, m.seq, memory_text_json(m.message) ->> 'role' AS role, m.created_at, m.rank::float8 AS rank,
            ts_headline(${config}, ${ESCAPED_TEXT}, q.query, '${HEADLINE_OPTIONS}') AS snippet
     FROM hits m CROSS JOIN q
     ORDER BY m.rank DESC, m.session_id, m.seq`,
    params,
  );
  return pageOf(rows, query, at);
}

/** What a cursor belongs to: the same words, mode, language and filters (the page size may change). */
function fingerprintOf(query: SearchQuery, language: string): string {
  const { q, session_id, user_id, role, mode } = query;
  return createHash("sha256")
    .update(JSON.stringify([q, session_id ?? null, user_id ?? null, role ?? null, mode, language]))
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
