/**
 * Export: a tenant's sessions (or one) as JSON Lines (src/schemas/export.ts), read a page at a
 * time so that memory holds one page of messages, never a whole session or tenant. Each line is
 * built by one function here, which the import also uses to compare a stored session with an
 * incoming one: two sessions are the same when their exports are the same bytes.
 */
import {
  EXPORT_FORMAT,
  EXPORT_VERSION,
  type ExportConfig,
  type ExportContext,
  type ExportMessage,
  type ExportSession,
  type ExportSummary,
} from "../schemas/export.js";
import type { Queryable } from "../storage/database.js";

/** Messages (and summary versions) read per query. */
const MESSAGE_PAGE = 1000;
const SUMMARY_PAGE = 100;
/** Session ids read per query when exporting a tenant. */
const SESSION_PAGE = 200;

/** A timestamptz column as the export writes it: UTC, to the microsecond (a JS Date keeps milliseconds). */
export function utcMicros(column: string): string {
  return `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;
}

export interface ExportOptions {
  /** Only this session (default: every session of the tenant, by session id). */
  sessionId?: string | undefined;
  /** Called after each session's lines, with its message count (progress). */
  onSession?: (sessionId: string, messages: number) => void;
}

/** The lines (without newlines) of the tenant's export: header, each session's lines, end. */
export async function* exportLines(
  db: Queryable,
  tenant: string,
  options: ExportOptions = {},
): AsyncGenerator<string> {
  yield JSON.stringify({ type: "export", format: EXPORT_FORMAT, version: EXPORT_VERSION });
  let sessions = 0;
  let messages = 0;
  const ids = options.sessionId !== undefined ? [options.sessionId] : sessionIds(db, tenant);
  for await (const sessionId of ids) {
    const session = await readSessionExport(db, tenant, sessionId);
    // A session erased between the listing and its read has no lines.
    if (!session) continue;
    yield* session.lines;
    sessions += 1;
    messages += session.messageCount;
    options.onSession?.(sessionId, session.messageCount);
  }
  yield JSON.stringify({ type: "end", sessions, messages });
}

/** How many sessions have a record in the tenant (a progress total; sessions with only a context are not counted). */
export async function countSessions(db: Queryable, tenant: string): Promise<number> {
  const { rows } = await db.query<{ n: string | number }>(
    "SELECT count(*) AS n FROM memory_sessions WHERE tenant = $1",
    [tenant],
  );
  return Number(rows[0]?.n ?? 0);
}

/**
 * Every session id the tenant has anything of (a record, summaries, a config, a context), in
 * order: keyset pages, each branch read from its table's primary key.
 */
async function* sessionIds(db: Queryable, tenant: string): AsyncGenerator<string> {
  let after = "";
  for (;;) {
    const { rows } = await db.query<{ session_id: string }>(
      `SELECT session_id FROM (
         (SELECT session_id FROM memory_sessions WHERE tenant = $1 AND session_id > $2 ORDER BY session_id LIMIT $3)
         UNION (SELECT DISTINCT session_id FROM memory_summaries WHERE tenant = $1 AND session_id > $2
                ORDER BY session_id LIMIT $3)
         UNION (SELECT session_id FROM memory_session_configs WHERE tenant = $1 AND session_id > $2
                ORDER BY session_id LIMIT $3)
         UNION (SELECT session_id FROM memory_context_snapshots WHERE tenant = $1 AND session_id > $2
                ORDER BY session_id LIMIT $3)
       ) ids ORDER BY session_id LIMIT $3`,
      [tenant, after, SESSION_PAGE],
    );
    for (const row of rows) yield row.session_id;
    const last = rows.at(-1);
    if (!last || rows.length < SESSION_PAGE) return;
    after = last.session_id;
  }
}

interface HeadRow {
  has_record: boolean;
  title: string | null;
  user_id: string | null;
  metadata: Record<string, unknown> | string | null;
  created_at: string | null;
  updated_at: string | null;
  buffer_floor_seq: string | number | null;
  message_count: string | number | null;
  summary_count: string | number;
  config: Record<string, unknown> | string | null;
  set_keys: string[] | null;
  config_updated_at: string | null;
  context: string | null;
  context_updated_at: string | null;
}

/**
 * One session's lines: its record, messages, summary versions, config and context; null when it
 * has nothing. The record, config and context are read in one statement; messages and versions
 * are then read up to the counts it gave, so a session written meanwhile exports as it was then
 * (messages and versions never change once written).
 */
export async function readSessionExport(
  db: Queryable,
  tenant: string,
  sessionId: string,
): Promise<{ messageCount: number; lines: AsyncGenerator<string> } | null> {
  const head = await readHead(db, tenant, sessionId);
  if (!head) return null;
  const session = sessionRecord(tenant, sessionId, head);
  return { messageCount: session.message_count, lines: sessionLines(db, tenant, session, head) };
}

async function* sessionLines(
  db: Queryable,
  tenant: string,
  session: Omit<ExportSession, "type">,
  head: HeadRow,
): AsyncGenerator<string> {
  const sessionId = session.session_id;
  yield sessionLine(session);
  yield* messageLines(db, tenant, session);
  yield* summaryLines(db, tenant, session);
  if (head.config !== null && head.config_updated_at !== null) {
    const stored = parseJson(head.config);
    const config: Record<string, unknown> = {};
    // The keys the caller set, in the stored (jsonb) order: the others are derived on import.
    for (const key of Object.keys(stored)) if (head.set_keys?.includes(key)) config[key] = stored[key];
    yield configLine({
      session_id: sessionId,
      config: config as ExportConfig["config"],
      updated_at: head.config_updated_at,
    });
  }
  if (head.context !== null && head.context_updated_at !== null) {
    yield contextLine({
      session_id: sessionId,
      context: JSON.parse(head.context) as ExportContext["context"],
      updated_at: head.context_updated_at,
    });
  }
}

async function readHead(db: Queryable, tenant: string, sessionId: string): Promise<HeadRow | null> {
  const { rows } = await db.query<HeadRow>(
    `SELECT s.session_id IS NOT NULL AS has_record, s.title, s.user_id, s.metadata,
            ${utcMicros("s.created_at")} AS created_at, ${utcMicros("s.updated_at")} AS updated_at,
            s.buffer_floor_seq, s.next_seq - 1 AS message_count,
            (SELECT count(*) FROM memory_summaries m WHERE m.tenant = $1 AND m.session_id = $2) AS summary_count,
            c.config, c.set_keys, ${utcMicros("c.updated_at")} AS config_updated_at,
            x.context::text AS context, ${utcMicros("x.updated_at")} AS context_updated_at
     FROM (SELECT 1) one
     LEFT JOIN memory_sessions s ON s.tenant = $1 AND s.session_id = $2
     LEFT JOIN memory_session_configs c ON c.tenant = $1 AND c.session_id = $2
     LEFT JOIN memory_context_snapshots x ON x.tenant = $1 AND x.session_id = $2`,
    [tenant, sessionId],
  );
  const row = rows[0];
  if (!row) return null;
  const empty =
    !row.has_record && Number(row.summary_count) === 0 && row.config === null && row.context === null;
  return empty ? null : row;
}

function sessionRecord(tenant: string, sessionId: string, head: HeadRow): Omit<ExportSession, "type"> {
  return {
    tenant,
    session_id: sessionId,
    title: head.title,
    user_id: head.user_id,
    metadata: head.metadata === null ? {} : parseJson(head.metadata),
    created_at: head.created_at,
    updated_at: head.updated_at,
    buffer_floor_seq: Number(head.buffer_floor_seq ?? 0),
    message_count: Number(head.message_count ?? 0),
    summary_count: Number(head.summary_count),
  };
}

interface MessageRow {
  seq: string | number;
  idempotency_key: string | null;
  tokens: number;
  tokens_estimated: boolean;
  created_at: string;
  message: string;
}

/** Messages 1..message_count, a page at a time. */
async function* messageLines(
  db: Queryable,
  tenant: string,
  session: Omit<ExportSession, "type">,
): AsyncGenerator<string> {
  let after = 0;
  while (after < session.message_count) {
    const { rows } = await db.query<MessageRow>(
      `SELECT seq, idempotency_key, tokens, tokens_estimated, ${utcMicros("created_at")} AS created_at,
              message::text AS message
       FROM memory_messages WHERE tenant = $1 AND session_id = $2 AND seq > $3 AND seq <= $4
       ORDER BY seq LIMIT $5`,
      [tenant, session.session_id, after, session.message_count, MESSAGE_PAGE],
    );
    if (rows.length === 0) throw changedDuringExport(session.session_id);
    for (const row of rows) {
      after = Number(row.seq);
      yield messageLine({
        session_id: session.session_id,
        seq: after,
        idempotency_key: row.idempotency_key,
        tokens: row.tokens,
        tokens_estimated: row.tokens_estimated,
        created_at: row.created_at,
        message: JSON.parse(row.message) as ExportMessage["message"],
      });
    }
  }
}

interface SummaryRow {
  version: number;
  first_seq: string | number;
  last_seq: string | number;
  summary_text: string;
  tokens: number;
  metadata: Record<string, unknown> | string;
  created_at: string;
}

/** The first summary_count versions, oldest first, a page at a time. */
async function* summaryLines(
  db: Queryable,
  tenant: string,
  session: Omit<ExportSession, "type">,
): AsyncGenerator<string> {
  let after = 0;
  let left = session.summary_count;
  while (left > 0) {
    const { rows } = await db.query<SummaryRow>(
      `SELECT version, first_seq, last_seq, summary_text, tokens, metadata, ${utcMicros("created_at")} AS created_at
       FROM memory_summaries WHERE tenant = $1 AND session_id = $2 AND version > $3
       ORDER BY version LIMIT $4`,
      [tenant, session.session_id, after, Math.min(left, SUMMARY_PAGE)],
    );
    if (rows.length === 0) throw changedDuringExport(session.session_id);
    for (const row of rows) {
      after = row.version;
      left -= 1;
      yield summaryLine({
        session_id: session.session_id,
        version: row.version,
        first_seq: Number(row.first_seq),
        last_seq: Number(row.last_seq),
        summary_text: row.summary_text,
        tokens: row.tokens,
        metadata: parseJson(row.metadata),
        created_at: row.created_at,
      });
    }
  }
}

function changedDuringExport(sessionId: string): Error {
  return new Error(`session '${sessionId}' was erased or its summaries cleared while it was exported`);
}

function parseJson(value: Record<string, unknown> | string): Record<string, unknown> {
  return typeof value === "string" ? (JSON.parse(value) as Record<string, unknown>) : value;
}

// Each line's keys in one fixed order, whatever order the caller's object has: the same session
// serialises to the same bytes from the database and from an imported file.

export function sessionLine(s: Omit<ExportSession, "type">): string {
  return JSON.stringify({
    type: "session",
    tenant: s.tenant,
    session_id: s.session_id,
    title: s.title,
    user_id: s.user_id,
    metadata: s.metadata,
    created_at: s.created_at,
    updated_at: s.updated_at,
    buffer_floor_seq: s.buffer_floor_seq,
    message_count: s.message_count,
    summary_count: s.summary_count,
  });
}

export function messageLine(m: Omit<ExportMessage, "type">): string {
  return JSON.stringify({
    type: "message",
    session_id: m.session_id,
    seq: m.seq,
    idempotency_key: m.idempotency_key,
    tokens: m.tokens,
    tokens_estimated: m.tokens_estimated,
    created_at: m.created_at,
    message: m.message,
  });
}

export function summaryLine(s: Omit<ExportSummary, "type">): string {
  return JSON.stringify({
    type: "summary",
    session_id: s.session_id,
    version: s.version,
    first_seq: s.first_seq,
    last_seq: s.last_seq,
    summary_text: s.summary_text,
    tokens: s.tokens,
    metadata: s.metadata,
    created_at: s.created_at,
  });
}

export function configLine(c: Omit<ExportConfig, "type">): string {
  return JSON.stringify({
    type: "config",
    session_id: c.session_id,
    config: c.config,
    updated_at: c.updated_at,
  });
}

export function contextLine(c: Omit<ExportContext, "type">): string {
  return JSON.stringify({
    type: "context",
    session_id: c.session_id,
    context: c.context,
    updated_at: c.updated_at,
  });
}
