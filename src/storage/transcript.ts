import type { SessionRef } from "../buffer/keys.js";
import { DatabaseUnavailableError } from "../errors.js";
import { completeStored } from "../messages/entries.js";
import type { ChatMessage, StoredMessage, SummaryRecord } from "../types.js";
import { type Database, isConnectionError, onlyRow } from "./database.js";
import { GroupCommit } from "./group-commit.js";

/** A validated message ready for the transcript, with its serialised form and token count. */
export interface TranscriptEntry {
  message: ChatMessage;
  /** `JSON.stringify(message)`, computed once on the write path and reused for Redis. */
  json: string;
  tokens: number;
  tokensEstimated: boolean;
  /**
   * Key that makes the append idempotent: the message's `id`, or one the outbox gave a message
   * without an id so that its replay is exactly once.
   */
  idempotencyKey?: string;
  /** The session's user, recorded on its row unless it has one (see `appendParameters`). */
  userId?: string;
}

/** Where an appended message landed. */
export type AppendedSeq = StoredSeq | ProvisionalSeq;

/** A message in the transcript. */
export interface StoredSeq {
  seq: number;
  /** True when the idempotency key was already stored: nothing new was written. */
  duplicate: boolean;
  provisional?: undefined;
}

/**
 * A message accepted while the database was away, held durably in the Redis outbox: the
 * transcript assigns its seq when the outbox replays (in acknowledgement order), so none is
 * promised here.
 */
export interface ProvisionalSeq {
  seq: null;
  duplicate: false;
  provisional: true;
}

/** What one `appendEntries` call stored, and in which generation of the session. */
export interface AppendResult {
  seqs: StoredSeq[];
  /**
   * The session's generation (new on every creation after an erase); the Redis buffer records it
   * so that a write of an erased generation never lands in its successor's buffer.
   */
  generation: string;
  /**
   * The session's buffer right after this append, when asked for (`appendEntries` given caps)
   * and the statement could tell it exactly (see APPEND_WITH_TOTALS_SQL); otherwise null.
   */
  totals: AppendTotals | null;
  /**
   * The entries as the transcript holds them: a duplicate's is the copy stored first (its JSON
   * and tokens), which is what the Redis buffer must get; the others are the entries given.
   */
  entries: readonly TranscriptEntry[];
}

/** A session's buffer as an append left it: what deciding on summarization needs. */
export interface AppendTotals {
  /** The session's highest seq. */
  lastSeq: number;
  /** The last seq its latest summary covers (0 for none). */
  coveredSeq: number;
  /** The session's config overrides (only the keys set for it). */
  configOverrides: Record<string, number>;
  buffer: BufferTotals;
}

/** Caps that bound the buffer (the defaults; a session's config overrides them). */
export interface BufferCaps {
  maxMessages: number;
  maxTokens: number;
}

/** The buffer and summary as the system of record has them at one instant. */
export interface TranscriptSnapshot {
  summary: SummaryRecord | null;
  /** The session's highest seq, 0 when it has no messages. */
  lastSeq: number;
  /** The session's generation; null when the session does not exist. */
  generation: string | null;
  /** When the session last changed; null when it has no messages. */
  lastUpdated: Date | null;
  /** The session's config overrides (only the keys set for it). */
  configOverrides: Record<string, number>;
  /**
   * The buffer's newest messages, oldest first: all of them, or the newest `newest` that
   * `readSnapshot` was asked for.
   */
  messages: StoredMessage[];
  /** The whole buffer (newest messages after the summary, within the caps), as totals. */
  buffer: BufferTotals;
}

/** The buffer's size, whether or not its messages were read whole. */
export interface BufferTotals {
  count: number;
  tokens: number;
  /** Its oldest seq; 0 when it is empty. */
  firstSeq: number;
  /** Messages whose tokens are estimated. */
  estimated: number;
}

/** A summarization job's starting point (see `readJobInput`). */
export interface JobInput {
  summary: SummaryRecord | null;
  /** Highest fencing token any committed version carries (0 for none). */
  fencingToken: number;
  configOverrides: Record<string, number>;
  /** Null when the session does not exist (never written, or erased). */
  generation: string | null;
  lastSeq: number;
  /** The oldest unsummarized messages, oldest first. */
  messages: StoredMessage[];
}

/** A message's columns where a LEFT JOIN may leave them empty. */
interface OptionalMessageColumns {
  seq: number | null;
  message: ChatMessage | string | null;
  tokens: number | null;
  tokens_estimated: boolean | null;
}

