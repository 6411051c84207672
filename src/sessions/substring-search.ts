import type { SearchResults } from "../schemas/sessions.js";
import type { Database } from "../storage/database.js";
import { filtersOf, type HitRow, pageOf, type SearchQuery } from "./search.js";
import { hasTrigramIndex } from "./search-language.js";

/**
 * Without the trigram index, the most messages one substring search reads (the tenant's first in
 * session id and seq order, through the primary key): a bound on its cost, said by `scan_limited`.
 */
export const SUBSTRING_SCAN_LIMIT = 50_000;

/** The message text the trigram index (migration 013) is built on; the query repeats it exactly. */
const TEXT = "memory_message_text(m.message)";
const SNIPPET_BEFORE = 60;
const SNIPPET_LENGTH = 200;

interface SubstringRow extends HitRow {
  text: string | null;
  scanned: string | number;
}

/**
 * Messages whose text contains `q` as typed, case-insensitively (ILIKE, with `%`, `_` and `\`
 * taken literally), by session id and seq: through the trigram index where pg_trgm is installed,
 * else reading at most SUBSTRING_SCAN_LIMIT messages.
 */
export async function substringSearch(
  db: Database,
  tenant: string,
  query: SearchQuery,
  at: { offset: number; fingerprint: string },
): Promise<SearchResults> {
  const params: unknown[] = [tenant, `%${escapeLike(query.q)}%`];
  const where = ["m.tenant = $1", ...filtersOf(query, params)];
  params.push(query.limit + 1, at.offset);
  const page = `LIMIT $${params.length - 1} OFFSET $${params.length}`;
  const indexed = await hasTrigramIndex(db);
  const { rows } = await db.query<SubstringRow>(
    indexed ? indexedQuery(where, page) : scanQuery(where, page, params),
    params,
  );
  const hits = rows.filter((row) => row.session_id !== null);
  const scanned = Number(rows[0]?.scanned ?? 0);
  const result = pageOf(
    hits.map((row) => ({ ...row, rank: 1, snippet: snippetOf(row.text ?? "", query.q) })),
    query,
    at,
    !indexed && scanned >= SUBSTRING_SCAN_LIMIT,
  );
  return result;
}

function indexedQuery(where: string[], page: string): string {
  return `SELECT m.session_id, m.seq, memory_text_json(m.message) ->> 'role' AS role, m.created_at, ${TEXT} AS text, 0 AS scanned
          FROM memory_messages m
          WHERE ${where.join(" AND ")} AND ${TEXT} ILIKE $2
          ORDER BY m.session_id, m.seq ${page}`;
}

/** The bounded scan: one row with the number read even when nothing matched. */
function scanQuery(where: string[], page: string, params: unknown[]): string {
  params.push(SUBSTRING_SCAN_LIMIT);
  return `WITH scanned AS MATERIALIZED (
            SELECT m.session_id, m.seq, m.message, m.created_at FROM memory_messages m
            WHERE ${where.join(" AND ")}
            ORDER BY m.tenant, m.session_id, m.seq LIMIT $${params.length}
          ),
          hits AS (
            SELECT m.session_id, m.seq, memory_text_json(m.message) ->> 'role' AS role, m.created_at, ${TEXT} AS text
            FROM scanned m WHERE ${TEXT} ILIKE $2
            ORDER BY m.session_id, m.seq ${page}
          )
          SELECT h.*, c.scanned FROM (SELECT count(*) AS scanned FROM scanned) c
          LEFT JOIN hits h ON true ORDER BY h.session_id, h.seq`;
}

/** `q` for ILIKE: its `\`, `%` and `_` stand for themselves. */
export function escapeLike(q: string): string {
  return q.replace(/[\\%_]/g, "\\$&");
}

/** Up to 200 characters around the first match, HTML-escaped, each match inside <mark>. */
export function snippetOf(text: string, q: string): string {
  const pattern = new RegExp(q.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"), "giu");
  const first = text.search(pattern);
  const start = Math.max(0, first - SNIPPET_BEFORE);
  const window = text.slice(start, start + SNIPPET_LENGTH);
  let snippet = "";
  let last = 0;
  for (const match of window.matchAll(pattern)) {
    snippet += `${escapeHtml(window.slice(last, match.index))}<mark>${escapeHtml(match[0])}</mark>`;
    last = match.index + match[0].length;
  }
  return snippet + escapeHtml(window.slice(last));
}

function escapeHtml(text: string): string {
  return text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;");
}
