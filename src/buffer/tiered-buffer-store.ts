import { randomUUID } from "node:crypto";
import { DatabaseUnavailableError, RedisUnavailableError, StorageUnavailableError } from "../errors.js";
import type { AppendedSeq, TranscriptEntry } from "../storage/transcript.js";
import { type AppendOutcome, type BufferState, BufferStore, outcomeFromState } from "./buffer-store.js";
import type { SessionRef } from "./keys.js";
import type { RedisBufferStore } from "./redis-buffer-store.js";
import type { SqlBufferStore } from "./sql-buffer-store.js";

/**
 * The buffer with Redis in front of the system of record, degrading to the system of record when
 * Redis does not answer: writes still land in the transcript and are acknowledged, reads are
 * served by the SQL store with the same answers. Sessions whose Redis buffer missed a write are
 * marked stale in PostgreSQL; `dropStaleBuffers` rebuilds them once Redis is back.
 */
export class TieredBufferStore extends BufferStore {
  readonly #redis: RedisBufferStore;
  readonly #sql: SqlBufferStore;
  readonly #redisAvailable: () => boolean;
  readonly #recovery: { pending: Promise<unknown> | null };

  /**
   * `redisAvailable` tells whether Redis's breaker is CLOSED. Reads go to Redis only then: the
   * trial call that closes a breaker must never be a read, since a Redis that came back with old
   * data would answer it before the stale buffers are dropped. Writes may be trials (their seq
   * check finds a stale buffer) and the recovery probe is one.
   */
  constructor(
    redis: RedisBufferStore,
    sql: SqlBufferStore,
    redisAvailable: () => boolean,
    recovery: { pending: Promise<unknown> | null } = { pending: null },
  ) {
    super({ ...sql.dependencies, tenant: sql.tenant });
    this.#redis = redis;
    this.#sql = sql;
    this.#redisAvailable = redisAvailable;
    this.#recovery = recovery;
  }

  /** "redis" while Redis serves reads; "database" while its breaker is open. */
  get source(): "redis" | "database" {
    return this.#redisAvailable() ? "redis" : "database";
  }

  forTenant(tenant: string): TieredBufferStore {
    return new TieredBufferStore(
      this.#redis.forTenant(tenant),
      this.#sql.forTenant(tenant),
      this.#redisAvailable,
      this.#recovery,
    );
  }

  /**
   * Called when Redis answers again: drops the buffers that missed writes meanwhile. Reads and
   * writes wait for it, so that this process never serves such a buffer.
   */
  redisRecovered(onError: (error: unknown) => void): void {
    this.#track(this.dropStaleBuffers().catch(onError));
  }

  async appendEntries(ref: SessionRef, entries: readonly TranscriptEntry[]): Promise<AppendOutcome> {
    if (this.#recovery.pending) await this.#recovery.pending;
    // Every message carries an idempotency key from its first attempt: a commit whose answer was
    // lost (timeout, dropped connection) and its outbox replay then store it once.
    entries = entries.map((entry) =>
      entry.idempotencyKey || entry.message.id ? entry : { ...entry, idempotencyKey: generatedKey() },
    );
    let seqs: AppendedSeq[];
    try {
      seqs = await this.deps.transcript.append(ref, entries);
    } catch (error) {
      if (!(error instanceof DatabaseUnavailableError)) throw error;
      return this.#appendToOutbox(ref, entries, error);
    }
    try {
      return await this.#redis.pushEntries(ref, entries, seqs);
    } catch (error) {
      if (!(error instanceof RedisUnavailableError)) throw error;
      // Stored and acknowledged all the same; the Redis buffer is rebuilt when Redis answers.
      await this.deps.transcript.markRedisStale(ref);
      return outcomeFromState(seqs, await this.#sql.readState(ref, 0));
    }
  }

  async readState(ref: SessionRef, limit?: number): Promise<BufferState> {
    if (this.#recovery.pending) await this.#recovery.pending;
    try {
      if (!this.#redisAvailable()) return await this.#sql.readState(ref, limit);
      try {
        return await this.#redis.readState(ref, limit);
      } catch (error) {
        if (error instanceof RedisUnavailableError) return await this.#sql.readState(ref, limit);
        throw error;
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

  /** Drops the session's Redis buffer; if Redis does not answer, marks it for a later drop. */
  async dropRedisCopy(ref: SessionRef): Promise<void> {
    try {
      await this.#redis.dropBuffer(ref);
    } catch (error) {
      if (!(error instanceof RedisUnavailableError)) throw error;
      await this.deps.transcript.markRedisStale(ref);
    }
  }

  /**
   * Drops the Redis buffers of sessions that missed writes while Redis was away, so that the next
   * access rebuilds them from the transcript. Returns how many it dropped.
   */
  async dropStaleBuffers(batchSize = 500): Promise<number> {
    let dropped = 0;
    for (;;) {
      const refs = await this.deps.transcript.takeRedisStale(batchSize);
      for (const [index, ref] of refs.entries()) {
        try {
          await this.#redis.dropBuffer(ref);
          dropped++;
        } catch (error) {
          // Redis went away again: put the marks back for the next recovery.
          for (const rest of refs.slice(index)) await this.deps.transcript.markRedisStale(rest);
          throw error;
        }
      }
      if (refs.length < batchSize) return dropped;
    }
  }

  /**
   * While PostgreSQL is away, writes go to Redis: the buffer plus an outbox replayed later. When
   * Redis cannot take them either (down too, or the session's buffer is not in Redis), the write
   * fails with StorageUnavailableError: never a silent success.
   */
  async #appendToOutbox(
    ref: SessionRef,
    entries: readonly TranscriptEntry[],
    cause: DatabaseUnavailableError,
  ): Promise<AppendOutcome> {
    try {
      const outcome = await this.#redis.appendToOutbox(ref, entries);
      if (outcome) return outcome;
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
      `PostgreSQL is unavailable and the session's buffer is not in Redis to continue from: ${cause.message}`,
      { cause },
    );
  }

  /** Replays every session's outbox into the transcript; returns how many messages it replayed. */
  async replayOutboxes(): Promise<number> {
    let replayed = 0;
    for (const ref of await this.#redis.sessionsWithOutbox()) replayed += await this.#redis.replayOutbox(ref);
    return replayed;
  }

  /**
   * Called when PostgreSQL answers again: replays the outboxes. Writes wait for it, so that the
   * outbox's messages take their places in the transcript before newer ones.
   */
  databaseRecovered(onError: (error: unknown) => void): void {
    this.#track(this.replayOutboxes().catch(onError));
  }

  #track(work: Promise<unknown>): void {
    const pending = Promise.all([this.#recovery.pending, work]);
    this.#recovery.pending = pending;
    void pending.finally(() => {
      if (this.#recovery.pending === pending) this.#recovery.pending = null;
    });
  }
}

/** Keys for messages without an `id`; the prefix cannot occur in ids, which are printable. */
function generatedKey(): string {
  return `\u0001${randomUUID()}`;
}

function unavailable(cause: DatabaseUnavailableError): StorageUnavailableError {
  return new StorageUnavailableError(`no tier can serve the request: ${cause.message}`, { cause });
}