interface JobInputRow extends LatestSummaryColumns, OptionalMessageColumns {
  session_last_seq: number;
  generation: string;
  fencing_token: number;
  config: Record<string, number>;
}

interface SnapshotRow extends LatestSummaryColumns, OptionalMessageColumns {
  updated_at: Date | string | null;
  generation: string | null;
  config: Record<string, number>;
  session_last_seq: number;
}

export interface MessageRow {
  seq: number;
  message: ChatMessage | string;
  tokens: number;
  tokens_estimated: boolean;
}

/** PostgreSQL's largest integer: "no limit" for a LIMIT-like parameter. */
const MAX_INT4 = 2_147_483_647;

/** SQLSTATEs after which the append statement is simply run again (see APPEND_SQL). */
const RETRIED_STATES = new Set(["23505", "40P01"]);
const MAX_APPEND_ATTEMPTS = 5;

// One statement, so one round trip and one transaction, for the appends of any number of
// sessions: skip messages whose idempotency key is stored, take a block of seqs from each
// session's row (its row lock orders the session's writers, so seq order is commit order and
// there are no holes), insert. Rows are locked in key order, so two batches never wait on each
// other in a cycle. Two writers racing with the same key make the second fail on the unique
// index, rolling its seq blocks back; it retries and then sees the first one's row as a
// duplicate. A deadlock with some other statement is retried the same way.
const APPEND_CTES = `
WITH input AS (
  SELECT i.tenant, i.session_id, i.idempotency_key, i.message, i.tokens, i.tokens_estimated, i.user_id, i.ord
  FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int[], $6::bool[], $7::text[])
    WITH ORDINALITY AS i(tenant, session_id, idempotency_key, message, tokens, tokens_estimated, user_id, ord)
),
existing AS (
  -- One index probe a message, whatever the table's statistics say (a join planned while the
  -- table was empty scans it whole).
  -- A duplicate answers the copy stored (message, tokens): the Redis buffer gets that, not the
  -- retry's, whose server-filled fields (a timestamp) may differ.
  SELECT stored.seq, stored.generation, stored.message, stored.tokens, stored.tokens_estimated, input.ord
  FROM input CROSS JOIN LATERAL (
    SELECT m.seq, s.generation, m.message::text AS message, m.tokens, m.tokens_estimated
    FROM memory_messages m
    JOIN memory_sessions s ON s.tenant = m.tenant AND s.session_id = m.session_id
    WHERE m.tenant = input.tenant AND m.session_id = input.session_id
      AND m.idempotency_key = input.idempotency_key
    LIMIT 1
  ) stored
),
fresh AS (
  SELECT input.*,
         row_number() OVER (PARTITION BY input.tenant, input.session_id ORDER BY input.ord) AS position
  FROM input WHERE input.ord NOT IN (SELECT ord FROM existing)
),
counts AS (
  SELECT fresh.tenant, fresh.session_id, count(*) AS n, max(fresh.user_id) AS user_id
  FROM fresh GROUP BY fresh.tenant, fresh.session_id
),
listing AS (
  -- What the session listing shows of the batch: the start of its first and of its newest user
  -- message with some text (memory_user_head, migration 016: enough for the title and the
  -- preview). Each is looked for in order and computed only until found (OFFSET 0 keeps it above
  -- the sort and computes it once a message), not for every message of the batch. A session's
  -- one message (the common write) is its first and its newest: computed once.
  SELECT counts.tenant, counts.session_id, counts.n, counts.user_id,
         first_user.text AS first_user_text,
         CASE WHEN counts.n = 1 THEN first_user.text ELSE last_user.text END AS last_user_text
  FROM counts
  LEFT JOIN LATERAL (
    SELECT head.text FROM (
      SELECT f.message FROM fresh f
      WHERE f.tenant = counts.tenant AND f.session_id = counts.session_id ORDER BY f.ord OFFSET 0
    ) ordered
    CROSS JOIN LATERAL (SELECT memory_user_head(ordered.message::json) AS text OFFSET 0) head
    WHERE head.text IS NOT NULL
    LIMIT 1
  ) first_user ON true
  LEFT JOIN LATERAL (
    SELECT head.text FROM (
      SELECT f.message FROM fresh f
      WHERE f.tenant = counts.tenant AND f.session_id = counts.session_id AND counts.n > 1
      ORDER BY f.ord DESC OFFSET 0
    ) ordered
    CROSS JOIN LATERAL (SELECT memory_user_head(ordered.message::json) AS text OFFSET 0) head
    WHERE head.text IS NOT NULL
    LIMIT 1
  ) last_user ON true
),
block AS (
  -- The session row the append locks anyway also keeps what the listing shows (migration 009).
  INSERT INTO memory_sessions AS s (tenant, session_id, next_seq, default_title, last_user_message, user_id)
  SELECT tenant, session_id, 1 + n, memory_title(first_user_text), memory_preview(last_user_text), user_id
  FROM listing ORDER BY tenant, session_id
  ON CONFLICT (tenant, session_id)
  DO UPDATE SET next_seq = s.next_seq + excluded.next_seq - 1, updated_at = now(),
    default_title = coalesce(s.default_title, excluded.default_title),
    last_user_message = coalesce(excluded.last_user_message, s.last_user_message),
    user_id = coalesce(s.user_id, excluded.user_id)
  RETURNING s.tenant, s.session_id, s.next_seq, s.generation, s.buffer_floor_seq
),
placed AS (
  SELECT fresh.*, block.generation, block.next_seq - counts.n + fresh.position - 1 AS seq
  FROM fresh JOIN counts USING (tenant, session_id) JOIN block USING (tenant, session_id)
),
inserted AS (
  INSERT INTO memory_messages (tenant, session_id, seq, idempotency_key, message, tokens, tokens_estimated)
  SELECT tenant, session_id, seq, idempotency_key, message::json, tokens, tokens_estimated FROM placed
)`;

