import { randomUUID } from "node:crypto";
import { parseBufferEntry, storedToBufferEntry, toBufferEntry } from "../messages/entries.js";
import type { RedisConnection } from "../storage/redis-client.js";
import type { AppendedSeq, StoredSeq, TranscriptEntry, TranscriptSnapshot } from "../storage/transcript.js";
import type { SummaryCache } from "../summary/summary-store.js";
import type { SummaryRecord } from "../types.js";
import {
  type AppendOutcome,
  type BufferInfo,
  type BufferState,
  BufferStore,
  type BufferStoreDependencies,
  newestOf,
  outcomeFromState,
  stateFromSnapshot,
} from "./buffer-store.js";
import { fixedPlacement, type KeyPlacement, type SessionRef, sessionFromKey, sessionKeys } from "./keys.js";
import { appendToBuffer } from "./lua/append.js";
import { type Invalidation, invalidateSession } from "./lua/invalidate.js";
import { ackOutbox } from "./lua/outbox-ack.js";
import { appendWithOutbox } from "./lua/outbox-append.js";
import { publishSummaryAndTrim } from "./lua/publish-summary.js";
import { readBuffer } from "./lua/read.js";
import { readBufferOnReplica } from "./lua/read-replica.js";
import { rebuildBuffer } from "./lua/rebuild.js";
import type { BufferTotals } from "./lua/totals.js";
import { readOutbox } from "./outbox.js";

export type { Invalidation } from "./lua/invalidate.js";

/** Prefix of the idempotency keys the outbox gives messages without an `id` (ids are printable). */
const OUTBOX_KEY_PREFIX = "\u0001outbox:";

export interface RedisBufferStoreDependencies extends BufferStoreDependencies {
  redis: RedisConnection;
  /** Prefix of every key (default "mem"); tests give each file its own. */
  keyPrefix?: string;
  /** The prefix of each session's keys (default: `keyPrefix`); with Redis shards, with its epoch. */
  placement?: KeyPlacement;
  /** Seconds the Redis copy of the current summary lives (default 86400, 24 h). */
  summaryCacheTtlSeconds?: number;
  /** Redis behind Sentinel: reads its replicas may serve (default: none, all reads on the primary). */
  replicas?: ReplicaReads | null;
}

/** Reads from Redis replicas (see `readState`). */
export interface ReplicaReads {
  /** The connection (without a breaker: a failing replica costs a primary read, not an outage). */
  connection: RedisConnection;
  /** The primary's run id now: a replica's buffer is proven by it. */
  primaryRunId(): Promise<string>;
  /** Also reads that pass no `minSeq` (MEMORY_READ_FROM_REPLICAS=eventual): they may lag. */
  eventual: boolean;
}

/**
 * The buffer in Redis: a LIST per session plus a HASH of running totals, changed only by Lua
 * scripts so that every write is one atomic round trip. The transcript in PostgreSQL is written
 * first; a missing or gapped buffer is rebuilt from it.
 */
export class RedisBufferStore extends BufferStore implements SummaryCache {
  readonly source = "redis" as const;
  readonly #redis: RedisConnection;
  readonly #keyPrefix: string;
  readonly #placement: KeyPlacement;
  readonly #replicas: ReplicaReads | null;
  readonly #summaryCacheTtlSeconds: number;

  constructor(deps: RedisBufferStoreDependencies) {
    super(deps);
    this.#redis = deps.redis;
    this.#keyPrefix = deps.keyPrefix ?? "mem";
    this.#placement = deps.placement ?? fixedPlacement(this.#keyPrefix);
    this.#replicas = deps.replicas ?? null;
    this.#summaryCacheTtlSeconds = deps.summaryCacheTtlSeconds ?? 24 * 60 * 60;
  }

  forTenant(tenant: string): RedisBufferStore {
    return new RedisBufferStore({
      ...(this.deps as RedisBufferStoreDependencies),
      redis: this.#redis,
      keyPrefix: this.#keyPrefix,
      placement: this.#placement,
      replicas: this.#replicas,
      summaryCacheTtlSeconds: this.#summaryCacheTtlSeconds,
      tenant,
    });
  }

