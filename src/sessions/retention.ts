import { randomUUID } from "node:crypto";
import { ValidationError } from "../errors.js";
import type { Logger } from "../logger.js";
import { errorCode } from "../resilience/index.js";
import { MAX_RETENTION_DAYS } from "../schemas/session-config.js";
import type { Database, Queryable } from "../storage/database.js";
import type { EraseGuard } from "../storage/session-records.js";

/** How long sessions are kept: per tenant, with a default; a session's own config key wins. */
export interface RetentionPolicy {
  /** Days an idle session is kept in a tenant without its own value; null: forever. */
  defaultDays: number | null;
  /** Per tenant: days (null: forever), over `defaultDays`. */
  tenantDays: ReadonlyMap<string, number | null>;
}

/** Erases one session as `clearSessionMemory` does when the guard allows it; true when erased. */
export type EraseSession = (tenant: string, sessionId: string, guard: EraseGuard) => Promise<boolean>;

export interface RetentionSweeperOptions {
  db: Database;
  policy: RetentionPolicy;
  erase: EraseSession;
  logger: Logger;
  /** Sessions read (and erased) per batch (default 100): each batch is one short statement. */
  batchSize?: number;
  /** How long the sweep lease lasts without renewal, in ms (default 60000; renewed every batch). */
  leaseMs?: number;
  /** The clock idleness is judged by, in ms since the epoch (default Date.now): tests move it. */
  now?: () => number;
}

/** What one sweep did (or, dry, would do). */
export interface RetentionSweepResult {
  sessions_erased: number;
  messages_erased: number;
  dry_run: boolean;
  /** False when another process held the sweep lease, or the sweep had to wait: nothing was read. */
  ran: boolean;
}

interface Candidate {
  tenant: string;
  session_id: string;
  messages: string | number;
  updated_at: string;
  /** Idle past its own retention (the others in the batch are passed over). */
  due: boolean | null;
}

/** Where a sweep is in the idle-time index (updated_at, tenant, session_id). */
type Position = [string, string, string];
const START: Position = ["-infinity", "", ""];
const LEASE_NAME = "retention";
const DAY = "interval '86400 seconds'";

/** The idle-time index's key (migration 012): the session's last write, in UTC. */
const IDLE_KEY = "(s.updated_at AT TIME ZONE 'UTC')";

/** A session's retention in days: its config key, else its tenant's (t: $4/$5 arrays), else $3. */
const EFFECTIVE_DAYS = `coalesce((c.config ->> 'retention_days')::integer,
  CASE WHEN t.tenant IS NULL THEN $3::integer ELSE t.days END)`;

/**
 * The next batch of sessions idle past their retention: $1 now, $2 the shortest retention in
 * use, $3 the default retention, $4/$5 the tenants' retentions, $6-$8 where the last batch ended.
 * The batch size is a literal: with `LIMIT $n` the generic plan (made once per connection) costs
 * a third of the table and runs in parallel workers, ~100 ms a batch at a million sessions
 * instead of ~1 ms. Exported for the plan checks (test and bench).
 */
export function candidatesSql(batchSize: number): string {
  // The batch is read from the index alone (ORDER BY ... LIMIT on one table), then each row's
  // retention is looked up: joined before the limit, the planner may hash-join and sort the
  // whole range instead, and a plan made once per connection keeps doing it.
  return `SELECT s.tenant, s.session_id, s.next_seq - 1 AS messages,
              to_char(s.updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS updated_at,
              s.updated_at < $1::timestamptz - ${EFFECTIVE_DAYS} * ${DAY} AS due
       FROM (SELECT s.tenant, s.session_id, s.next_seq, s.updated_at, ${IDLE_KEY} AS idle_at
             FROM memory_sessions s
             WHERE ${IDLE_KEY} < ($1::timestamptz - $2::integer * ${DAY}) AT TIME ZONE 'UTC'
               AND (${IDLE_KEY}, s.tenant, s.session_id) > ($6::timestamp, $7::text, $8::text)
             ORDER BY ${IDLE_KEY}, s.tenant, s.session_id
             LIMIT ${Math.trunc(batchSize)}) s
       LEFT JOIN LATERAL (SELECT c.config FROM memory_session_configs c
                          WHERE c.tenant = s.tenant AND c.session_id = s.session_id) c ON true
       LEFT JOIN LATERAL (SELECT t.tenant, t.days FROM unnest($4::text[], $5::integer[]) AS t(tenant, days)
                          WHERE t.tenant = s.tenant) t ON true
       ORDER BY s.idle_at, s.tenant, s.session_id`;
}