// A data-modifying CTE runs to completion whether or not the final SELECT reads it.
const APPEND_SQL = `${APPEND_CTES}
SELECT ord, seq, false AS duplicate, generation::text AS generation,
       NULL::text AS stored_message, NULL::int AS stored_tokens, NULL::bool AS stored_estimated
FROM placed
UNION ALL
SELECT ord, seq, true, generation::text, message, tokens, tokens_estimated FROM existing
ORDER BY ord`;

// The append, also answering each session's buffer totals after it (what SqlBufferStore's
// readState(ref, 0) would read next), so that a write without Redis is one statement, not two.
// They are read from this statement's snapshot plus the rows it inserts (which the snapshot does
// not show), so they are exact only when the snapshot holds every message before the batch's
// block: the session's next_seq in the snapshot is where the block starts, in the same
// generation. A writer that committed between the snapshot and the row lock breaks that; the
// totals are then null and the caller reads them afterwards. The floor comes from the locked row
// (RETURNING); a summary or config committed meanwhile is missed as a read a moment earlier
// would miss it. $8 and $9: the default caps (a session's config overrides them).
const APPEND_WITH_TOTALS_SQL = `${APPEND_CTES},
seen AS (
  SELECT s.tenant, s.session_id, s.next_seq, s.generation
  FROM memory_sessions s JOIN counts USING (tenant, session_id)
),
-- Materialized: once a session, not once a row of the join below.
totals AS MATERIALIZED (
  SELECT block.tenant, block.session_id, block.next_seq - 1 AS last_seq,
         coalesce(latest.last_seq, 0) AS covered_seq, coalesce(config.config, '{}'::jsonb) AS config,
         buffer.count, buffer.tokens, buffer.first_seq, buffer.estimated
  FROM block
  JOIN counts USING (tenant, session_id)
  LEFT JOIN seen USING (tenant, session_id)
  LEFT JOIN LATERAL (
    SELECT su.last_seq FROM memory_summaries su
    WHERE su.tenant = block.tenant AND su.session_id = block.session_id
    ORDER BY su.version DESC LIMIT 1
  ) latest ON true
  LEFT JOIN LATERAL (
    SELECT c.config FROM memory_session_configs c
    WHERE c.tenant = block.tenant AND c.session_id = block.session_id
  ) config ON true
  CROSS JOIN LATERAL (
    SELECT coalesce((config.config->>'max_buffer_messages')::int, $8::int) AS max_messages,
           coalesce((config.config->>'max_buffer_tokens')::int, $9::int) AS max_tokens
  ) caps
  CROSS JOIN LATERAL (
    SELECT count(*) AS count, coalesce(sum(candidates.tokens), 0) AS tokens,
           coalesce(min(candidates.seq), 0) AS first_seq,
           count(*) FILTER (WHERE candidates.tokens_estimated) AS estimated
    FROM (
      SELECT newest.seq, newest.tokens, newest.tokens_estimated,
             row_number() OVER (ORDER BY newest.seq DESC) AS position,
             sum(newest.tokens) OVER (ORDER BY newest.seq DESC) AS running_tokens
      FROM (
        SELECT placed.seq, placed.tokens, placed.tokens_estimated FROM placed
        WHERE placed.tenant = block.tenant AND placed.session_id = block.session_id
        UNION ALL
        (SELECT m.seq, m.tokens, m.tokens_estimated FROM memory_messages m
         WHERE m.tenant = block.tenant AND m.session_id = block.session_id
           AND m.seq > greatest(coalesce(latest.last_seq, 0), block.buffer_floor_seq)
         ORDER BY m.seq DESC LIMIT caps.max_messages)
      ) newest
      ORDER BY newest.seq DESC LIMIT caps.max_messages
    ) candidates
    WHERE candidates.position = 1 OR candidates.running_tokens <= caps.max_tokens
  ) buffer
  WHERE (seen.session_id IS NULL AND block.next_seq - counts.n = 1)
     OR (seen.next_seq = block.next_seq - counts.n AND seen.generation = block.generation)
)
SELECT placed.ord, placed.seq, false AS duplicate, placed.generation::text AS generation,
       NULL::text AS stored_message, NULL::int AS stored_tokens, NULL::bool AS stored_estimated,
       totals.tenant, totals.session_id, totals.last_seq, totals.covered_seq, totals.config,
       totals.count, totals.tokens, totals.first_seq, totals.estimated
FROM placed
LEFT JOIN totals ON placed.position = 1 AND totals.tenant = placed.tenant AND totals.session_id = placed.session_id
UNION ALL
SELECT ord, seq, true, generation::text, message, tokens, tokens_estimated,
       NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
FROM existing
ORDER BY ord`;

