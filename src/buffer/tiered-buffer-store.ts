import { randomUUID } from "node:crypto";
import { DatabaseUnavailableError, RedisUnavailableError, StorageUnavailableError } from "../errors.js";
import type { AppendResult, StoredSeq, TranscriptEntry } from "../storage/transcript.js";
import { type AppendOutcome, type BufferState, BufferStore, outcomeFromState } from "./buffer-store.js";
import type { SessionRef } from "./keys.js";
import type { Invalidation, RedisBufferStore } from "./redis-buffer-store.js";
import type { SqlBufferStore } from "./sql-buffer-store.js";

export interface TieredBufferStoreOptions {
  redis: RedisBufferStore;
  sql: SqlBufferStore;
  /**
   * Whether the breaker of the Redis holding `ref` (with shards, its shard's; without `ref`, any)
   * is CLOSED. Reads go to Redis only then: the trial call that closes a breaker must never be a
   * read, since a Redis that came back with old data would answer it before the stale buffers are
   * dropped.
   */
  redisAvailable: (ref?: SessionRef) => boolean;
  /**
   * Whether PostgreSQL's breaker is CLOSED. Writes go to the transcript only then: the probe, not
   * a write, is the trial that closes it, so that no write lands ahead of the outbox it follows.
   */
  databaseAvailable: () => boolean;
  /**
   * Whether Redis keeps what it is given (persistence on, no eviction of the outbox): only then
   * may a write be acknowledged from the outbox while PostgreSQL is away.
   */
  outboxDurable: () => boolean;
}

/** What the tenants' views of one store share. */
interface SharedState {
  /** Stale-buffer drops in progress: reads and writes wait for them. */
  pending: Promise<unknown> | null;
  /**
   * True while an outbox may exist in Redis (this or another process accepted writes while
   * PostgreSQL was away, or one did before this process started): each write then replays its
   * own session's outbox before it goes to the transcript. Cleared by a full replay pass.
   */
  outboxesPossible: boolean;
  /** Bumped by every outbox write, so that a replay pass knows whether it saw them all. */
  outboxWrites: number;
  /**
   * Sessions this process wrote to an outbox that is not replayed yet, with how many entries it
   * appended there: a write to one of them while Redis does not answer cannot go after its outbox,
   * so it is refused rather than reordered. The entries are the outbox depth `/metrics` reports.
   */
  outboxSessions: Map<string, number>;
  /** Replays in progress, by session: one at a time per session. */
  replays: Map<string, Promise<unknown>>;
  /** The background replay pass: running, and whether another is wanted after it. */
  pass: { running: boolean; again: boolean; retry: NodeJS.Timeout | null; stopped: boolean };
  /** The drop of marked buffers a mark scheduled, if one is pending. */
  dropTimer: NodeJS.Timeout | null;
}

/**
 * The buffer with Redis in front of the system of record, degrading to the system of record when
 * Redis does not answer: writes still land in the transcript and are acknowledged, reads are
 * served by the SQL store with the same answers. Sessions whose Redis buffer missed a write are
 * marked stale in PostgreSQL; `dropStaleBuffers` rebuilds them once Redis is back. While
 * PostgreSQL is away, writes are held in a per-session Redis outbox if Redis keeps it durably,
 * and answered 503 otherwise.
 */
export class TieredBufferStore extends BufferStore {
  readonly #redis: RedisBufferStore;
  readonly #sql: SqlBufferStore;
  readonly #options: TieredBufferStoreOptions;
  readonly #shared: SharedState;

