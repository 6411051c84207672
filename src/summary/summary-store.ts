import type { SessionRef } from "../buffer/keys.js";
import { RedisUnavailableError, ValidationError } from "../errors.js";
import { validateSessionId } from "../messages/validate.js";
import { parseOrThrow } from "../schemas/issues.js";
import { NewSummarySchema } from "../schemas/summary.js";
import { type Database, onlyRow } from "../storage/database.js";
import type { SummaryRecord } from "../types.js";

/** The Redis side of summaries: a cache of the current version (absent without Redis). */
export interface SummaryCache {
  readCachedSummary(ref: SessionRef): Promise<SummaryRecord | null>;
  /**
   * Caches a committed version as current and trims the range it covers from the buffer; never
   * into another `generation` of the session (null: unknown to the caller).
   */
  publishSummary(ref: SessionRef, summary: SummaryRecord, generation: string): Promise<void>;
  forgetSummary(ref: SessionRef): Promise<void>;
}

/** Summary figures for monitoring (spec: `get_summary_stats`). */
export interface SummaryStats {
  summary_count: number;
  current_version: number;
  /** The transcript range all versions together cover: `[1..covered_seq]`. */
  covered_seq: number;
  current_tokens: number;
  /** Versions that compressed an over-budget summary (the specification's "merge"). */
  merge_count: number;
  first_summary_at: string | null;
  last_summary_at: string | null;
}

/** A new version to commit: what it says and the range it adds. */
export interface SummaryCommit {
  summaryText: string;
  tokens: number;
  /** The range this version folds in starts after this seq; must equal the current coverage. */
  previousLastSeq: number;
  /** The last seq this version covers (>= previousLastSeq; equal when it only rewrites the text). */
  lastSeq: number;
  /** The summarizer's lease token; a commit older than a committed one is refused. */
  fencingToken?: number;
  /** The session generation the summarized messages were read from; refused if it changed. */
  generation?: string;
  metadata?: Record<string, unknown>;
}

export interface SummaryStoreDependencies {
  db: Database;
  cache?: SummaryCache;
  countTokens(text: string): number;
  /** Tenant whose sessions this instance reads and writes (default "default"). */
  tenant?: string;
  /** Longest summary text accepted, in UTF-8 bytes (default 262144). */
  maxSummaryBytes?: number;
  /** Told when a committed summary could not be published to the cache (Redis away). */
  onCacheFailure?(ref: SessionRef): Promise<void>;
}

interface SummaryRow {
  version: number;
  summary_text: string;
  first_seq: number;
  last_seq: number;
  tokens: number;
  created_at: Date | string;
  metadata: Record<string, unknown>;
}

const SUMMARY_COLUMNS = "version, summary_text, first_seq, last_seq, tokens, created_at, metadata";

/**
 * The generation of the session a summary row belongs to, read in the same statement: a cache
 * never takes a summary into another generation of the session (one created after an erase).
 */
const GENERATION_COLUMN =
  "(SELECT generation::text FROM memory_sessions WHERE tenant = $1 AND session_id = $2) AS generation";

/**
 * The Memory Manager API specification's SummaryStore: every summary version persists in PostgreSQL with the exact transcript
 * range it covers; the current one is cached in Redis and read through on a miss.
 */
export class SummaryStore {
  readonly tenant: string;
  readonly #deps: SummaryStoreDependencies;

  constructor(deps: SummaryStoreDependencies) {
    this.#deps = deps;
    this.tenant = deps.tenant ?? "default";
  }