/** The append's rows for one session, under that session's row lock (outbox replays). */
interface AppendRow {
  ord: number;
  seq: number;
  duplicate: boolean;
  generation: string;
  /** A duplicate's stored copy; null for a message this statement inserted. */
  stored_message: string | null;
  stored_tokens: number | null;
  stored_estimated: boolean | null;
}

/** A row of APPEND_WITH_TOTALS_SQL: the first fresh row of each session carries its totals. */
interface AppendTotalsRow extends AppendRow {
  tenant?: string | null;
  session_id?: string | null;
  last_seq?: number | string | null;
  covered_seq?: number | string | null;
  config?: Record<string, number> | null;
  count?: number | string | null;
  tokens?: number | string | null;
  first_seq?: number | string | null;
  estimated?: number | string | null;
}

export interface TranscriptOptions {
  /**
   * Append statements in flight at once (default 4). While that many run, further appends wait
   * and then go together, in one statement (group commit): see GroupCommit.
   */
  appendConcurrency?: number;
}

/** One `append` call waiting for its batch. */
interface AppendRequest {
  ref: SessionRef;
  entries: readonly TranscriptEntry[];
  /** The default caps, to answer the buffer's totals after the append (null: not asked). */
  caps: BufferCaps | null;
}

/**
 * The transcript in the system of record: every acknowledged message of every session, in seq
 * order. The buffer and the summaries are views of it.
 */
/** The session's ($1, $2) newest summary version, as a common table expression named `latest`. */
const LATEST_SUMMARY = `latest AS (
         SELECT version, summary_text, first_seq, last_seq, tokens, created_at, metadata
         FROM memory_summaries WHERE tenant = $1 AND session_id = $2
         ORDER BY version DESC LIMIT 1
       )`;

export class Transcript {
  readonly #db: Database;
  readonly #appends: GroupCommit<AppendRequest, AppendResult>;

