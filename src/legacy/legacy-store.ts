/**
 * The legacy session store that Swisper Core runs today: one PostgreSQL table, `swisper_sessions`,
 * one row per session, the whole chat history one JSONB array. The names, types and value shapes
 * here are those of the deployed table (test/legacy/swisper_sessions.sql is its definition).
 */
import { type Database, PostgresDatabase } from "../storage/database.js";

/** A chat message as the legacy code writes it into `chat_history`. */
export interface LegacyMessageInput {
  role: "user" | "assistant" | "system";
  content: string;
  /** Other keys the caller passed in the message dict; kept in the element as they are. */
  extra?: Record<string, unknown>;
}

/** One row, as the import and the verification read it. */
export interface LegacySessionRow {
  sessionId: string;
  /** The elements as stored, oldest first; not checked (very old rows hold odd ones). */
  chatHistory: unknown[];
  sessionMetadata: Record<string, unknown>;
  messageCount: number | null;
  /** `created_at` as stored: ISO local time without zone. */
  createdAt: string;
}

/** One line of the legacy session list. */
export interface LegacySessionListing {
  sessionId: string;
  title: string | null;
  /** The newest user message, cut at 48 characters as the legacy list shows it. */
  lastUserText: string | null;
  messageCount: number | null;
  /** ISO local time without zone. */
  updatedAt: string;
  hasContract: boolean;
}

/** A message that a substring search found. */
export interface LegacySearchHit {
  sessionId: string;
  /** The element's 0-based position in `chat_history`. */
  index: number;
  role: string | null;
  content: string;
}

/** What the legacy store offers its callers, so that whatever replaces it can offer it too. */
export interface LegacySessionStore {
  /** Appends one message; returns the history's new length. Never loses a concurrent append. */
  appendMessage(sessionId: string, message: LegacyMessageInput): Promise<number>;
  /** Appends the messages in order, all or none; returns the history's new length. */
  appendMessages(sessionId: string, messages: readonly LegacyMessageInput[]): Promise<number>;
  /** The whole history, oldest first; null for an unknown session. */
  readHistory(sessionId: string): Promise<unknown[] | null>;
  /** Every session, most recently updated first. */
  listSessions(): Promise<LegacySessionListing[]>;
  /** Messages whose content contains `text`, case-insensitively, over every session. */
  searchMessages(text: string, limit?: number): Promise<LegacySearchHit[]>;
  /** `session_metadata.contract_context`, or null. */
  loadContractContext(sessionId: string): Promise<Record<string, unknown> | null>;
  /** Sets (or with null clears) `session_metadata.contract_context`, creating the row if needed. */
  saveContractContext(sessionId: string, context: Record<string, unknown> | null): Promise<void>;
  /** `session_metadata.pending_confirmation_product`, or null. */
  loadPendingConfirmation(sessionId: string): Promise<Record<string, unknown> | null>;
  /** Sets (or with null clears) the pending confirmation; `has_contract` says whether one is set. */
  savePendingConfirmation(sessionId: string, product: Record<string, unknown> | null): Promise<void>;
  /** Deletes the session's row; true when there was one. */
  eraseSession(sessionId: string): Promise<boolean>;
  /** One row, or null. */
  readSession(sessionId: string): Promise<LegacySessionRow | null>;
  /** Up to `limit` rows after `afterSessionId` in session id order (keyset pagination). */
  readSessionsAfter(afterSessionId: string | null, limit: number): Promise<LegacySessionRow[]>;
  /** How many sessions there are. */
  countSessions(): Promise<number>;
  /** Up to `count` session ids chosen at random. */
  sampleSessionIds(count: number): Promise<string[]>;
  close(): Promise<void>;
}

export interface PostgresLegacyStoreOptions {
  /** The legacy database's URL (LEGACY_DATABASE_URL). Ignored when `database` is given. */
  connectionString?: string;
  /** A database the caller owns (never closed by `close()`). */
  database?: Database;
  /**
   * The IANA zone whose local time the legacy code writes (its server's clock; default "UTC"):
   * new elements' `timestamp`, `updated_at` and `last_user_ts` are written in it.
   */
  timeZone?: string;
  /** Where the URL came from, named when a connection fails (default "LEGACY_DATABASE_URL"). */
  source?: string;
}

/** ISO 8601 local time with microseconds, no zone: the legacy code's `datetime.isoformat()`. */
const ISO_LOCAL = `'YYYY-MM-DD"T"HH24:MI:SS.US'`;

const ROW_COLUMNS = `session_id, chat_history, session_metadata, message_count,
  to_char(created_at, ${ISO_LOCAL}) AS created_at`;

/**
 * One statement: the row lock that INSERT ... ON CONFLICT DO UPDATE takes makes a concurrent
 * append wait and then append to the array this one wrote, where the legacy code's
 * read-modify-write lost one of two. $1 session, $2 JSON array of elements (without timestamp),
 * $3 zone. The elements are appended together or not at all.
 */
