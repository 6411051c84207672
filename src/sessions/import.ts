/**
 * Import: restores an export (src/schemas/export.ts) exactly: seqs, times, tokens, idempotency
 * keys, summary versions with their ranges, config and context, as they were. Each session is one
 * transaction, written while its lines stream in (a batch of messages at a time), so a bad line
 * leaves nothing of its session behind. A session that already exists is compared, not merged:
 * the same content is a no-op (so importing twice stores nothing twice), other content is an
 * ImportConflictError.
 */
import { createHash, type Hash } from "node:crypto";
import { StringDecoder } from "node:string_decoder";
import { ImportConflictError, ImportLineError, ValidationError } from "../errors.js";
import { assertMessageSize, type MessageLimits } from "../messages/validate.js";
import {
  type ExportConfig,
  type ExportContext,
  type ExportLine,
  ExportLineSchema,
  type ExportMessage,
  type ExportSession,
  type ExportSummary,
  type ImportTotals,
} from "../schemas/export.js";
import { toValidationError } from "../schemas/issues.js";
import type { SessionConfig } from "../schemas/session-config.js";
import { METADATA_MAX_BYTES } from "../schemas/sessions.js";
import type { Database, Transaction } from "../storage/database.js";
import type { ChatMessage } from "../types.js";
import {
  configLine,
  contextLine,
  messageLine,
  readSessionExport,
  sessionLine,
  summaryLine,
} from "./export.js";

/** Messages written per statement. */
const MESSAGE_BATCH = 500;
/** Longest line read, in bytes: a message, summary or context is far below it. */
export const MAX_LINE_BYTES = 8 * 1024 * 1024;

/** Where an import writes, and what it needs of the deployment. */
export interface ImportTarget {
  db: Database;
  /** Largest SwisperContext accepted, in bytes (as saveContext). */
  maxContextBytes: number;
  /** Largest message accepted (as addMessage): an import stores nothing a write would refuse. */
  messageLimits: MessageLimits;
  /** The config keys' checks and derivations (as setSessionConfig): the overrides to store. */
  resolveConfig(set: Partial<SessionConfig>): Partial<SessionConfig>;
  /** After a session committed: drop what a cache may hold of an earlier session of that id. */
  afterImport(tenant: string, sessionId: string): Promise<void>;
}

export interface ImportOptions {
  /** The tenant every session goes to; undefined: the tenant its line names. */
  tenant?: string | undefined;
  /** Called once a session is done, with its message count and whether it was stored. */
  onSession?: (sessionId: string, messages: number, outcome: "imported" | "unchanged") => void;
}

/** One parsed line: its number, its validated record, and the JSON as written (payloads keep their key order). */
interface ParsedLine {
  line: number;
  record: ExportLine;
  raw: Record<string, unknown>;
}

/** Imports every session of the lines; returns the totals. Stops at the first bad line or conflict. */
export async function importLines(
  target: ImportTarget,
  lines: AsyncIterable<string>,
  options: ImportOptions = {},
): Promise<ImportTotals> {
  const cursor = new LineCursor(lines);
  const header = await cursor.take();
  if (header?.record.type !== "export") {
    throw new ImportLineError(
      header?.line ?? 1,
      "type",
      'the first line must be the header {"type":"export",...}',
    );
  }
  const totals: ImportTotals = {
    sessions: 0,
    sessions_imported: 0,
    sessions_unchanged: 0,
    messages_imported: 0,
    summaries_imported: 0,
  };
  let messages = 0;
  for (;;) {
    const next = await cursor.peek();
    if (!next)
      throw new ImportLineError(
        cursor.lastLine + 1,
        "type",
        "the input ends without its end line (truncated?)",
      );
    if (next.record.type === "end") return finish(cursor, next.record, totals, messages);
    if (next.record.type !== "session") {
      throw new ImportLineError(
        next.line,
        "type",
        `a "${next.record.type}" line must follow its session's line`,
      );
    }
    const done = await importSession(target, cursor, options);
    totals.sessions += 1;
    messages += done.messages;
    if (done.stored) {
      totals.sessions_imported += 1;
      totals.messages_imported += done.messages;
      totals.summaries_imported += done.summaries;
    } else totals.sessions_unchanged += 1;
  }
}