  constructor(db: Database, options: TranscriptOptions = {}) {
    this.#db = db;
    this.#appends = new GroupCommit({
      commit: (requests) => this.#appendBatch(requests),
      weight: (request) => request.entries.length,
      concurrency: options.appendConcurrency,
      // The guarded database reports an outage as DatabaseUnavailableError; a bare one (tests,
      // tools) throws the connection error itself.
      sharedFailure: (error) => error instanceof DatabaseUnavailableError || isConnectionError(error),
    });
  }

  /**
   * Appends messages in order; returns each one's seq (an existing one for a known key). Resolves
   * once they are committed, possibly in one statement with other sessions' appends.
   */
  async append(ref: SessionRef, entries: readonly TranscriptEntry[]): Promise<StoredSeq[]> {
    return (await this.appendEntries(ref, entries)).seqs;
  }

  /**
   * `append`, also telling the session's generation and, given the default caps, the buffer's
   * totals after it where the statement can tell them exactly (`totals`, else null).
   */
  appendEntries(
    ref: SessionRef,
    entries: readonly TranscriptEntry[],
    caps: BufferCaps | null = null,
  ): Promise<AppendResult> {
    if (entries.length === 0) return Promise.reject(new RangeError("appendEntries needs at least one entry"));
    return this.#appends.submit({ ref, entries, caps });
  }

  /**
   * Appends replayed outbox entries only into the generation they were accepted in: under the
   * session's row lock, so that an erase either ran before (nothing is appended: returns null)
   * or waits and then erases them too. `generation` null appends unconditionally (entries of a
   * version that did not record it).
   */
  async appendToGeneration(
    ref: SessionRef,
    generation: string | null,
    entries: readonly TranscriptEntry[],
  ): Promise<StoredSeq[] | null> {
    return this.#db.transaction(async (tx) => {
      if (generation !== null) {
        const { rows } = await tx.query<{ generation: string }>(
          `SELECT generation::text AS generation FROM memory_sessions
           WHERE tenant = $1 AND session_id = $2 FOR UPDATE`,
          [ref.tenant, ref.sessionId],
        );
        if (rows[0]?.generation !== generation) return null;
      }
      const { params, placement } = appendParameters([{ ref, entries, caps: null }]);
      const { rows } = await tx.query<AppendRow>(APPEND_SQL, params);
      return onlyRow(placeRows([{ entries }], placement, rows), "the append statement").seqs;
    });
  }

  /** Batches and appends committed so far (group commit at work: appends per batch). */
  appendStats(): { batches: number; appends: number } {
    const { batches, items } = this.#appends.stats();
    return { batches, appends: items };
  }

  async #appendBatch(requests: readonly AppendRequest[]): Promise<AppendResult[]> {
    const { params, placement } = appendParameters(requests);
    // One statement a batch: the totals are answered for the requests with the first caps asked.
    const caps = requests.find((request) => request.caps !== null)?.caps ?? null;
    const sql = caps ? APPEND_WITH_TOTALS_SQL : APPEND_SQL;
    if (caps) params.push(caps.maxMessages, caps.maxTokens);
    for (let attempt = 1; ; attempt++) {
      try {
        const { rows } = await this.#db.query<AppendTotalsRow>(sql, params);
        const results = placeRows(requests, placement, rows);
        if (!caps) return results;
        const totals = totalsOfSessions(rows);
        return results.map((result, index) => {
          const { ref, caps: asked } = requests[index] as AppendRequest;
          const same = asked?.maxMessages === caps.maxMessages && asked.maxTokens === caps.maxTokens;
          return { ...result, totals: same ? (totals.get(rowKey(ref.tenant, ref.sessionId)) ?? null) : null };
        });
      } catch (error) {
        const code = (error as { code?: unknown } | null)?.code;
        if (attempt >= MAX_APPEND_ATTEMPTS || !RETRIED_STATES.has(String(code))) throw error;
      }
    }
  }

  /** The messages after `afterSeq` (oldest first), at most `limit` of them. */
  async readAfter(ref: SessionRef, afterSeq: number, limit = 1000): Promise<StoredMessage[]> {
    const { rows } = await this.#db.query<MessageRow>(
      `SELECT seq, message, tokens, tokens_estimated FROM memory_messages
       WHERE tenant = $1 AND session_id = $2 AND seq > $3 ORDER BY seq LIMIT $4`,
      [ref.tenant, ref.sessionId, afterSeq, limit],
    );
    return rows.map(toStoredMessage);
  }

  /**
   * What the buffer and the summary are, read in one statement (one snapshot): the latest summary,
   * the session's last seq, and the buffer as the caps define it: the longest run of newest
   * messages after the summary with at most `maxMessages` messages and `maxTokens` tokens (always
   * at least the newest one). The Redis buffer holds exactly this run, so a rebuild from here
   * equals what Redis would have held.
   */
  async readSnapshot(ref: SessionRef, defaults: BufferCaps, newest?: number): Promise<TranscriptSnapshot> {
    const { rows } = await this.#db.query<SnapshotRow>(
      `WITH ${LATEST_SUMMARY},
       session AS (
         SELECT next_seq - 1 AS last_seq, buffer_floor_seq, updated_at, generation
         FROM memory_sessions WHERE tenant = $1 AND session_id = $2
       ),
       config AS (
         SELECT config FROM memory_session_configs WHERE tenant = $1 AND session_id = $2
       ),
       head AS (
         SELECT coalesce((SELECT last_seq FROM latest), 0) AS covered_seq,
                coalesce((SELECT last_seq FROM session), 0) AS last_seq,
                coalesce((SELECT buffer_floor_seq FROM session), 0) AS floor_seq,
                (SELECT updated_at FROM session) AS updated_at,
                (SELECT generation::text FROM session) AS generation,
                coalesce((SELECT config FROM config), '{}'::jsonb) AS config
       ),
       caps AS (
         SELECT coalesce((config->>'max_buffer_messages')::int, $3) AS max_messages,
                coalesce((config->>'max_buffer_tokens')::int, $4) AS max_tokens
         FROM head
       )
       SELECT head.covered_seq, head.last_seq AS session_last_seq, head.config, head.updated_at,
              head.generation,
              latest.version AS summary_version, latest.summary_text, latest.first_seq AS summary_first_seq,
              latest.tokens AS summary_tokens, latest.created_at AS summary_created_at,
              latest.metadata AS summary_metadata,
              newest.seq, newest.tokens, newest.tokens_estimated,
              -- Past the newest $5, seq and tokens only: what the totals need (a write's answer
              -- needs no message at all).
              CASE WHEN newest.position <= $5 THEN newest.message END AS message
       FROM head
       CROSS JOIN caps
       LEFT JOIN latest ON true
       LEFT JOIN LATERAL (
         SELECT seq, message, tokens, tokens_estimated, position FROM (
           SELECT seq, message, tokens, tokens_estimated,
                  row_number() OVER (ORDER BY seq DESC) AS position,
                  sum(tokens) OVER (ORDER BY seq DESC) AS running_tokens
           FROM memory_messages
           WHERE tenant = $1 AND session_id = $2 AND seq > greatest(head.covered_seq, head.floor_seq)
           ORDER BY seq DESC LIMIT caps.max_messages
         ) candidates
         WHERE position = 1 OR running_tokens <= caps.max_tokens
       ) newest ON true
       ORDER BY newest.seq`,
      [ref.tenant, ref.sessionId, defaults.maxMessages, defaults.maxTokens, newest ?? MAX_INT4],
    );
    const first = onlyRow(rows, "the snapshot query");
    const buffered = rows.filter((row) => row.seq !== null) as MessageRow[];
    return {
      summary: summaryOfRow(first),
      lastSeq: Number(first.session_last_seq),
      generation: first.generation,
      lastUpdated: first.updated_at === null ? null : new Date(first.updated_at),
      configOverrides: first.config,
      messages: buffered.filter((row) => row.message !== null).map(toStoredMessage),
      buffer: {
        count: buffered.length,
        tokens: buffered.reduce((sum, row) => sum + row.tokens, 0),
        firstSeq: buffered.length > 0 ? Number(buffered[0]?.seq) : 0,
        estimated: buffered.filter((row) => row.tokens_estimated).length,
      },
    };
  }

  /**
   * Empties the buffer without touching the transcript: the floor moves to the last seq, so
   * every buffer read or rebuild starts after it. Returns the floor.
   */
  async raiseBufferFloor(ref: SessionRef): Promise<number> {
    const { rows } = await this.#db.query<{ floor: number }>(
      `UPDATE memory_sessions SET buffer_floor_seq = next_seq - 1, updated_at = now()
       WHERE tenant = $1 AND session_id = $2 RETURNING buffer_floor_seq AS floor`,
      [ref.tenant, ref.sessionId],
    );
    return Number(rows[0]?.floor ?? 0);
  }

  /**
   * What a summarization job starts from, in one statement (one snapshot): the latest summary,
   * the highest fencing token committed, the session's config overrides, its generation (so that
   * a summary never commits into a session erased meanwhile), its last seq, and the oldest
   * unsummarized messages, at most `maxMessages` and about `maxTokens` (the first always comes).
   */
  async readJobInput(ref: SessionRef, limits: { maxMessages: number; maxTokens: number }): Promise<JobInput> {
    const { rows } = await this.#db.query<JobInputRow>(
      `WITH ${LATEST_SUMMARY},
       head AS (
         SELECT s.next_seq - 1 AS session_last_seq, s.generation::text AS generation,
                coalesce((SELECT last_seq FROM latest), 0) AS covered_seq,
                (SELECT coalesce(max(fencing_token), 0) FROM memory_summaries
                 WHERE tenant = $1 AND session_id = $2) AS fencing_token,
                coalesce((SELECT config FROM memory_session_configs
                          WHERE tenant = $1 AND session_id = $2), '{}'::jsonb) AS config
         FROM memory_sessions s WHERE s.tenant = $1 AND s.session_id = $2
       )
       SELECT head.*, latest.version AS summary_version, latest.summary_text,
              latest.first_seq AS summary_first_seq, latest.tokens AS summary_tokens,
              latest.created_at AS summary_created_at, latest.metadata AS summary_metadata,
              unsummarized.seq, unsummarized.message, unsummarized.tokens, unsummarized.tokens_estimated
       FROM head
       LEFT JOIN latest ON true
       LEFT JOIN LATERAL (
         SELECT seq, message, tokens, tokens_estimated FROM (
           SELECT seq, message, tokens, tokens_estimated,
                  sum(tokens) OVER (ORDER BY seq) - tokens AS tokens_before
           FROM memory_messages
           WHERE tenant = $1 AND session_id = $2 AND seq > head.covered_seq
           ORDER BY seq LIMIT $3
         ) oldest
         WHERE tokens_before < $4
       ) unsummarized ON true
       ORDER BY unsummarized.seq`,
      [ref.tenant, ref.sessionId, limits.maxMessages, limits.maxTokens],
    );
    const first = rows[0];
    if (!first)
      return {
        summary: null,
        fencingToken: 0,
        configOverrides: {},
        generation: null,
        lastSeq: 0,
        messages: [],
      };
    return {
      summary: summaryOfRow(first),
      fencingToken: Number(first.fencing_token),
      configOverrides: first.config,
      generation: first.generation,
      lastSeq: Number(first.session_last_seq),
      messages: rows.filter((row) => row.seq !== null).map((row) => toStoredMessage(row as MessageRow)),
    };
  }

  /**
   * Sessions idle since before `idleSince` whose transcript goes past their summaries: the
   * candidates for a final summary. At most `limit` of them, longest idle first.
   */
  async idleUnsummarized(idleSince: Date, limit: number): Promise<SessionRef[]> {
    const { rows } = await this.#db.query<{ tenant: string; session_id: string }>(
      `SELECT s.tenant, s.session_id FROM memory_sessions s
       WHERE s.updated_at < $1
         AND s.next_seq - 1 > coalesce((SELECT max(last_seq) FROM memory_summaries m
                                        WHERE m.tenant = s.tenant AND m.session_id = s.session_id), 0)
       ORDER BY s.updated_at LIMIT $2`,
      [idleSince, limit],
    );
    return rows.map((row) => ({ tenant: row.tenant, sessionId: row.session_id }));
  }

  /** Records that the session's Redis buffer missed a write and must be rebuilt. */
  async markRedisStale(ref: SessionRef): Promise<void> {
    await this.#db.query(
      "INSERT INTO memory_redis_stale (tenant, session_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
      [ref.tenant, ref.sessionId],
    );
  }

  /** Takes up to `limit` sessions marked stale, clearing their marks; the caller drops their buffers. */
  async takeRedisStale(limit: number): Promise<SessionRef[]> {
    const { rows } = await this.#db.query<{ tenant: string; session_id: string }>(
      // By row address, through the partial index: no plan of it reads the whole table.
      `DELETE FROM memory_redis_stale
       WHERE ctid = ANY(ARRAY(
         SELECT ctid FROM memory_redis_stale
         ORDER BY tenant, session_id LIMIT $1 FOR UPDATE SKIP LOCKED
       ))
       RETURNING tenant, session_id`,
      [limit],
    );
    return rows.map((row) => ({ tenant: row.tenant, sessionId: row.session_id }));
  }
}