  constructor(options: TieredBufferStoreOptions, shared?: SharedState) {
    super({ ...options.sql.dependencies, tenant: options.sql.tenant });
    this.#redis = options.redis;
    this.#sql = options.sql;
    this.#options = options;
    this.#shared = shared ?? {
      pending: null,
      outboxesPossible: true,
      outboxWrites: 0,
      outboxSessions: new Map(),
      replays: new Map(),
      pass: { running: false, again: false, retry: null, stopped: false },
      dropTimer: null,
    };
  }

  /** "redis" while Redis serves reads; "database" while its breaker is open. */
  get source(): "redis" | "database" {
    return this.#options.redisAvailable() ? "redis" : "database";
  }

  forTenant(tenant: string): TieredBufferStore {
    return new TieredBufferStore(
      { ...this.#options, redis: this.#redis.forTenant(tenant), sql: this.#sql.forTenant(tenant) },
      this.#shared,
    );
  }

  /**
   * Called when Redis answers again: drops the buffers that missed writes meanwhile. Reads and
   * writes wait for it, so that this process never serves such a buffer.
   */
  redisRecovered(onError: (error: unknown) => void): void {
    this.#track(this.dropStaleBuffers().catch((error: unknown) => this.#report(onError, error)));
    // Outboxes not replayed yet (a pass failed while Redis was away, or a process stopped before
    // PostgreSQL came back) are replayed now.
    if (this.#shared.outboxesPossible) this.#startPass(onError);
  }

  async appendEntries(ref: SessionRef, entries: readonly TranscriptEntry[]): Promise<AppendOutcome> {
    if (this.#shared.pending) await this.#shared.pending;
    // Every message carries an idempotency key from its first attempt: a commit whose answer was
    // lost (timeout, dropped connection) and its outbox replay then store it once.
    entries = entries.map((entry) =>
      entry.idempotencyKey || entry.message.id ? entry : { ...entry, idempotencyKey: generatedKey() },
    );
    if (!this.#options.databaseAvailable()) return this.#appendToOutbox(ref, entries);
    let stored: AppendResult;
    try {
      // Writes after an outage land after the outage's writes of the same session.
      if (this.#shared.outboxesPossible) await this.#replayBeforeWrite(ref);
      stored = await this.deps.transcript.appendEntries(ref, entries);
    } catch (error) {
      if (!(error instanceof DatabaseUnavailableError)) throw error;
      return this.#appendToOutbox(ref, entries, error);
    }
    try {
      return await this.#redis.pushEntries(ref, stored.entries, stored.seqs, stored.generation);
    } catch (error) {
      return this.#acknowledgeWithoutRedis(ref, stored.seqs, error);
    }
  }

  /**
   * A committed write is acknowledged whatever happens next: its Redis buffer (which may now miss
   * it) is dropped where Redis answers, and marked for a drop where PostgreSQL does, so that no
   * read serves it without the write. Each step is best effort; the outcome comes from the
   * transcript when PostgreSQL answers, else it queues no summarization.
   */
  async #acknowledgeWithoutRedis(ref: SessionRef, seqs: StoredSeq[], error: unknown): Promise<AppendOutcome> {
    if (!(error instanceof RedisUnavailableError || error instanceof DatabaseUnavailableError)) {
      this.deps.logger.error(
        { tenant: ref.tenant, session: ref.sessionId, error: String(error) },
        "the Redis buffer refused a committed write; it will be rebuilt from the transcript",
      );
    }
    // Redis is most likely away: the stale mark below is what makes sure its copy is dropped.
    await this.#redis.invalidate(ref, "cache").catch(() => {});
    await this.markRedisStale(ref).catch((markError: unknown) =>
      this.deps.logger.warn(
        { tenant: ref.tenant, session: ref.sessionId, error: String(markError) },
        "could not mark a session whose Redis buffer missed a committed write",
      ),
    );
    try {
      return outcomeFromState(seqs, await this.#sql.readState(ref, 0));
    } catch {
      const { defaults } = this.deps;
      return {
        seqs,
        bufferTokens: 0,
        summaryTriggerTokens: defaults.summaryTriggerTokens,
        backlogMessages: 0,
        maxMessages: defaults.maxMessages,
      };
    }
  }

  async readState(ref: SessionRef, limit?: number, minSeq?: number): Promise<BufferState> {
    if (this.#shared.pending) await this.#shared.pending;
    try {
      if (!this.#options.redisAvailable(ref)) return await this.#sql.readState(ref, limit);
      try {
        return await this.#redis.readState(ref, limit, minSeq);
      } catch (error) {
        if (!(error instanceof RedisUnavailableError)) {
          this.deps.logger.error(
            { tenant: ref.tenant, session: ref.sessionId, error: String(error) },
            "the Redis buffer could not be read; served from the transcript",
          );
        }
        return await this.#sql.readState(ref, limit);
      }
    } catch (error) {
      if (error instanceof DatabaseUnavailableError) throw unavailable(error);
      throw error;
    }
  }

  async clearRef(ref: SessionRef): Promise<void> {
    try {
      await this.deps.transcript.raiseBufferFloor(ref);
    } catch (error) {
      if (error instanceof DatabaseUnavailableError) throw unavailable(error);
      throw error;
    }
    await this.dropRedisCopy(ref);
  }

  /**
   * Invalidates the session's Redis copy after a change in the system of record; if Redis does
   * not answer, marks it for a drop when it does.
   */
  async dropRedisCopy(ref: SessionRef, what: Invalidation = "buffer"): Promise<void> {
    try {
      await this.#redis.invalidate(ref, what);
    } catch (error) {
      if (!(error instanceof RedisUnavailableError)) throw error;
      await this.markRedisStale(ref);
    }
  }

  /**
   * Marks the session: its Redis copy missed a change and is dropped before Redis serves it again.
   * The marks are dropped when Redis's breaker closes or its connection comes back, and also a
   * second after a mark while Redis answers: one timed-out command need not open the breaker.
   */
  async markRedisStale(ref: SessionRef): Promise<void> {
    await this.deps.transcript.markRedisStale(ref);
    this.#scheduleDrop();
  }

  #scheduleDrop(): void {
    const shared = this.#shared;
    if (shared.dropTimer || shared.pass.stopped) return;
    shared.dropTimer = setTimeout(() => {
      shared.dropTimer = null;
      // While the breaker is not CLOSED, its closing drops the marks (redisRecovered).
      if (!this.#options.redisAvailable()) return;
      this.#track(this.dropStaleBuffers().catch(() => this.#scheduleDrop()));
    }, 1000);
    shared.dropTimer.unref();
  }

  /**
   * Erases the session's Redis side around `eraseRecords` (the system of record's erase):
   * everything first, the outbox included, so that while Redis does not answer nothing is erased
   * (RedisUnavailableError); then once more after the records are gone, which refuses any rebuild
   * from a snapshot read before. Should Redis fail in between, the session is marked and its
   * Redis copy dropped when Redis answers again.
   */
  async eraseSession(ref: SessionRef, eraseRecords: () => Promise<void>): Promise<void> {
    await this.#redis.invalidate(ref, "session");
    await eraseRecords();
    await this.dropRedisCopy(ref, "session");
  }

  /**
   * Drops the Redis buffers of sessions that missed writes while Redis was away, so that the next
   * access rebuilds them from the transcript. Returns how many it dropped.
   */
  async dropStaleBuffers(batchSize = 500): Promise<number> {
    let dropped = 0;
    // With shards, one may still be away: its sessions keep their marks, the others' are dropped.
    const failed: SessionRef[] = [];
    let lastError: unknown;
    try {
      for (;;) {
        const refs = await this.deps.transcript.takeRedisStale(batchSize);
        for (const ref of refs) {
          try {
            await this.#redis.invalidate(ref, "cache");
            dropped++;
          } catch (error) {
            failed.push(ref);
            lastError = error;
          }
        }
        if (refs.length < batchSize) break;
      }
    } finally {
      // Put back for the next recovery: Redis (or that shard) went away again.
      for (const ref of failed) await this.deps.transcript.markRedisStale(ref);
    }
    if (failed.length > 0) throw lastError;
    return dropped;
  }

  /**
   * While PostgreSQL is away, writes go to Redis: the buffer plus an outbox replayed later, only
   * where Redis keeps them durably. Otherwise, and when Redis cannot take them (down too, or the
   * session's buffer is not in Redis), the write fails with StorageUnavailableError: never a
   * silent success.
   */
  async #appendToOutbox(
    ref: SessionRef,
    entries: readonly TranscriptEntry[],
    cause?: DatabaseUnavailableError,
  ): Promise<AppendOutcome> {
    const why = cause ? cause.message : "PostgreSQL is unavailable (its circuit breaker is open)";
    if (!this.#options.outboxDurable()) {
      throw new StorageUnavailableError(
        `${why}, and Redis would not keep the write durably (it may evict it or lose it on a restart): retry with the same id`,
        { cause },
      );
    }
    this.#shared.outboxesPossible = true;
    this.#shared.outboxWrites++;
    try {
      const outcome = await this.#redis.appendToOutbox(ref, entries);
      if (outcome) {
        const key = sessionKey(ref);
        this.#shared.outboxSessions.set(key, (this.#shared.outboxSessions.get(key) ?? 0) + entries.length);
        return outcome;
      }
    } catch (error) {
      if (!(error instanceof RedisUnavailableError)) throw error;
      throw new StorageUnavailableError(
        `neither PostgreSQL nor Redis can store the write: ${error.message}`,
        {
          cause: error,
        },
      );
    }
    throw new StorageUnavailableError(
      `${why}, and the session's buffer is not in Redis to continue from: retry with the same id`,
      { cause },
    );
  }

  /**
   * Replays the session's outbox before a write goes to the transcript. A Redis that does not
   * answer cannot be replayed from: the write goes on (Redis being down must not fail writes),
   * and the outbox is replayed when Redis is back.
   */
  async #replayBeforeWrite(ref: SessionRef): Promise<void> {
    try {
      await this.replaySession(ref);
    } catch (error) {
      if (!(error instanceof RedisUnavailableError)) throw error;
      if (this.#shared.outboxSessions.has(sessionKey(ref))) {
        throw new StorageUnavailableError(
          "the session's writes from the PostgreSQL outage wait in Redis, which does not answer: a new write cannot go after them yet; retry with the same id",
          { cause: error },
        );
      }
    }
  }

  /** Replays one session's outbox into the transcript (one replay per session at a time). */
  async replaySession(ref: SessionRef): Promise<number> {
    const key = sessionKey(ref);
    for (;;) {
      const running = this.#shared.replays.get(key);
      if (!running) break;
      // Only waiting for it to settle: its own caller handles its failure.
      await running.catch(() => {});
    }
    const replay = this.#redis.replayOutbox(ref);
    this.#shared.replays.set(key, replay);
    try {
      const replayed = await replay;
      this.#shared.outboxSessions.delete(key);
      return replayed;
    } finally {
      this.#shared.replays.delete(key);
    }
  }

  /**
   * Replays every session's outbox, one session at a time so that requests keep their share of
   * the database; returns how many messages it replayed. Once a pass finds nothing new, writes
   * stop checking for outboxes.
   */
  async replayOutboxes(): Promise<number> {
    const writesBefore = this.#shared.outboxWrites;
    let replayed = 0;
    for (const ref of await this.#redis.sessionsWithOutbox()) {
      replayed += await this.replaySession(ref);
      await new Promise((resolve) => setImmediate(resolve));
    }
    if (this.#shared.outboxWrites === writesBefore && this.#options.databaseAvailable()) {
      this.#shared.outboxesPossible = false;
      // Every outbox was replayed: one this process still counts was erased with its session.
      this.#shared.outboxSessions.clear();
    }
    return replayed;
  }

  /**
   * Entries this process appended to Redis outboxes that are not replayed into the transcript
   * yet: acknowledged writes that PostgreSQL does not have. Counted in memory, so scraping is free;
   * other processes' outboxes are theirs to count.
   */
  outboxBacklog(): number {
    let entries = 0;
    for (const count of this.#shared.outboxSessions.values()) entries += count;
    return entries;
  }

  /**
   * Called when PostgreSQL answers again: replays the outboxes in the background. A write to a
   * session replays that session's outbox first, so nobody waits for the whole pass.
   */
  databaseRecovered(onError: (error: unknown) => void): void {
    this.#shared.outboxesPossible = true;
    this.#startPass(onError);
  }

  /** One background replay pass at a time; one that fails is tried again a second later. */
  #startPass(onError: (error: unknown) => void): void {
    const pass = this.#shared.pass;
    if (pass.stopped) return;
    if (pass.running) {
      pass.again = true;
      return;
    }
    pass.running = true;
    void this.replayOutboxes()
      .then(
        () => false,
        (error: unknown) => {
          this.#report(onError, error);
          return true;
        },
      )
      .then((failed) => {
        pass.running = false;
        if (pass.again) {
          pass.again = false;
          this.#startPass(onError);
        } else if (failed && !pass.stopped) {
          // An outbox must not wait for the next outage to be replayed: try again shortly.
          pass.retry = setTimeout(() => this.#startPass(onError), 1000);
          pass.retry.unref();
        }
      });
  }

  /** Recovery work still running when the manager closes fails on closed connections: not news. */
  #report(onError: (error: unknown) => void, error: unknown): void {
    if (!this.#shared.pass.stopped) onError(error);
  }

  /** Stops the background replay passes (the manager is closing). */
  stop(): void {
    this.#shared.pass.stopped = true;
    if (this.#shared.pass.retry) clearTimeout(this.#shared.pass.retry);
    if (this.#shared.dropTimer) clearTimeout(this.#shared.dropTimer);
  }

  #track(work: Promise<unknown>): void {
    const pending = Promise.all([this.#shared.pending, work]);
    this.#shared.pending = pending;
    void pending.finally(() => {
      if (this.#shared.pending === pending) this.#shared.pending = null;
    });
  }
}

function sessionKey(ref: SessionRef): string {
  return `${ref.tenant}\u0000${ref.sessionId}`;
}

/** Keys for messages without an `id`; the prefix cannot occur in ids, which are printable. */
function generatedKey(): string {
  return `\u0001${randomUUID()}`;
}

function unavailable(cause: DatabaseUnavailableError): StorageUnavailableError {
  return new StorageUnavailableError(`no tier can serve the request: ${cause.message}`, { cause });
}