async function finish(
  cursor: LineCursor,
  end: Extract<ExportLine, { type: "end" }>,
  totals: ImportTotals,
  messages: number,
): Promise<ImportTotals> {
  const line = cursor.lastLine + 1;
  await cursor.take();
  if (end.sessions !== totals.sessions) {
    throw new ImportLineError(
      line,
      "sessions",
      `is ${end.sessions}, but ${totals.sessions} sessions came before it`,
    );
  }
  if (end.messages !== messages) {
    throw new ImportLineError(
      line,
      "messages",
      `is ${end.messages}, but ${messages} messages came before it`,
    );
  }
  const after = await cursor.peek();
  if (after) throw new ImportLineError(after.line, "type", "nothing may follow the end line");
  return totals;
}

/** What one session's import did. */
interface SessionOutcome {
  stored: boolean;
  messages: number;
  summaries: number;
}

async function importSession(
  target: ImportTarget,
  cursor: LineCursor,
  options: ImportOptions,
): Promise<SessionOutcome> {
  // biome-ignore lint/style/noNonNullAssertion: importLines peeked a session line
  const first = (await cursor.take())!;
  const incoming = first.record as ExportSession;
  const tenant = options.tenant ?? incoming.tenant;
  const session: Omit<ExportSession, "type"> = {
    ...incoming,
    tenant,
    metadata: first.raw.metadata as ExportSession["metadata"],
  };
  checkSession(first.line, session);
  let outcome: SessionOutcome;
  try {
    outcome = await target.db.transaction(async (tx) => {
      const existing = await lockAndRead(tx, tenant, session.session_id);
      if (existing) {
        const sink = new DigestSink();
        await walkSession(cursor, first.line, session, sink, target);
        if (sink.digest() !== (await digestOf(existing)))
          throw new ImportConflictError(first.line, session.session_id);
        return { stored: false, messages: session.message_count, summaries: session.summary_count };
      }
      await walkSession(cursor, first.line, session, new StoreSink(tx, target), target);
      return { stored: true, messages: session.message_count, summaries: session.summary_count };
    });
  } catch (error) {
    // Another writer created the session (or part of it) while this import ran.
    if ((error as { code?: unknown } | null)?.code === "23505") {
      throw new ImportConflictError(first.line, session.session_id);
    }
    throw error;
  }
  if (outcome.stored) await target.afterImport(tenant, session.session_id);
  options.onSession?.(session.session_id, session.message_count, outcome.stored ? "imported" : "unchanged");
  return outcome;
}

function checkSession(line: number, session: Omit<ExportSession, "type">): void {
  if (session.created_at === null && session.message_count > 0) {
    throw new ImportLineError(line, "created_at", "must be a time for a session with messages");
  }
  if ((session.created_at === null) !== (session.updated_at === null)) {
    throw new ImportLineError(line, "updated_at", "must be null exactly when created_at is");
  }
  if (session.buffer_floor_seq > session.message_count) {
    throw new ImportLineError(line, "buffer_floor_seq", "must not exceed message_count");
  }
  if (Buffer.byteLength(JSON.stringify(session.metadata), "utf8") > METADATA_MAX_BYTES) {
    throw new ImportLineError(line, "metadata", `is larger than ${METADATA_MAX_BYTES} bytes as JSON`);
  }
}

/**
 * The stored session's export lines, or null when it has nothing. Its record is locked first,
 * so a writer of the session waits for this import, and this import sees everything it wrote.
 */