/** The latest summary columns that the snapshot and job queries join in, as a record. */
interface LatestSummaryColumns {
  covered_seq: number;
  summary_version: number | null;
  summary_text: string | null;
  summary_first_seq: number | null;
  summary_tokens: number | null;
  summary_created_at: Date | string | null;
  summary_metadata: Record<string, unknown> | null;
}

function summaryOfRow(row: LatestSummaryColumns): SummaryRecord | null {
  const { summary_version: version, summary_text: text, summary_tokens: tokens } = row;
  // The columns come from one summary row (a left join): all set when its version is.
  if (version === null || text === null || tokens === null || row.summary_created_at === null) return null;
  return {
    version,
    summary_text: text,
    first_seq: Number(row.summary_first_seq),
    last_seq: Number(row.covered_seq),
    tokens,
    created_at: new Date(row.summary_created_at).toISOString(),
    metadata: row.summary_metadata ?? {},
  };
}

export function toStoredMessage(row: MessageRow): StoredMessage {
  // The driver's object (or one parsed here) is this call's own, so it is completed in place.
  const message = (typeof row.message === "string" ? JSON.parse(row.message) : row.message) as ChatMessage;
  return completeStored(message, Number(row.seq), row.tokens, row.tokens_estimated === true);
}

/** Where each entry of each request went: its row in the statement, or the row of its key's twin. */
type Placement = { row: number; repeated: boolean }[][];

