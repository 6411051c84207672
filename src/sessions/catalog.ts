import type {
  SessionInfo,
  SessionListItem,
  SessionOrder,
  SessionPage,
  SessionPatch,
  TranscriptPage,
} from "../schemas/sessions.js";
import type { Database } from "../storage/database.js";
import { type MessageRow, toStoredMessage } from "../storage/transcript.js";
import { decodeCursor, encodeCursor, foreignCursor } from "./cursor.js";

/** A listing's validated options (see ListSessionsOptionsSchema). */
export interface ListingQuery {
  cursor?: string | undefined;
  limit: number;
  updated_since?: string | undefined;
  user_id?: string | undefined;
  order: SessionOrder;
}

/** Where a page ended: the last session's sort key, with its order. */
interface CursorPosition {
  order: SessionOrder;
  /** The sort timestamp, to the microsecond, UTC (`2026-01-31T12:00:00.123456Z`). */
  at: string;
  sessionId: string;
}

/** The sort column of each order (fixed names: never caller input in the SQL). */
const SORT_COLUMN: Record<SessionOrder, "updated_at" | "created_at"> = {
  updated_desc: "updated_at",
  created_desc: "created_at",
};
const ORDER_CODE: Record<SessionOrder, string> = { updated_desc: "u", created_desc: "c" };
const MICROSECOND_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;

/** What a listing shows of a session (`s`: its memory_sessions row). */
const ITEM_COLUMNS = `s.session_id, coalesce(s.title, s.default_title) AS title, s.user_id,
  s.next_seq - 1 AS message_count, s.last_user_message, s.created_at, s.updated_at,
  EXISTS (SELECT 1 FROM memory_summaries m
          WHERE m.tenant = s.tenant AND m.session_id = s.session_id) AS has_summary,
  EXISTS (SELECT 1 FROM memory_context_snapshots c
          WHERE c.tenant = s.tenant AND c.session_id = s.session_id) AS has_context`;

interface ItemRow {
  session_id: string;
  title: string | null;
  user_id: string | null;
  message_count: string | number;
  last_user_message: string | null;
  created_at: Date | string;
  updated_at: Date | string;
  has_summary: boolean;
  has_context: boolean;
}

interface ListingRow extends ItemRow {
  sort_at: string;
}

interface SessionRow extends ItemRow {
  metadata: Record<string, unknown> | string;
}

/** The sessions of each tenant, as data: listing. */
export class SessionCatalog {
  readonly #db: Database;
  constructor(db: Database) {
    this.#db = db;
  }