async function lockAndRead(tx: Transaction, tenant: string, sessionId: string) {
  await tx.query("SELECT 1 FROM memory_sessions WHERE tenant = $1 AND session_id = $2 FOR UPDATE", [
    tenant,
    sessionId,
  ]);
  return readSessionExport(tx, tenant, sessionId);
}

async function digestOf(existing: { lines: AsyncIterable<string> }): Promise<string> {
  const hash = createHash("sha256");
  for await (const line of existing.lines) hash.update(`${line}\n`);
  return hash.digest("hex");
}

/** Where a session's validated records go: the database, or a digest to compare with a stored session. */
interface SessionSink {
  session(session: Omit<ExportSession, "type">): Promise<void>;
  messages(batch: readonly Omit<ExportMessage, "type">[]): Promise<void>;
  summary(summary: Omit<ExportSummary, "type">): Promise<void>;
  config(config: Omit<ExportConfig, "type">): Promise<void>;
  context(context: Omit<ExportContext, "type">, json: string): Promise<void>;
  /** After the session's last line. */
  done(session: Omit<ExportSession, "type">): Promise<void>;
}

/**
 * Reads the session's lines after its record, checks each and their order (messages 1..n, then
 * versions that cover [1..k] without gap or overlap, then at most one config, then at most one
 * context), and hands them to the sink.
 */
async function walkSession(
  cursor: LineCursor,
  sessionLineNumber: number,
  session: Omit<ExportSession, "type">,
  sink: SessionSink,
  target: ImportTarget,
): Promise<void> {
  const walk = new SessionWalk(cursor, sessionLineNumber, session, sink);
  await sink.session(session);
  await walk.messages(target.messageLimits);
  await walk.summaries();
  const config = await walk.next("config");
  if (config) await sink.config(checkConfig(config, target));
  const context = await walk.next("context");
  if (context) {
    const { record, json } = checkContext(context, session.session_id, target);
    await sink.context(record, json);
  }
  await walk.end();
  await sink.done(session);
}

/** One session's lines after its record, taken from the cursor while they are of that session. */
class SessionWalk {
  constructor(
    readonly cursor: LineCursor,
    readonly sessionLine: number,
    readonly session: Omit<ExportSession, "type">,
    readonly sink: SessionSink,
  ) {}

  /** The next line when it has this type (and then it must be this session's); else null, left unread. */
  async next(type: ExportLine["type"]): Promise<ParsedLine | null> {
    const parsed = await this.cursor.peek();
    if (parsed?.record.type !== type) return null;
    const { session_id: sessionId } = this.session;
    if ((parsed.record as { session_id: string }).session_id !== sessionId) {
      throw new ImportLineError(
        parsed.line,
        "session_id",
        `must be '${sessionId}', the session of line ${this.sessionLine}`,
      );
    }
    return this.cursor.take();
  }

  /** Messages 1..message_count, each within the limits, handed over MESSAGE_BATCH at a time. */
  async messages(limits: MessageLimits): Promise<void> {
    let batch: Omit<ExportMessage, "type">[] = [];
    let seq = 0;
    // A key held twice would fail the unique index, which would read as a conflict.
    const seqOfKey = new Map<string, number>();
    for (let next = await this.next("message"); next; next = await this.next("message")) {
      const message = next.record as ExportMessage;
      const twin = message.idempotency_key === null ? undefined : seqOfKey.get(message.idempotency_key);
      if (twin !== undefined)
        throw new ImportLineError(next.line, "idempotency_key", `repeats the key of seq ${twin}`);
      if (message.idempotency_key !== null) seqOfKey.set(message.idempotency_key, message.seq);
      if (message.seq !== seq + 1)
        throw new ImportLineError(next.line, "seq", `must be ${seq + 1} (seqs have no gaps)`);
      seq = message.seq;
      checkMessageSize(next, limits);
      batch.push({ ...message, message: next.raw.message as ExportMessage["message"] });
      if (batch.length >= MESSAGE_BATCH) {
        await this.sink.messages(batch);
        batch = [];
      }
    }
    if (batch.length > 0) await this.sink.messages(batch);
    this.#count("message_count", this.session.message_count, seq, "message");
  }