/**
 * The append statement's parameters for any number of requests. A key given twice (in one call or
 * by two calls in this batch) is one message: the first is stored and the others point at its
 * row. Rows are numbered from 1, as ORDINALITY counts.
 */
function appendParameters(requests: readonly AppendRequest[]): { params: unknown[]; placement: Placement } {
  const tenants: string[] = [];
  const sessions: string[] = [];
  const keys: (string | null)[] = [];
  const messages: string[] = [];
  const tokens: number[] = [];
  const estimated: boolean[] = [];
  const users: (string | null)[] = [];
  const rowOfKey = new Map<string, number>();
  const placement = requests.map(({ ref, entries }) =>
    entries.map((entry) => {
      const key = keyOf(entry);
      const scoped = key === null ? null : `${ref.tenant}\u0000${ref.sessionId}\u0000${key}`;
      const seen = scoped === null ? undefined : rowOfKey.get(scoped);
      if (seen !== undefined) return { row: seen, repeated: true };
      tenants.push(ref.tenant);
      sessions.push(ref.sessionId);
      keys.push(key);
      messages.push(entry.json);
      tokens.push(entry.tokens);
      estimated.push(entry.tokensEstimated);
      users.push(entry.userId ?? null);
      if (scoped !== null) rowOfKey.set(scoped, tenants.length);
      return { row: tenants.length, repeated: false };
    }),
  );
  return { params: [tenants, sessions, keys, messages, tokens, estimated, users], placement };
}

