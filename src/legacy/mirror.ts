/**
 * Migration phases `coexistence`, `gradual` and `full`: every write the memory manager
 * acknowledged is also made in the legacy session store, so that the old code, which still reads
 * it, sees the same sessions (and, in `full`, so that it stays a usable backup).
 *
 * Each write is first recorded in `memory_legacy_outbox` in the system of record (one INSERT);
 * then the session's recorded writes are applied to the legacy store oldest first, consecutive
 * messages in one statement, and deleted. In coexistence and gradual the caller waits for that at
 * most `timeoutMs`; in full (`timeoutMs` 0) it does not wait at all. A legacy store that is down
 * or slow leaves the entries queued, and a background pass applies them when it answers again.
 * Since a session's new write is recorded behind its queued ones, the legacy store sees every
 * session's writes in order, and a crash between the acknowledgement and the legacy write loses
 * nothing. Only the holder of a session's lease (memory_legacy_drain_leases) applies its queue, so
 * several service instances never apply an entry twice or out of order.
 */
import { randomUUID } from "node:crypto";
import type { Logger } from "../logger.js";
import type { Database } from "../storage/database.js";
import type { ChatMessage } from "../types.js";
import type { LegacyMessageInput, LegacySessionStore } from "./legacy-store.js";

/** The values of MEMORY_MIGRATION_PHASE. */
export const MIGRATION_PHASES = ["off", "coexistence", "gradual", "full"] as const;
export type MigrationPhase = (typeof MIGRATION_PHASES)[number];

export type LegacyWrite =
  | { kind: "append"; messages: LegacyMessageInput[] }
  | { kind: "context"; context: Record<string, unknown> | null }
  | { kind: "erase" };

export interface LegacyMirrorOptions {
  /** The system of record, where the retry queue lives. */
  database: Database;
  legacy: LegacySessionStore;
  /**
   * How long a write waits for the legacy store before leaving its entry queued, in ms (default
   * 200); 0 never waits (phase full: the legacy store is off the request path).
   */
  timeoutMs?: number;
  /** How often queued entries are retried (default 1000 ms). */
  retryIntervalMs?: number;
  /**
   * How long a session's drain lease lasts, in seconds (default 120): a process that died holding
   * it delays that session's legacy writes this long. Longer than one legacy statement may take.
   */
  leaseSeconds?: number;
  logger?: Logger;
  /** The memory tenant whose writes are mirrored (default "default"): the legacy table has none. */
  tenant?: string;
}

interface OutboxRow {
  id: string;
  kind: LegacyWrite["kind"];
  payload: unknown;
}

/** How many queued entries one drain step reads at a time. */
const DRAIN_PAGE = 100;

/** Takes the session's lease (free, expired or already ours) and reads its oldest entries under it. */
const CLAIM_AND_READ_SQL = `
WITH lease AS (
  INSERT INTO memory_legacy_drain_leases AS l (session_id, owner, expires_at)
  VALUES ($1, $2, now() + make_interval(secs => $3))
  ON CONFLICT (session_id) DO UPDATE SET owner = EXCLUDED.owner, expires_at = EXCLUDED.expires_at
  WHERE l.owner = EXCLUDED.owner OR l.expires_at < now()
  RETURNING 1
)
SELECT o.id::text AS id, o.kind, o.payload FROM memory_legacy_outbox o
WHERE o.session_id = $1 AND EXISTS (SELECT 1 FROM lease)
-- Ordered by the bigint column: the text alias would sort "10" before "9".
ORDER BY o.id LIMIT $4
-- The rows are read in the snapshot taken before the INSERT waited for a lease the previous
-- holder was releasing; FOR UPDATE reads them again after that wait, so the entries it applied
-- and deleted meanwhile are skipped, not applied twice.
FOR UPDATE OF o`;

/** Deletes the applied entries and, when the drain is done, gives the lease back. */
const SETTLE_SQL = `
WITH applied AS (
  DELETE FROM memory_legacy_outbox WHERE session_id = $1 AND id = ANY($2::bigint[])
)
DELETE FROM memory_legacy_drain_leases WHERE session_id = $1 AND owner = $3 AND $4::boolean`;