const APPEND_SQL = `
WITH local_now AS (SELECT (now() AT TIME ZONE $3)::timestamp AS ts),
added AS (
  SELECT jsonb_agg(e.value || jsonb_build_object('timestamp', to_char(ts, ${ISO_LOCAL})) ORDER BY e.n) AS elements,
         (array_agg(e.value ->> 'content' ORDER BY e.n DESC) FILTER (WHERE e.value ->> 'role' = 'user'))[1] AS user_text,
         bool_or(e.value ->> 'role' = 'user') AS has_user, ts
  FROM local_now, jsonb_array_elements($2::jsonb) WITH ORDINALITY AS e(value, n)
  GROUP BY ts
)
INSERT INTO swisper_sessions AS s
  (session_id, created_at, updated_at, message_count, last_user_text, last_user_ts, chat_history)
SELECT $1, ts, ts, jsonb_array_length(elements), user_text, CASE WHEN has_user THEN ts END, elements
FROM added
ON CONFLICT (session_id) DO UPDATE SET
  chat_history = s.chat_history || EXCLUDED.chat_history,
  message_count = jsonb_array_length(s.chat_history) + EXCLUDED.message_count,
  updated_at = EXCLUDED.updated_at,
  -- last_user_ts is set only when a user message came: it tells whether one did.
  last_user_text = CASE WHEN EXCLUDED.last_user_ts IS NULL THEN s.last_user_text ELSE EXCLUDED.last_user_text END,
  last_user_ts = COALESCE(EXCLUDED.last_user_ts, s.last_user_ts)
RETURNING message_count`;

/** The `session_metadata` keys the legacy code uses. */
type MetadataKey = "contract_context" | "pending_confirmation_product";

interface RawRow {
  session_id: string;
  chat_history: unknown;
  session_metadata: unknown;
  message_count: number | null;
  created_at: string;
}

/** The `swisper_sessions` table in PostgreSQL, as deployed. */
export class PostgresLegacyStore implements LegacySessionStore {
  readonly #db: Database;
  readonly #ownsDb: boolean;
  readonly #timeZone: string;