/**
 * Erases sessions idle (no write) longer than their retention, oldest first, a batch at a time,
 * off the request path; one sweeper at a time across processes (a lease row).
 */
export class RetentionSweeper {
  readonly #options: Required<RetentionSweeperOptions>;
  readonly #holder = randomUUID();
  #erased = { sessions: 0, messages: 0 };
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<unknown> | null = null;
  readonly #inFlight = new Set<Promise<unknown>>();
  #stopping = false;
  #paused: () => boolean = () => false;

  constructor(options: RetentionSweeperOptions) {
    this.#options = { batchSize: 100, leaseMs: 60_000, now: Date.now, ...options };
    const { batchSize } = this.#options;
    if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 10_000) {
      throw new ValidationError("retention.batchSize", "must be an integer from 1 to 10000");
    }
  }

  /** Sessions and messages this process's sweeps erased since it started (for `/metrics`). */
  erased(): { sessions: number; messages: number } {
    return { ...this.#erased };
  }

  /**
   * Sweeps every `intervalMs` (0: never) until `stop()`; the timer keeps no process alive. While
   * `paused` answers true (writes held in the Redis outbox, not in the transcript yet), every
   * sweep, a manual one too, does nothing (`ran: false`): those sessions look idle until replayed.
   */
  start(intervalMs: number, paused?: () => boolean): void {
    if (paused) this.#paused = paused;
    if (intervalMs <= 0 || this.#timer) return;
    this.#timer = setInterval(() => {
      if (this.#running) return;
      this.#running = this.sweep()
        .catch((error: unknown) =>
          this.#options.logger.warn(
            { code: errorCode(error), error: String(error) },
            "the retention sweep stopped early; the next one goes on",
          ),
        )
        .finally(() => {
          this.#running = null;
        });
    }, intervalMs);
    this.#timer.unref();
  }

  /** Stops the timer and waits for a running sweep, which stops after its current batch. */
  async stop(): Promise<void> {
    this.#stopping = true;
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    await Promise.allSettled([this.#running, ...this.#inFlight]);
  }

  /**
   * One sweep: erases every session idle longer than its retention at this moment. With
   * `dryRun`, erases nothing and counts what it would erase.
   */
  sweep(options: { dryRun?: boolean } = {}): Promise<RetentionSweepResult> {
    // Tracked, so that stop() (the manager's close) waits for a sweep asked for by hand too.
    const sweeping = this.#sweep(options.dryRun === true);
    this.#inFlight.add(sweeping);
    return sweeping.finally(() => this.#inFlight.delete(sweeping));
  }

  async #sweep(dryRun: boolean): Promise<RetentionSweepResult> {
    const result = { sessions_erased: 0, messages_erased: 0, dry_run: dryRun, ran: false };
    if (this.#paused()) return result;
    const now = new Date(this.#options.now());
    const shortest = await this.#shortestRetention();
    if (shortest === null) return { ...result, ran: true };
    if (!dryRun && !(await this.#takeLease())) return result;
    try {
      await this.#sweepFrom(now, shortest, dryRun, result);
    } finally {
      if (!dryRun) await this.#releaseLease();
    }
    return { ...result, ran: true };
  }

  async #sweepFrom(
    now: Date,
    shortest: number,
    dryRun: boolean,
    result: RetentionSweepResult,
  ): Promise<void> {
    let after = START;
    while (!this.#stopping) {
      const batch = await this.#candidates(now, shortest, after);
      for (const candidate of batch) {
        if (candidate.due !== true) continue;
        if (!dryRun && !(await this.#eraseIfIdle(candidate, now))) continue;
        result.sessions_erased++;
        result.messages_erased += Number(candidate.messages);
        if (!dryRun) this.#count(Number(candidate.messages));
      }
      const last = batch.at(-1);
      if (!last || batch.length < this.#options.batchSize) return;
      after = [last.updated_at, last.tenant, last.session_id];
      // A lease lost (this process stalled past it) means another sweeper may be running.
      if (!dryRun && !(await this.#takeLease())) return;
    }
  }

  #count(messages: number): void {
    this.#erased = { sessions: this.#erased.sessions + 1, messages: this.#erased.messages + messages };
  }

  /**
   * The next batch of sessions idle past their retention, after `after` in idle order. The range
   * `updated_at < now - shortest` is what the index reads; sessions in it with a longer retention
   * are read and passed over (once per sweep: the sweep moves on by keyset).
   */
  async #candidates(now: Date, shortest: number, after: Position): Promise<Candidate[]> {
    const { policy, batchSize } = this.#options;
    const tenants = [...policy.tenantDays.keys()];
    const params = [
      now.toISOString(),
      shortest,
      policy.defaultDays,
      tenants,
      tenants.map((tenant) => policy.tenantDays.get(tenant) ?? null),
      ...after,
    ];
    const rows = await indexPlanned(this.#options.db, (tx) =>
      tx.query<Candidate>(candidatesSql(batchSize), params),
    );
    return rows.rows;
  }

  /** Erases the candidate if it is still idle past its retention (checked again under its row lock). */
  async #eraseIfIdle(candidate: Candidate, now: Date): Promise<boolean> {
    const guard: EraseGuard = (tx) => this.#stillDue(tx, candidate, now);
    // Checked first without the lock too: a session written since keeps its Redis copy.
    if (!(await guard(this.#options.db))) return false;
    return this.#options.erase(candidate.tenant, candidate.session_id, guard);
  }

  async #stillDue(db: Queryable, candidate: Candidate, now: Date): Promise<boolean> {
    const { policy } = this.#options;
    const tenantDays = policy.tenantDays.has(candidate.tenant)
      ? (policy.tenantDays.get(candidate.tenant) ?? null)
      : policy.defaultDays;
    const { rows } = await db.query(
      `SELECT 1 FROM memory_sessions s
       LEFT JOIN memory_session_configs c ON c.tenant = s.tenant AND c.session_id = s.session_id
       WHERE s.tenant = $1 AND s.session_id = $2 AND s.updated_at < $3::timestamptz
         - coalesce((c.config ->> 'retention_days')::integer, $4::integer) * ${DAY}`,
      [candidate.tenant, candidate.session_id, now.toISOString(), tenantDays],
    );
    return rows.length > 0;
  }

  /** The shortest retention anywhere (default, tenants, sessions' own); null: all kept forever. */
  async #shortestRetention(): Promise<number | null> {
    const { policy, db } = this.#options;
    const { rows } = await indexPlanned(db, (tx) =>
      tx.query<{ days: number | null }>(
        `SELECT (config ->> 'retention_days')::integer AS days FROM memory_session_configs
         WHERE config ? 'retention_days' ORDER BY (config ->> 'retention_days')::integer LIMIT 1`,
      ),
    );
    const all = [policy.defaultDays, ...policy.tenantDays.values(), rows[0]?.days ?? null];
    const days = all.filter((value): value is number => value !== null);
    return days.length === 0 ? null : Math.min(...days);
  }

  /** Takes or renews the lease; false while another sweeper holds it. */
  async #takeLease(): Promise<boolean> {
    const { rows } = await this.#options.db.query(
      `INSERT INTO memory_retention_lease (name, holder, expires_at)
       VALUES ($1, $2, now() + $3::integer * interval '1 millisecond')
       ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at
       WHERE memory_retention_lease.holder = EXCLUDED.holder OR memory_retention_lease.expires_at < now()
       RETURNING 1`,
      [LEASE_NAME, this.#holder, this.#options.leaseMs],
    );
    return rows.length > 0;
  }

  async #releaseLease(): Promise<void> {
    await this.#options.db.query("DELETE FROM memory_retention_lease WHERE name = $1 AND holder = $2", [
      LEASE_NAME,
      this.#holder,
    ]);
  }
}

/**
 * Runs `read` with sequential scans, sorts and hash joins off, so that its statement is planned
 * on the indexes whatever the tables hold when it is planned: the pool plans each statement once
 * per connection, and a sweep planned while the tables were small would otherwise go on sorting
 * the whole idle range (or scanning the configs) as they grow. Only this statement is affected.
 */
function indexPlanned<T>(db: Database, read: (tx: Queryable) => Promise<T>): Promise<T> {
  return db.transaction(async (tx) => {
    await tx.query("SET LOCAL enable_seqscan = off");
    await tx.query("SET LOCAL enable_sort = off");
    await tx.query("SET LOCAL enable_hashjoin = off");
    return read(tx);
  });
}

/** A retention in days as an option gives it: an integer from 1 to 36500, or null (forever). */
export function checkRetentionDays(value: unknown, field: string): number | null {
  if (value === null) return null;
  if (typeof value === "number" && Number.isInteger(value) && value >= 1 && value <= MAX_RETENTION_DAYS) {
    return value;
  }
  throw new ValidationError(field, `must be an integer from 1 to ${MAX_RETENTION_DAYS}, or null (forever)`);
}

/** `createMemoryManager({ retention })`: how long idle sessions are kept, and the sweep. */
export interface RetentionOptions {
  /**
   * Days an idle session (no write) is kept in a tenant without a value of its own; null: forever.
   * Default `MEMORY_RETENTION_DAYS`, else forever. A session's config key `retention_days` wins.
   */
  defaultDays?: number | null;
  /** Per tenant: days (null: forever), over `defaultDays`. Default `MEMORY_RETENTION_TENANT_DAYS`. */
  tenantDays?: Readonly<Record<string, number | null>>;
  /**
   * Milliseconds between sweeps (default `MEMORY_RETENTION_SWEEP_SECONDS` x 1000, else 900000:
   * 15 minutes); 0: no automatic sweep (`sweepRetention()` still sweeps).
   */
  sweepIntervalMs?: number;
  /** Sessions per batch (default 100). */
  batchSize?: number;
  /** The clock idleness is judged by, in ms since the epoch (default Date.now): for tests. */
  now?: () => number;
}

/** The default sweep interval: 15 minutes. */
export const DEFAULT_RETENTION_SWEEP_MS = 15 * 60 * 1000;

/** The policy the options give, over the environment's; a ValidationError names a bad option. */
export function retentionPolicyOf(
  options: RetentionOptions,
  settings: { MEMORY_RETENTION_DAYS?: number; MEMORY_RETENTION_TENANT_DAYS?: Map<string, number | null> },
): RetentionPolicy {
  const defaultDays =
    options.defaultDays === undefined
      ? (settings.MEMORY_RETENTION_DAYS ?? null)
      : checkRetentionDays(options.defaultDays, "retention.defaultDays");
  const tenantDays = new Map(settings.MEMORY_RETENTION_TENANT_DAYS ?? []);
  for (const [tenant, days] of Object.entries(options.tenantDays ?? {})) {
    tenantDays.set(tenant, checkRetentionDays(days, `retention.tenantDays.${tenant}`));
  }
  return { defaultDays, tenantDays };
}