  /** Versions 1..summary_count, each covering the range after the previous one. */
  async summaries(): Promise<void> {
    let version = 0;
    let covered = 0;
    for (let next = await this.next("summary"); next; next = await this.next("summary")) {
      const summary = next.record as ExportSummary;
      checkSummary(next.line, summary, version, covered, this.session.message_count);
      version = summary.version;
      covered = summary.last_seq;
      await this.sink.summary({ ...summary, metadata: next.raw.metadata as ExportSummary["metadata"] });
    }
    this.#count("summary_count", this.session.summary_count, version, "summary");
  }

  /** The session is complete only when what follows says so: a truncated file stores none of it. */
  async end(): Promise<void> {
    const after = await this.cursor.peek();
    if (!after) {
      throw new ImportLineError(
        this.cursor.lastLine + 1,
        "type",
        "the input ends without its end line (truncated?)",
      );
    }
    if (after.record.type !== "session" && after.record.type !== "end") {
      throw new ImportLineError(
        after.line,
        "type",
        `a "${after.record.type}" line is out of place here (see the order in the README)`,
      );
    }
  }

  #count(field: "message_count" | "summary_count", said: number, found: number, what: string): void {
    if (said !== found)
      throw new ImportLineError(this.sessionLine, field, `is ${said}, but ${found} ${what} lines follow`);
  }
}

function checkSummary(
  line: number,
  summary: ExportSummary,
  version: number,
  covered: number,
  messages: number,
): void {
  if (summary.version !== version + 1) throw new ImportLineError(line, "version", `must be ${version + 1}`);
  if (summary.first_seq !== covered + 1) {
    throw new ImportLineError(
      line,
      "first_seq",
      `must be ${covered + 1} (versions cover [1..k] with no gap or overlap)`,
    );
  }
  if (summary.last_seq < covered || summary.last_seq > messages) {
    throw new ImportLineError(
      line,
      "last_seq",
      `must be from ${covered} to the session's message_count (${messages})`,
    );
  }
}

function checkMessageSize(parsed: ParsedLine, limits: MessageLimits): void {
  try {
    assertMessageSize(parsed.raw.message as ChatMessage, "message", limits);
  } catch (error) {
    if (error instanceof ValidationError) throw lineError(parsed.line, error);
    throw error;
  }
}

function checkConfig(parsed: ParsedLine, target: ImportTarget): Omit<ExportConfig, "type"> {
  const config = parsed.record as ExportConfig;
  try {
    target.resolveConfig(config.config as Partial<SessionConfig>);
  } catch (error) {
    if (error instanceof ValidationError) throw lineError(parsed.line, error);
    throw error;
  }
  return { ...config, config: parsed.raw.config as ExportConfig["config"] };
}

function checkContext(
  parsed: ParsedLine,
  sessionId: string,
  target: ImportTarget,
): { record: Omit<ExportContext, "type">; json: string } {
  const record = {
    ...(parsed.record as ExportContext),
    context: parsed.raw.context as ExportContext["context"],
  };
  if (record.context.session_id !== undefined && record.context.session_id !== sessionId) {
    throw new ImportLineError(parsed.line, "context.session_id", "must equal the line's session_id");
  }
  const json = JSON.stringify(record.context);
  if (Buffer.byteLength(json, "utf8") > target.maxContextBytes) {
    throw new ImportLineError(parsed.line, "context", `is larger than ${target.maxContextBytes} bytes`);
  }
  return { record, json };
}