/** Each request's seqs and generation, from the statement's rows. */
function placeRows(
  requests: readonly Pick<AppendRequest, "entries">[],
  placement: Placement,
  rows: readonly AppendRow[],
): AppendResult[] {
  const stored = new Map(rows.map((row) => [Number(row.ord), row]));
  // The statement returns one row per entry, numbered by `ord`.
  const rowOf = (ord: number) => {
    const row = stored.get(ord);
    if (!row) throw new Error(`the append statement returned no row for entry ${ord}`);
    return row;
  };
  return placement.map((entries, index) => ({
    seqs: entries.map(({ row, repeated }) => {
      const result = rowOf(row);
      return { seq: Number(result.seq), duplicate: repeated || result.duplicate };
    }),
    generation: rowOf(entries[0]?.row ?? -1).generation,
    totals: null,
    entries: (requests[index]?.entries ?? []).map((entry, position) => {
      const result = rowOf(entries[position]?.row ?? -1);
      if (result.stored_message === null) return entry;
      return {
        ...entry,
        json: result.stored_message,
        tokens: Number(result.stored_tokens),
        tokensEstimated: result.stored_estimated === true,
      };
    }),
  }));
}

function rowKey(tenant: string, sessionId: string): string {
  return `${tenant}\u0000${sessionId}`;
}

/** The totals APPEND_WITH_TOTALS_SQL answered, by session. */
function totalsOfSessions(rows: readonly AppendTotalsRow[]): Map<string, AppendTotals> {
  const totals = new Map<string, AppendTotals>();
  for (const row of rows) {
    if (row.last_seq === null || row.last_seq === undefined) continue;
    totals.set(rowKey(String(row.tenant), String(row.session_id)), {
      lastSeq: Number(row.last_seq),
      coveredSeq: Number(row.covered_seq),
      configOverrides: row.config ?? {},
      buffer: {
        count: Number(row.count),
        tokens: Number(row.tokens),
        firstSeq: Number(row.first_seq),
        estimated: Number(row.estimated),
      },
    });
  }
  return totals;
}

function keyOf(entry: TranscriptEntry): string | null {
  return entry.idempotencyKey ?? entry.message.id ?? null;
}