  /**
   * One page of the tenant's sessions, newest first by the order's timestamp, then by session id:
   * a keyset page, read from one index whatever the number of sessions.
   */
  async list(tenant: string, query: ListingQuery): Promise<SessionPage> {
    const column = SORT_COLUMN[query.order];
    const params: unknown[] = [tenant];
    const where = ["s.tenant = $1"];
    if (query.cursor !== undefined) {
      const position = decodePosition(query.cursor, query.order);
      params.push(position.at, position.sessionId);
      where.push(
        `(s.${column}, s.session_id) < ($${params.length - 1}::timestamptz, $${params.length}::text)`,
      );
    }
    if (query.updated_since !== undefined) {
      params.push(query.updated_since);
      where.push(`s.updated_at >= $${params.length}::timestamptz`);
    }
    if (query.user_id !== undefined) {
      params.push(query.user_id);
      where.push(`s.user_id = $${params.length}`);
    }
    // One more than the page: whether there is a next page, without a count.
    params.push(query.limit + 1);
    const { rows } = await this.#db.query<ListingRow>(
      `SELECT ${ITEM_COLUMNS},
              to_char(s.${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS sort_at
       FROM memory_sessions s
       WHERE ${where.join(" AND ")}
       ORDER BY s.${column} DESC, s.session_id DESC
       LIMIT $${params.length}`,
      params,
    );
    const page = rows.slice(0, query.limit);
    const last = page.at(-1);
    return {
      sessions: page.map(toListItem),
      next_cursor:
        rows.length > query.limit && last
          ? encodePosition({ order: query.order, at: last.sort_at, sessionId: last.session_id })
          : null,
    };
  }

  /**
   * The session's messages after `afterSeq`, in seq order, at most `limit`, each marked
   * `summarized` when the current summary covers it: every message ever written, summarized ones
   * included. One statement, so one snapshot of messages and summary.
   */
  async transcript(
    tenant: string,
    sessionId: string,
    afterSeq: number,
    limit: number,
  ): Promise<TranscriptPage> {
    const { rows } = await this.#db.query<MessageRow & { summarized: boolean }>(
      `WITH covered AS (
         SELECT coalesce((SELECT last_seq FROM memory_summaries WHERE tenant = $1 AND session_id = $2
                          ORDER BY version DESC LIMIT 1), 0) AS seq
       )
       SELECT m.seq, m.message, m.tokens, m.tokens_estimated, m.seq <= covered.seq AS summarized
       FROM memory_messages m CROSS JOIN covered
       WHERE m.tenant = $1 AND m.session_id = $2 AND m.seq > $3
       ORDER BY m.seq LIMIT $4`,
      [tenant, sessionId, afterSeq, limit + 1],
    );
    const page = rows.slice(0, limit);
    const messages = page.map((row) => ({ ...toStoredMessage(row), summarized: row.summarized }));
    const last = messages.at(-1);
    return {
      session_id: sessionId,
      messages,
      next_after_seq: rows.length > limit && last ? last.seq : null,
    };
  }

  /** Up to `limit` sessions of the user, with their transcripts' message counts (index memory_sessions_by_user). */
  async sessionsOfUser(
    tenant: string,
    userId: string,
    limit: number,
  ): Promise<{ sessionId: string; messages: number }[]> {
    const { rows } = await this.#db.query<{ session_id: string; messages: string | number }>(
      `SELECT session_id, next_seq - 1 AS messages FROM memory_sessions
       WHERE tenant = $1 AND user_id = $2 ORDER BY created_at DESC, session_id DESC LIMIT $3`,
      [tenant, userId, limit],
    );
    return rows.map((row) => ({ sessionId: row.session_id, messages: Number(row.messages) }));
  }

  /** The session's record and metadata; null when it has none (no message was ever written). */
  get(tenant: string, sessionId: string): Promise<SessionInfo | null> {
    return readSession(this.#db, tenant, sessionId);
  }

  /**
   * Sets the keys the patch gives (null clears a title or user; `metadataJson` replaces the
   * metadata); null when the session has no record.
   */
  async update(
    tenant: string,
    sessionId: string,
    patch: Omit<SessionPatch, "metadata">,
    metadataJson: string | undefined,
  ): Promise<SessionInfo | null> {
    return this.#db.transaction(async (tx) => {
      const { rows } = await tx.query(
        `UPDATE memory_sessions SET
           title = CASE WHEN $3 THEN $4 ELSE title END,
           user_id = CASE WHEN $5 THEN $6 ELSE user_id END,
           metadata = CASE WHEN $7 THEN $8::jsonb ELSE metadata END
         WHERE tenant = $1 AND session_id = $2 RETURNING 1`,
        [
          tenant,
          sessionId,
          patch.title !== undefined,
          patch.title ?? null,
          patch.user_id !== undefined,
          patch.user_id ?? null,
          metadataJson !== undefined,
          metadataJson ?? null,
        ],
      );
      return rows.length === 0 ? null : readSession(tx, tenant, sessionId);
    });
  }
}

/** A session's record with its metadata (what getSession and updateSession answer). */
async function readSession(
  db: Pick<Database, "query">,
  tenant: string,
  sessionId: string,
): Promise<SessionInfo | null> {
  const { rows } = await db.query<SessionRow>(
    `SELECT ${ITEM_COLUMNS}, s.metadata FROM memory_sessions s WHERE s.tenant = $1 AND s.session_id = $2`,
    [tenant, sessionId],
  );
  const row = rows[0];
  if (!row) return null;
  const metadata = typeof row.metadata === "string" ? JSON.parse(row.metadata) : row.metadata;
  return { ...toListItem(row), metadata: metadata as Record<string, unknown> };
}

function toListItem(row: ItemRow): SessionListItem {
  return {
    session_id: row.session_id,
    title: row.title,
    user_id: row.user_id,
    message_count: Number(row.message_count),
    last_user_message: row.last_user_message,
    created_at: new Date(row.created_at).toISOString(),
    updated_at: new Date(row.updated_at).toISOString(),
    has_summary: row.has_summary,
    has_context: row.has_context,
  };
}

/** Opaque to callers: the last item's sort key (order, timestamp, session id). */
function encodePosition(position: CursorPosition): string {
  return encodeCursor([ORDER_CODE[position.order], position.at, position.sessionId]);
}

/** The position a cursor names; a ValidationError (`cursor`) for anything this listing did not give. */
function decodePosition(cursor: string, order: SessionOrder): CursorPosition {
  const [code, at, sessionId] = decodeCursor(
    cursor,
    "this listing",
    (parts): parts is [string, string, string] =>
      parts.length === 3 &&
      parts.every((part) => typeof part === "string") &&
      MICROSECOND_UTC.test(parts[1] as string) &&
      !Number.isNaN(Date.parse(parts[1] as string)),
  );
  if (code !== ORDER_CODE[order]) throw foreignCursor(`order than ${order}`);
  return { order, at, sessionId };
}