export class LegacyMirror {
  readonly tenant: string;
  readonly #db: Database;
  readonly #legacy: LegacySessionStore;
  readonly #timeoutMs: number;
  readonly #leaseSeconds: number;
  readonly #owner = randomUUID();
  readonly #logger: Logger | undefined;
  /** One drain at a time per session in this process; the lease keeps other processes out. */
  readonly #draining = new Map<string, Promise<void>>();
  readonly #retry: NodeJS.Timeout;
  #failures = 0;
  #closed = false;

  constructor(options: LegacyMirrorOptions) {
    this.tenant = options.tenant ?? "default";
    this.#db = options.database;
    this.#legacy = options.legacy;
    this.#timeoutMs = options.timeoutMs ?? 200;
    this.#leaseSeconds = options.leaseSeconds ?? 120;
    this.#logger = options.logger;
    this.#retry = setInterval(() => void this.retryQueued(), options.retryIntervalMs ?? 1000);
    this.#retry.unref();
  }

  /** Legacy writes that failed or timed out since the process started. */
  get failures(): number {
    return this.#failures;
  }

  /**
   * Records `write` for the legacy store and waits (at most the timeout) for the session's queue
   * to reach it. Throws only when the system of record refuses the INSERT.
   */
  async write(sessionId: string, write: LegacyWrite): Promise<void> {
    if (write.kind === "append" && write.messages.length === 0) return;
    // One entry per message, so that a batch the legacy store took half of is not applied twice.
    const payloads =
      write.kind === "append" ? write.messages : [write.kind === "context" ? write.context : null];
    await this.#db.query(
      `INSERT INTO memory_legacy_outbox (session_id, kind, payload)
       SELECT $1, $2, e.value FROM jsonb_array_elements($3::jsonb) WITH ORDINALITY AS e(value, n) ORDER BY n`,
      [sessionId, write.kind, JSON.stringify(payloads)],
    );
    const drained = this.#drain(sessionId);
    if (this.#timeoutMs === 0) return;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, this.#timeoutMs);
    });
    await Promise.race([drained, timeout]);
    clearTimeout(timer);
  }

  /** Queued entries in all, and the `top` sessions with the most (for /metrics). */
  queueDepth(top = 10): Promise<QueueDepth> {
    return readQueueDepth(this.#db, top);
  }

  /** One background pass: drains every session that has queued entries. */
  async retryQueued(): Promise<void> {
    if (this.#closed) return;
    try {
      const { rows } = await this.#db.query<{ session_id: string }>(
        "SELECT DISTINCT session_id FROM memory_legacy_outbox LIMIT 1000",
      );
      for (const row of rows) if (!this.#closed) await this.#drain(row.session_id);
    } catch (error) {
      // The system of record is away: the next pass tries again.
      this.#logger?.warn({ err: String(error) }, "legacy retry pass could not read the queue");
    }
  }

  /** Whether the session has legacy writes queued or being applied in this process. */
  async pending(sessionId: string): Promise<boolean> {
    if (this.#draining.has(sessionId)) return true;
    const { rows } = await this.#db.query<{ queued: boolean }>(
      "SELECT EXISTS (SELECT 1 FROM memory_legacy_outbox WHERE session_id = $1) AS queued",
      [sessionId],
    );
    return rows[0]?.queued === true;
  }

  /** Counts and logs a write that could not even be queued. */
  lost(sessionId: string, write: LegacyWrite, error: unknown): void {
    this.#failures += 1;
    this.#logger?.error(
      { session_id: sessionId, kind: write.kind, err: String(error) },
      "legacy write could not be queued; the legacy store misses it",
    );
  }

  /** Stops the background pass and waits for the drains in flight. */
  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#retry);
    await Promise.allSettled([...this.#draining.values()]);
  }

  #drain(sessionId: string): Promise<void> {
    const running = this.#draining.get(sessionId);
    // A drain in flight may already have read past the new entry's page: run once more after it.
    const next = (running ?? Promise.resolve()).then(() => this.#applyQueued(sessionId));
    const tracked = next.finally(() => {
      if (this.#draining.get(sessionId) === tracked) this.#draining.delete(sessionId);
    });
    this.#draining.set(sessionId, tracked);
    return tracked;
  }

  /**
   * Applies the session's entries oldest first, a page at a time, under its lease; stops at the
   * first the legacy store refuses. Entries are deleted after the legacy write: a crash in between
   * applies them again (at least once, never lost).
   */
  async #applyQueued(sessionId: string): Promise<void> {
    let more = !this.#closed;
    while (more) {
      try {
        const { rows } = await this.#db.query<OutboxRow>(CLAIM_AND_READ_SQL, [
          sessionId,
          this.#owner,
          this.#leaseSeconds,
          DRAIN_PAGE,
        ]);
        const applied = await this.#applyRows(sessionId, rows);
        more = applied === rows.length && rows.length === DRAIN_PAGE && !this.#closed;
        const ids = rows.slice(0, applied).map((row) => row.id);
        // Also when nothing was read: the lease may be ours, taken over an empty queue.
        await this.#db.query(SETTLE_SQL, [sessionId, ids, this.#owner, !more]);
      } catch (error) {
        // The system of record is away (the lease then lapses): the retry pass tries again.
        this.#logger?.warn(
          { session_id: sessionId, err: String(error) },
          "legacy queue could not be drained",
        );
        return;
      }
    }
  }

  /** Applies rows in order, consecutive messages in one statement; returns how many were applied. */
  async #applyRows(sessionId: string, rows: readonly OutboxRow[]): Promise<number> {
    let applied = 0;
    while (applied < rows.length) {
      const run = nextRun(rows, applied);
      try {
        await this.#apply(sessionId, run);
      } catch (error) {
        this.#failures += 1;
        this.#logger?.warn(
          { session_id: sessionId, kind: run[0]?.kind, err: String(error) },
          "legacy store write failed; queued for retry",
        );
        return applied;
      }
      applied += run.length;
    }
    return applied;
  }

  async #apply(sessionId: string, run: readonly OutboxRow[]): Promise<void> {
    const [first] = run;
    if (first?.kind === "erase") {
      await this.#legacy.eraseSession(sessionId);
    } else if (first?.kind === "context") {
      await this.#legacy.saveContractContext(sessionId, first.payload as Record<string, unknown> | null);
    } else {
      await this.#legacy.appendMessages(
        sessionId,
        run.map((row) => row.payload as LegacyMessageInput),
      );
    }
  }
}