/** The SHA-256 of the lines an export of the session would have: what a stored session is compared with. */
class DigestSink implements SessionSink {
  readonly #hash: Hash = createHash("sha256");
  #line(text: string) {
    this.#hash.update(`${text}\n`);
  }
  async session(session: Omit<ExportSession, "type">) {
    this.#line(sessionLine(session));
  }
  async messages(batch: readonly Omit<ExportMessage, "type">[]) {
    for (const message of batch) this.#line(messageLine(message));
  }
  async summary(summary: Omit<ExportSummary, "type">) {
    this.#line(summaryLine(summary));
  }
  async config(config: Omit<ExportConfig, "type">) {
    this.#line(configLine(config));
  }
  async context(context: Omit<ExportContext, "type">) {
    this.#line(contextLine(context));
  }
  async done() {}
  digest(): string {
    return this.#hash.digest("hex");
  }
}

/** Writes the session into the system of record, in the import's transaction. */
class StoreSink implements SessionSink {
  readonly #tx: Transaction;
  readonly #target: ImportTarget;
  #tenant = "";
  #sessionId = "";

  constructor(tx: Transaction, target: ImportTarget) {
    this.#tx = tx;
    this.#target = target;
  }

  async session(s: Omit<ExportSession, "type">) {
    this.#tenant = s.tenant;
    this.#sessionId = s.session_id;
    // A session with only a context, config or summaries has no record.
    if (s.created_at === null) return;
    await this.#tx.query(
      `INSERT INTO memory_sessions (tenant, session_id, next_seq, buffer_floor_seq, created_at, updated_at,
                                    title, user_id, metadata)
       VALUES ($1, $2, $3, $4, $5::timestamptz, $6::timestamptz, $7, $8, $9::jsonb)`,
      [
        s.tenant,
        s.session_id,
        s.message_count + 1,
        s.buffer_floor_seq,
        s.created_at,
        s.updated_at,
        s.title,
        s.user_id,
        JSON.stringify(s.metadata),
      ],
    );
  }

  async messages(batch: readonly Omit<ExportMessage, "type">[]) {
    await this.#tx.query(
      `INSERT INTO memory_messages (tenant, session_id, seq, idempotency_key, message, tokens, tokens_estimated, created_at)
       SELECT $1, $2, i.seq, i.idempotency_key, i.message::json, i.tokens, i.tokens_estimated, i.created_at::timestamptz
       FROM unnest($3::bigint[], $4::text[], $5::text[], $6::int[], $7::bool[], $8::text[])
         AS i(seq, idempotency_key, message, tokens, tokens_estimated, created_at)`,
      [
        this.#tenant,
        this.#sessionId,
        batch.map((m) => m.seq),
        batch.map((m) => m.idempotency_key),
        batch.map((m) => JSON.stringify(m.message)),
        batch.map((m) => m.tokens),
        batch.map((m) => m.tokens_estimated),
        batch.map((m) => m.created_at),
      ],
    );
  }

  async summary(s: Omit<ExportSummary, "type">) {
    // No fencing token: tokens are the source deployment's leases, meaningless here.
    await this.#tx.query(
      `INSERT INTO memory_summaries (tenant, session_id, version, summary_text, first_seq, last_seq, tokens, metadata, created_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9::timestamptz)`,
      [
        this.#tenant,
        this.#sessionId,
        s.version,
        s.summary_text,
        s.first_seq,
        s.last_seq,
        s.tokens,
        JSON.stringify(s.metadata),
        s.created_at,
      ],
    );
  }

  async config(c: Omit<ExportConfig, "type">) {
    const set = c.config as Partial<SessionConfig>;
    await this.#tx.query(
      `INSERT INTO memory_session_configs (tenant, session_id, config, set_keys, updated_at)
       VALUES ($1, $2, $3::jsonb, $4, $5::timestamptz)`,
      [
        this.#tenant,
        this.#sessionId,
        JSON.stringify(this.#target.resolveConfig(set)),
        Object.keys(set),
        c.updated_at,
      ],
    );
  }

  async context(c: Omit<ExportContext, "type">, json: string) {
    await this.#tx.query(
      `INSERT INTO memory_context_snapshots (tenant, session_id, context, updated_at)
       VALUES ($1, $2, $3::json, $4::timestamptz)`,
      [this.#tenant, this.#sessionId, json, c.updated_at],
    );
  }

  /** What the listing shows of the messages (migration 009), from the restored transcript. */
  async done(s: Omit<ExportSession, "type">) {
    if (s.message_count === 0) return;
    await this.#tx.query(
      `UPDATE memory_sessions SET
         default_title = memory_title((SELECT memory_user_text(m.message) FROM memory_messages m
           WHERE m.tenant = $1 AND m.session_id = $2 AND memory_user_text(m.message) IS NOT NULL
           ORDER BY m.seq LIMIT 1)),
         last_user_message = memory_preview((SELECT memory_user_text(m.message) FROM memory_messages m
           WHERE m.tenant = $1 AND m.session_id = $2 AND memory_user_text(m.message) IS NOT NULL
           ORDER BY m.seq DESC LIMIT 1))
       WHERE tenant = $1 AND session_id = $2`,
      [this.#tenant, this.#sessionId],
    );
  }
}