  forTenant(tenant: string): SummaryStore {
    return new SummaryStore({ ...this.#deps, tenant });
  }

  /**
   * Adds a version that rewrites the current summary without covering new messages (spec:
   * `add_summary`), e.g. to import a summary from another store or to correct one.
   */
  async addSummary(
    sessionId: string,
    summaryText: string,
    metadata: Record<string, unknown> = {},
  ): Promise<boolean> {
    const ref = this.#ref(sessionId);
    // The HTTP body's schema, so that both name a bad field alike.
    parseOrThrow(NewSummarySchema, { summary_text: summaryText, metadata }, "");
    this.#checkSize(summaryText);
    const current = await this.currentRecord(ref);
    const coveredSeq = current?.last_seq ?? 0;
    const committed = await this.commit(ref, {
      summaryText,
      tokens: this.#deps.countTokens(summaryText),
      previousLastSeq: coveredSeq,
      lastSeq: coveredSeq,
      metadata: { source: "add_summary", ...metadata },
    });
    return committed !== null;
  }

  /**
   * Commits a version if the coverage is still `previousLastSeq` and no newer fencing token has
   * committed; returns it, or null when another writer got there first (nothing is written).
   */
  async commit(ref: SessionRef, commit: SummaryCommit): Promise<SummaryRecord | null> {
    if (commit.lastSeq < commit.previousLastSeq)
      throw new ValidationError("last_seq", "must not go backwards");
    let rows: (SummaryRow & { generation: string | null })[];
    try {
      ({ rows } = await this.#deps.db.query<SummaryRow & { generation: string | null }>(
        `WITH current AS (
           SELECT coalesce(max(version), 0) AS version, coalesce(max(last_seq), 0) AS last_seq,
                  coalesce(max(fencing_token), 0) AS fencing_token
           FROM memory_summaries WHERE tenant = $1 AND session_id = $2
         )
         INSERT INTO memory_summaries
           (tenant, session_id, version, summary_text, first_seq, last_seq, tokens, fencing_token, metadata)
         SELECT $1, $2, current.version + 1, $3, current.last_seq + 1, $4, $5, $6, $7::jsonb
         FROM current
         WHERE current.last_seq = $8 AND ($6::bigint IS NULL OR current.fencing_token <= $6::bigint)
           -- Shares the session row's lock: an erase waits for this commit, or this finds it gone.
           AND ($9::uuid IS NULL OR EXISTS (SELECT 1 FROM memory_sessions
                WHERE tenant = $1 AND session_id = $2 AND generation = $9::uuid FOR SHARE))
         RETURNING ${SUMMARY_COLUMNS}, ${GENERATION_COLUMN}`,
        [
          ref.tenant,
          ref.sessionId,
          commit.summaryText,
          commit.lastSeq,
          commit.tokens,
          commit.fencingToken ?? null,
          JSON.stringify(commit.metadata ?? {}),
          commit.previousLastSeq,
          commit.generation ?? null,
        ],
      ));
    } catch (error) {
      // Two commits racing for the same version: the primary key lets one through.
      if ((error as { code?: unknown }).code === "23505") return null;
      throw error;
    }
    const row = rows[0];
    if (!row) return null;
    const record = toRecord(row);
    await this.#publish(ref, record, row.generation);
    return record;
  }

  /** Publishes to the cache; a cache that does not answer only marks the session for a rebuild. */
  async #publish(ref: SessionRef, record: SummaryRecord, generation: string | null): Promise<void> {
    if (!this.#deps.cache || generation === null) return;
    try {
      await this.#deps.cache.publishSummary(ref, record, generation);
    } catch (error) {
      if (!(error instanceof RedisUnavailableError)) throw error;
      await this.#deps.onCacheFailure?.(ref);
    }
  }

  /** The current summary text, or null (spec: `get_current_summary`). */
  async getCurrentSummary(sessionId: string): Promise<string | null> {
    return (await this.currentRecord(this.#ref(sessionId)))?.summary_text ?? null;
  }

  /** The current version: from the Redis cache, else from PostgreSQL (then cached again). */
  async currentRecord(ref: SessionRef): Promise<SummaryRecord | null> {
    const cached = await this.#deps.cache?.readCachedSummary(ref).catch((error: unknown) => {
      if (error instanceof RedisUnavailableError) return null;
      throw error;
    });
    if (cached) return cached;
    const { rows } = await this.#deps.db.query<SummaryRow & { generation: string | null }>(
      `SELECT ${SUMMARY_COLUMNS}, ${GENERATION_COLUMN} FROM memory_summaries
       WHERE tenant = $1 AND session_id = $2 ORDER BY version DESC LIMIT 1`,
      [ref.tenant, ref.sessionId],
    );
    const row = rows[0];
    if (!row) return null;
    const record = toRecord(row);
    await this.#publish(ref, record, row.generation);
    return record;
  }