/** The rows from `start` that one legacy statement applies: a run of appends, or one other write. */
function nextRun(rows: readonly OutboxRow[], start: number): readonly OutboxRow[] {
  let end = start + 1;
  if (rows[start]?.kind === "append") while (rows[end]?.kind === "append") end += 1;
  return rows.slice(start, end);
}

export interface QueueDepth {
  total: number;
  sessions: { sessionId: string; entries: number }[];
}

/** How many legacy writes are queued in the system of record, and the `top` sessions with the most. */
export async function readQueueDepth(db: Database, top: number): Promise<QueueDepth> {
  const { rows: totals } = await db.query<{ count: number }>(
    "SELECT count(*)::int AS count FROM memory_legacy_outbox",
  );
  const total = totals[0]?.count ?? 0;
  if (top === 0 || total === 0) return { total, sessions: [] };
  const { rows } = await db.query<{ session_id: string; entries: number }>(
    `SELECT session_id, count(*)::int AS entries FROM memory_legacy_outbox
     GROUP BY session_id ORDER BY entries DESC, session_id LIMIT $1`,
    [top],
  );
  return { total, sessions: rows.map((row) => ({ sessionId: row.session_id, entries: row.entries })) };
}

/**
 * A message as the legacy code stores it: its roles are user, assistant and system (a tool
 * message has no legacy form and is left out), its content a string (text parts are joined).
 */
export function toLegacyMessages(messages: readonly ChatMessage[]): LegacyMessageInput[] {
  const converted: LegacyMessageInput[] = [];
  for (const message of messages) {
    if (message.role !== "user" && message.role !== "assistant" && message.role !== "system") continue;
    const content =
      typeof message.content === "string"
        ? message.content
        : (message.content ?? []).map((part) => (part.type === "text" ? part.text : "")).join("");
    converted.push({
      role: message.role,
      content,
      ...(message.name !== undefined ? { extra: { name: message.name } } : {}),
    });
  }
  return converted;
}