  keys(ref: SessionRef) {
    return sessionKeys(this.#placement(ref), ref);
  }

  async appendEntries(ref: SessionRef, entries: readonly TranscriptEntry[]): Promise<AppendOutcome> {
    const stored = await this.deps.transcript.appendEntries(ref, entries);
    return this.pushEntries(ref, stored.entries, stored.seqs, stored.generation);
  }

  /**
   * Appends entries the transcript already holds (with their seqs, in `generation` of the
   * session) to the Redis buffer.
   */
  async pushEntries(
    ref: SessionRef,
    entries: readonly TranscriptEntry[],
    seqs: StoredSeq[],
    generation: string,
  ): Promise<AppendOutcome> {
    // `seqs` answers `entries` one for one, in order.
    const bufferEntries = entries.map((entry, index) =>
      toBufferEntry(seqs[index]?.seq ?? 0, entry.tokens, entry.tokensEstimated, entry.json),
    );
    const reply = await appendToBuffer(this.#redis, this.keys(ref), {
      now: Date.now(),
      defaults: this.deps.defaults,
      generation,
      entries: bufferEntries,
    });
    if (reply.status === "outbox") {
      // Writes from a database outage wait in the outbox with provisional seqs: put them in the
      // transcript first, then the buffer is rebuilt from it with every seq final.
      await this.replayOutbox(ref);
      return outcomeFromState(seqs, await this.readState(ref, 0));
    }
    if (reply.status === "miss") {
      // Not in Redis as a whole proven copy, another generation's, or a seq missed: the
      // transcript has everything, so the buffer is rebuilt from it.
      return outcomeFromState(seqs, await this.#rebuild(ref, reply.epoch));
    }
    return outcomeFromTotals(seqs, reply.totals);
  }

  async readState(ref: SessionRef, limit?: number, minSeq?: number): Promise<BufferState> {
    const fromReplica = await this.#readReplica(ref, limit, minSeq);
    if (fromReplica) return fromReplica;
    const reply = await readBuffer(this.#redis, this.keys(ref), limit ?? "all");
    if (reply.status === "miss") {
      return newestOf(await this.#rebuild(ref, reply.epoch), limit);
    }
    const { meta, config, entries, pttlMs } = reply;
    const summary = summaryFromHash(reply.summary);
    const coveredSeq = Number(meta.covered_seq ?? 0);
    if (coveredSeq > 0 && (summary === null || summary.last_seq < coveredSeq)) {
      // The summary cache expired or was evicted while the buffer stayed: publish the current one
      // again and answer from the transcript's snapshot, which holds a summary and a buffer that
      // agree (the transcript's summary may be newer than the buffer's trim).
      const snapshot = await this.#snapshot(ref);
      if (snapshot.summary && snapshot.generation) {
        await this.publishSummary(ref, snapshot.summary, snapshot.generation);
      }
      return newestOf(stateFromSnapshot(snapshot, this.deps.defaults, "redis"), limit);
    }
    return {
      messages: entries.map(parseBufferEntry),
      info: this.#info(meta, config, pttlMs),
      summary,
    };
  }

  /**
   * A replica's answer when one may serve the read (it passes `minSeq`, or reads are eventual)
   * and its buffer is proven by the primary's run id, has `minSeq`, and holds its summary; else
   * null, and the primary answers. A replica that fails or is slow costs that primary read only.
   */
  async #readReplica(ref: SessionRef, limit?: number, minSeq?: number): Promise<BufferState | null> {
    const replicas = this.#replicas;
    if (!replicas || (minSeq === undefined && !replicas.eventual)) return null;
    try {
      const reply = await readBufferOnReplica(replicas.connection, this.keys(ref), limit ?? "all", {
        primaryRunId: await replicas.primaryRunId(),
        minSeq: minSeq ?? 0,
      });
      if (reply.status !== "ok") return null;
      const summary = summaryFromHash(reply.summary);
      const coveredSeq = Number(reply.meta.covered_seq ?? 0);
      if (coveredSeq > 0 && (summary === null || summary.last_seq < coveredSeq)) return null;
      return {
        messages: reply.entries.map(parseBufferEntry),
        info: { ...this.#info(reply.meta, reply.config, reply.pttlMs), source: "replica" },
        summary,
      };
    } catch {
      return null;
    }
  }

  async clearRef(ref: SessionRef): Promise<void> {
    await this.deps.transcript.raiseBufferFloor(ref);
    await this.invalidate(ref, "buffer");
  }

  /**
   * Drops what a change in the system of record made wrong (see Invalidation) and moves the
   * session's epoch, so that no rebuild from a snapshot read before the change is installed.
   * Call it after the change is committed; the next access rebuilds from the transcript.
   */
  async invalidate(ref: SessionRef, what: Invalidation): Promise<void> {
    await invalidateSession(this.#redis, this.keys(ref), what);
  }

  /**
   * Accepts messages while the database is away: appends them to the Redis buffer with
   * provisional seqs and to the session's outbox stream, atomically. Returns null when the buffer
   * is not in Redis (there is no seq to continue from), in which case nothing was written.
   */
  async appendToOutbox(ref: SessionRef, entries: readonly TranscriptEntry[]): Promise<AppendOutcome | null> {
    const reply = await appendWithOutbox(this.#redis, this.keys(ref), {
      now: Date.now(),
      defaults: this.deps.defaults,
      writes: entries.map((entry) => ({
        ...entry,
        idempotencyKey: entry.idempotencyKey ?? entry.message.id ?? `${OUTBOX_KEY_PREFIX}${randomUUID()}`,
      })),
    });
    if (reply.status !== "ok") return null;
    // The transcript assigns the seqs when the outbox is replayed: nothing is promised here.
    const seqs: AppendedSeq[] = entries.map(() => ({ seq: null, duplicate: false, provisional: true }));
    return outcomeFromTotals(seqs, reply.totals);
  }

  /**
   * Replays the session's outbox into the transcript, in order and exactly once (each entry's
   * idempotency key makes a repeated replay a no-op), then drops the provisional buffer. Returns
   * how many entries it replayed.
   */
  async replayOutbox(ref: SessionRef, batchSize = 200): Promise<number> {
    const keys = this.keys(ref);
    let replayed = 0;
    for (;;) {
      const records = await readOutbox(this.#redis, keys.outbox, batchSize);
      if (records.length === 0) return replayed;
      // One generation per run of entries (a session erased meanwhile refuses the whole run).
      for (let start = 0, first = records[0]; first !== undefined; first = records[start]) {
        const generation = first.generation;
        let end = start + 1;
        while (records[end]?.generation === generation) end++;
        const run = records.slice(start, end).map((record) => record.entry);
        const stored = await this.deps.transcript.appendToGeneration(ref, generation, run);
        if (stored === null) {
          this.deps.logger.warn(
            { tenant: ref.tenant, session: ref.sessionId, entries: run.length },
            "outbox entries of an erased session dropped",
          );
        } else replayed += run.length;
        start = end;
      }
      await ackOutbox(
        this.#redis,
        keys,
        records.map((record) => record.id),
      );
    }
  }

  /** Sessions with an outbox waiting in Redis (found by key, so also those of other processes). */
  async sessionsWithOutbox(): Promise<SessionRef[]> {
    const keys = await this.#redis.scanKeys(`${this.#keyPrefix}:*:outbox`);
    return keys.map((key) => sessionFromKey(this.#keyPrefix, key)).filter((ref) => ref !== null);
  }

  /**
   * Publishes a committed summary: caches it as current and trims exactly the range it covers
   * from the buffer, in one atomic step. An older version never replaces a newer one, and a
   * version of another `generation` of the session (erased meanwhile) is never cached.
   */
  async publishSummary(ref: SessionRef, summary: SummaryRecord, generation: string): Promise<void> {
    await publishSummaryAndTrim(this.#redis, this.keys(ref), {
      summary,
      generation,
      cacheTtlSeconds: this.#summaryCacheTtlSeconds,
    });
  }

  /** The cached current summary, only while the session's copy is whole, proven and up to date. */
  async readCachedSummary(ref: SessionRef): Promise<SummaryRecord | null> {
    const reply = await readBuffer(this.#redis, this.keys(ref), 0);
    if (reply.status === "miss") return null;
    const summary = summaryFromHash(reply.summary);
    const coveredSeq = Number(reply.meta.covered_seq ?? 0);
    return summary && summary.last_seq >= coveredSeq ? summary : null;
  }

  /** Drops the cached summary and the buffer, which is rebuilt against the new coverage. */
  forgetSummary(ref: SessionRef): Promise<void> {
    return this.invalidate(ref, "cache");
  }

  #snapshot(ref: SessionRef): Promise<TranscriptSnapshot> {
    const { maxMessages, maxTokens } = this.deps.defaults;
    return this.deps.transcript.readSnapshot(ref, { maxMessages, maxTokens });
  }

  /**
   * Rebuilds the session's buffer from a transcript snapshot read after `epoch` was: the script
   * installs it only if no invalidation came in between. Either way the snapshot is the answer.
   */
  async #rebuild(ref: SessionRef, epoch: string): Promise<BufferState> {
    const snapshot = await this.#snapshot(ref);
    const state = stateFromSnapshot(snapshot, this.deps.defaults, "redis");
    if (snapshot.lastSeq === 0 || snapshot.generation === null) return state;
    const overrides = snapshot.configOverrides;
    const status = await rebuildBuffer(this.#redis, this.keys(ref), {
      epoch,
      lastUpdatedMs: snapshot.lastUpdated?.getTime() ?? Date.now(),
      ttlSeconds: overrides.buffer_ttl_seconds ?? this.deps.defaults.ttlSeconds,
      lastSeq: snapshot.lastSeq,
      coveredSeq: snapshot.summary?.last_seq ?? 0,
      generation: snapshot.generation,
      configOverrides: overrides,
      entries: snapshot.messages.map(storedToBufferEntry),
    });
    if (status === "rebuilt" && snapshot.summary) {
      await this.publishSummary(ref, snapshot.summary, snapshot.generation);
    }
    return state;
  }

  #info(meta: Record<string, string>, config: Record<string, string>, pttl: number): BufferInfo {
    const { defaults } = this.deps;
    const lastUpdated = Number(meta.last_updated);
    return {
      message_count: Number(meta.message_count ?? 0),
      total_tokens: Number(meta.total_tokens ?? 0),
      last_updated:
        Number.isFinite(lastUpdated) && lastUpdated > 0 ? new Date(lastUpdated).toISOString() : null,
      ttl_remaining: pttl >= 0 ? Math.ceil(pttl / 1000) : null,
      max_messages: Number(config.max_buffer_messages ?? defaults.maxMessages),
      max_tokens: Number(config.max_buffer_tokens ?? defaults.maxTokens),
      summary_trigger_tokens: Number(config.summary_trigger_tokens ?? defaults.summaryTriggerTokens),
      first_seq: Number(meta.first_seq ?? 0),
      last_seq: Number(meta.last_seq ?? 0),
      estimated_messages: Number(meta.estimated_count ?? 0),
      source: "redis",
    };
  }
}

/** The append outcome a script's totals imply. */
function outcomeFromTotals(seqs: AppendedSeq[], totals: BufferTotals): AppendOutcome {
  const bufferStart = totals.firstSeq > 0 ? totals.firstSeq : totals.lastSeq + 1;
  return {
    seqs,
    bufferTokens: totals.totalTokens,
    summaryTriggerTokens: totals.summaryTriggerTokens,
    backlogMessages: Math.max(0, bufferStart - totals.coveredSeq - 1),
    maxMessages: totals.maxMessages,
  };
}

function summaryFromHash(hash: Record<string, string>): SummaryRecord | null {
  if (hash.version === undefined || hash.summary_text === undefined) return null;
  return {
    version: Number(hash.version),
    summary_text: hash.summary_text,
    first_seq: Number(hash.first_seq),
    last_seq: Number(hash.last_seq),
    tokens: Number(hash.tokens),
    created_at: hash.created_at ?? "",
    metadata: JSON.parse(hash.metadata ?? "{}") as Record<string, unknown>,
  };
}