  /** The newest `limit` versions, newest first, with times and ranges (spec: `get_summary_history`). */
  async getSummaryHistory(sessionId: string, limit = 10): Promise<SummaryRecord[]> {
    const ref = this.#ref(sessionId);
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > 1000) {
      throw new ValidationError("limit", "must be an integer from 1 to 1000");
    }
    const { rows } = await this.#deps.db.query<SummaryRow>(
      `SELECT ${SUMMARY_COLUMNS} FROM memory_summaries WHERE tenant = $1 AND session_id = $2
       ORDER BY version DESC LIMIT $3`,
      [ref.tenant, ref.sessionId, limit],
    );
    return rows.map(toRecord);
  }

  /** Every version, oldest first: for coverage checks and exports. */
  async allVersions(ref: SessionRef): Promise<SummaryRecord[]> {
    const { rows } = await this.#deps.db.query<SummaryRow>(
      `SELECT ${SUMMARY_COLUMNS} FROM memory_summaries WHERE tenant = $1 AND session_id = $2 ORDER BY version`,
      [ref.tenant, ref.sessionId],
    );
    return rows.map(toRecord);
  }

  /** Figures for monitoring (spec: `get_summary_stats`). */
  async getSummaryStats(sessionId: string): Promise<SummaryStats> {
    const ref = this.#ref(sessionId);
    const { rows } = await this.#deps.db.query<{
      summary_count: number;
      current_version: number;
      covered_seq: number;
      current_tokens: number | null;
      merge_count: number;
      first_summary_at: Date | string | null;
      last_summary_at: Date | string | null;
    }>(
      `SELECT count(*)::bigint AS summary_count,
              coalesce(max(version), 0) AS current_version,
              coalesce(max(last_seq), 0)::bigint AS covered_seq,
              (SELECT tokens FROM memory_summaries WHERE tenant = $1 AND session_id = $2
               ORDER BY version DESC LIMIT 1) AS current_tokens,
              count(*) FILTER (WHERE (metadata->>'merged')::boolean)::bigint AS merge_count,
              min(created_at) AS first_summary_at, max(created_at) AS last_summary_at
       FROM memory_summaries WHERE tenant = $1 AND session_id = $2`,
      [ref.tenant, ref.sessionId],
    );
    const row = onlyRow(rows, "the summary statistics query");
    return {
      summary_count: Number(row.summary_count),
      current_version: Number(row.current_version),
      covered_seq: Number(row.covered_seq),
      current_tokens: row.current_tokens ?? 0,
      merge_count: Number(row.merge_count),
      first_summary_at: row.first_summary_at ? new Date(row.first_summary_at).toISOString() : null,
      last_summary_at: row.last_summary_at ? new Date(row.last_summary_at).toISOString() : null,
    };
  }

  /**
   * Deletes every version (spec: `clear_summaries`). Coverage restarts at 0, so the messages they
   * covered count as unsummarized again: the transcript still has them.
   */
  async clearSummaries(sessionId: string): Promise<boolean> {
    const ref = this.#ref(sessionId);
    await this.#deps.db.query("DELETE FROM memory_summaries WHERE tenant = $1 AND session_id = $2", [
      ref.tenant,
      ref.sessionId,
    ]);
    try {
      await this.#deps.cache?.forgetSummary(ref);
    } catch (error) {
      if (!(error instanceof RedisUnavailableError)) throw error;
      await this.#deps.onCacheFailure?.(ref);
    }
    return true;
  }

  #ref(sessionId: string): SessionRef {
    return { tenant: this.tenant, sessionId: validateSessionId(sessionId) };
  }

  #checkSize(summaryText: string): void {
    const maxBytes = this.#deps.maxSummaryBytes ?? 256 * 1024;
    if (Buffer.byteLength(summaryText, "utf8") > maxBytes) {
      throw new ValidationError("summary_text", `is larger than ${maxBytes} bytes`);
    }
  }
}

function toRecord(row: SummaryRow): SummaryRecord {
  return {
    version: row.version,
    summary_text: row.summary_text,
    first_seq: Number(row.first_seq),
    last_seq: Number(row.last_seq),
    tokens: row.tokens,
    created_at: new Date(row.created_at).toISOString(),
    metadata: row.metadata ?? {},
  };
}