  constructor(options: PostgresLegacyStoreOptions) {
    const { connectionString, database, timeZone = "UTC", source = "LEGACY_DATABASE_URL" } = options;
    if (database) {
      this.#db = database;
      this.#ownsDb = false;
    } else {
      if (!connectionString)
        throw new TypeError("PostgresLegacyStore needs a connectionString or a database");
      this.#db = new PostgresDatabase({
        connectionString,
        source,
        maxConnections: 4,
        queryTimeoutMs: 60_000,
      });
      this.#ownsDb = true;
    }
    this.#timeZone = timeZone;
  }

  appendMessage(sessionId: string, message: LegacyMessageInput): Promise<number> {
    return this.appendMessages(sessionId, [message]);
  }

  async appendMessages(sessionId: string, messages: readonly LegacyMessageInput[]): Promise<number> {
    const elements = messages.map((message) => {
      const { timestamp: _replaced, ...extra } = message.extra ?? {};
      return { ...extra, role: message.role, content: message.content };
    });
    if (elements.length === 0) return (await this.readSession(sessionId))?.messageCount ?? 0;
    const { rows } = await this.#db.query<{ message_count: number }>(APPEND_SQL, [
      sessionId,
      JSON.stringify(elements),
      this.#timeZone,
    ]);
    return rows[0]?.message_count ?? 0;
  }

  async readHistory(sessionId: string): Promise<unknown[] | null> {
    const { rows } = await this.#db.query<{ chat_history: unknown }>(
      "SELECT chat_history FROM swisper_sessions WHERE session_id = $1",
      [sessionId],
    );
    const [row] = rows;
    return row ? asArray(row.chat_history) : null;
  }

  async listSessions(): Promise<LegacySessionListing[]> {
    const { rows } = await this.#db.query<{
      session_id: string;
      title: string | null;
      last_user_text: string | null;
      message_count: number | null;
      updated_at: string;
      has_contract: boolean | null;
    }>(
      `SELECT session_id, title, left(last_user_text, 48) AS last_user_text, message_count,
              to_char(updated_at, ${ISO_LOCAL}) AS updated_at, has_contract
       FROM swisper_sessions ORDER BY updated_at DESC, session_id`,
    );
    return rows.map((row) => ({
      sessionId: row.session_id,
      title: row.title,
      lastUserText: row.last_user_text,
      messageCount: row.message_count,
      updatedAt: row.updated_at,
      hasContract: row.has_contract === true,
    }));
  }

  async searchMessages(text: string, limit = 100): Promise<LegacySearchHit[]> {
    // strpos over lower(): a substring test with no LIKE wildcards to escape.
    const { rows } = await this.#db.query<{
      session_id: string;
      index: number;
      role: string | null;
      content: string;
    }>(
      `SELECT s.session_id, (e.ordinality - 1)::int AS index, e.value ->> 'role' AS role,
              e.value ->> 'content' AS content
       FROM swisper_sessions s, jsonb_array_elements(s.chat_history) WITH ORDINALITY AS e(value, ordinality)
       WHERE jsonb_typeof(e.value -> 'content') = 'string'
         AND strpos(lower(e.value ->> 'content'), lower($1)) > 0
       ORDER BY s.updated_at DESC, s.session_id, e.ordinality LIMIT $2`,
      [text, limit],
    );
    return rows.map((row) => ({
      sessionId: row.session_id,
      index: row.index,
      role: row.role,
      content: row.content,
    }));
  }

  loadContractContext(sessionId: string): Promise<Record<string, unknown> | null> {
    return this.#loadMetadataKey(sessionId, "contract_context");
  }

  saveContractContext(sessionId: string, context: Record<string, unknown> | null): Promise<void> {
    return this.#saveMetadataKey(sessionId, "contract_context", context);
  }

  loadPendingConfirmation(sessionId: string): Promise<Record<string, unknown> | null> {
    return this.#loadMetadataKey(sessionId, "pending_confirmation_product");
  }

  savePendingConfirmation(sessionId: string, product: Record<string, unknown> | null): Promise<void> {
    return this.#saveMetadataKey(sessionId, "pending_confirmation_product", product);
  }

  async #loadMetadataKey(sessionId: string, key: MetadataKey): Promise<Record<string, unknown> | null> {
    const { rows } = await this.#db.query<{ value: unknown }>(
      "SELECT session_metadata -> $2 AS value FROM swisper_sessions WHERE session_id = $1",
      [sessionId, key],
    );
    return asObject(rows[0]?.value);
  }

  /** Sets one `session_metadata` key, creating the row if needed; `has_contract` mirrors the pending product. */
  async #saveMetadataKey(
    sessionId: string,
    key: MetadataKey,
    value: Record<string, unknown> | null,
  ): Promise<void> {
    await this.#db.query(
      `WITH local_now AS (SELECT (now() AT TIME ZONE $4)::timestamp AS ts)
       INSERT INTO swisper_sessions AS s (session_id, created_at, updated_at, session_metadata, has_contract)
       SELECT $1, ts, ts, jsonb_build_object($2::text, $3::jsonb),
              CASE WHEN $2 = 'pending_confirmation_product' THEN $3::jsonb <> 'null' ELSE false END
       FROM local_now
       ON CONFLICT (session_id) DO UPDATE SET
         session_metadata = s.session_metadata || EXCLUDED.session_metadata,
         has_contract = CASE WHEN $2 = 'pending_confirmation_product' THEN EXCLUDED.has_contract ELSE s.has_contract END,
         updated_at = EXCLUDED.updated_at`,
      [sessionId, key, JSON.stringify(value), this.#timeZone],
    );
  }

  async eraseSession(sessionId: string): Promise<boolean> {
    const { rows } = await this.#db.query<{ session_id: string }>(
      "DELETE FROM swisper_sessions WHERE session_id = $1 RETURNING session_id",
      [sessionId],
    );
    return rows.length > 0;
  }

  async readSession(sessionId: string): Promise<LegacySessionRow | null> {
    const { rows } = await this.#db.query<RawRow>(
      `SELECT ${ROW_COLUMNS} FROM swisper_sessions WHERE session_id = $1`,
      [sessionId],
    );
    const [row] = rows;
    return row ? toRow(row) : null;
  }

  async readSessionsAfter(afterSessionId: string | null, limit: number): Promise<LegacySessionRow[]> {
    // Keyset pagination on the primary key: each page is one index range scan, whatever its depth.
    // Two statements, not `$1 IS NULL OR ...`: a generic plan of that could not use the index.
    const { rows } =
      afterSessionId === null
        ? await this.#db.query<RawRow>(
            `SELECT ${ROW_COLUMNS} FROM swisper_sessions ORDER BY session_id LIMIT $1`,
            [limit],
          )
        : await this.#db.query<RawRow>(
            `SELECT ${ROW_COLUMNS} FROM swisper_sessions WHERE session_id > $1 ORDER BY session_id LIMIT $2`,
            [afterSessionId, limit],
          );
    return rows.map(toRow);
  }

  async countSessions(): Promise<number> {
    const { rows } = await this.#db.query<{ count: number }>(
      "SELECT count(*)::int AS count FROM swisper_sessions",
    );
    return rows[0]?.count ?? 0;
  }

  async sampleSessionIds(count: number): Promise<string[]> {
    const { rows } = await this.#db.query<{ session_id: string }>(
      "SELECT session_id FROM swisper_sessions ORDER BY random() LIMIT $1",
      [count],
    );
    return rows.map((row) => row.session_id);
  }

  async close(): Promise<void> {
    if (this.#ownsDb) await this.#db.close();
  }
}

function toRow(row: RawRow): LegacySessionRow {
  return {
    sessionId: row.session_id,
    chatHistory: asArray(row.chat_history),
    sessionMetadata: asObject(row.session_metadata) ?? {},
    messageCount: row.message_count,
    createdAt: row.created_at,
  };
}

function asArray(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

function asObject(value: unknown): Record<string, unknown> | null {
  return typeof value === "object" && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : null;
}