/** A library ValidationError (config, context) as the error of the line it came from. */
function lineError(line: number, error: ValidationError): ImportLineError {
  const reason = error.message.startsWith(`${error.field}: `)
    ? error.message.slice(error.field.length + 2)
    : error.message;
  return new ImportLineError(line, error.field, reason);
}

/** The input's lines, parsed and validated one at a time, with one line of look-ahead. */
class LineCursor {
  readonly #lines: AsyncIterator<string>;
  #peeked: ParsedLine | null | undefined;
  #number = 0;

  constructor(lines: AsyncIterable<string>) {
    this.#lines = lines[Symbol.asyncIterator]();
  }

  /** The number of the last line read (blank lines count). */
  get lastLine(): number {
    return this.#peeked ? this.#peeked.line - 1 : this.#number;
  }

  async peek(): Promise<ParsedLine | null> {
    if (this.#peeked === undefined) this.#peeked = await this.#read();
    return this.#peeked;
  }

  async take(): Promise<ParsedLine | null> {
    const line = await this.peek();
    this.#peeked = undefined;
    return line;
  }

  async #read(): Promise<ParsedLine | null> {
    for (;;) {
      const next = await this.#lines.next();
      if (next.done) return null;
      this.#number += 1;
      if (next.value.trim() === "") continue;
      return parseLine(this.#number, next.value);
    }
  }
}

function parseLine(line: number, text: string): ParsedLine {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new ImportLineError(line, "json", "is not valid JSON");
  }
  const result = ExportLineSchema.safeParse(raw);
  if (!result.success) throw lineError(line, toValidationError(result.error.issues, "", "line"));
  return { line, record: result.data, raw: raw as Record<string, unknown> };
}

/**
 * Lines from chunks of UTF-8 (a file or a request body), without their line breaks, holding one
 * line at a time; a line longer than MAX_LINE_BYTES is an ImportLineError.
 */
export async function* splitLines(chunks: AsyncIterable<Buffer | string>): AsyncGenerator<string> {
  const decoder = new StringDecoder("utf8");
  let pending = "";
  let number = 0;
  for await (const chunk of chunks) {
    pending += typeof chunk === "string" ? chunk : decoder.write(chunk);
    let end = pending.indexOf("\n");
    while (end >= 0) {
      number += 1;
      yield pending.slice(0, end).replace(/\r$/, "");
      pending = pending.slice(end + 1);
      end = pending.indexOf("\n");
    }
    if (pending.length > MAX_LINE_BYTES) {
      throw new ImportLineError(number + 1, "json", `is longer than ${MAX_LINE_BYTES} bytes`);
    }
  }
  pending += decoder.end();
  if (pending !== "") yield pending;
}
