import type { AppendOutcome, BufferInfo, BufferStore } from "../buffer/buffer-store.js";
import type { SessionRef } from "../buffer/keys.js";
import type { RedisBufferStore } from "../buffer/redis-buffer-store.js";
import type { TieredBufferStore } from "../buffer/tiered-buffer-store.js";
import {
  DatabaseUnavailableError,
  RedisUnavailableError,
  StorageUnavailableError,
  ValidationError,
} from "../errors.js";
import type { ConsistencyCheck } from "../legacy/consistency.js";
import type { LegacyMigration } from "../legacy/migration.js";
import { type LegacyMirror, type LegacyWrite, type QueueDepth, toLegacyMessages } from "../legacy/mirror.js";
import { type MessageLimits, validateSessionId, validateTenant } from "../messages/validate.js";
import type {
  CircuitBreaker,
  CircuitBreakerSnapshot,
  ComponentStatus,
  HealthModel,
  HealthMonitor,
  HealthSnapshot,
  HealthView,
} from "../resilience/index.js";

export type { RedisStats } from "../storage/redis-stats.js";

import { type ContextOptions, ContextOptionsSchema } from "../schemas/context-options.js";
import type { ImportTotals } from "../schemas/export.js";
import { parseOrThrow } from "../schemas/issues.js";
import type { MemoryContext } from "../schemas/memory-context.js";
import {
  type EraseUserResult,
  type ListSessionsOptions,
  ListSessionsOptionsSchema,
  METADATA_MAX_BYTES,
  type SearchOptions,
  SearchOptionsSchema,
  type SearchResults,
  type SessionInfo,
  type SessionPage,
  type SessionPatch,
  SessionPatchSchema,
  type TranscriptOptions,
  TranscriptOptionsSchema,
  type TranscriptPage,
  UserIdSchema,
} from "../schemas/sessions.js";
import { SwisperContextSchema } from "../schemas/swisper-context.js";
import type { SessionCatalog } from "../sessions/catalog.js";
import { exportLines } from "../sessions/export.js";
import { type ImportTarget, importLines } from "../sessions/import.js";
import type { RetentionSweeper, RetentionSweepResult } from "../sessions/retention.js";
import { searchMessages } from "../sessions/search.js";
import type { Database } from "../storage/database.js";
import type { RedisConnection } from "../storage/redis-client.js";
import { type RedisStats, readRedisStats } from "../storage/redis-stats.js";
import type { EraseGuard, SessionRecords } from "../storage/session-records.js";
import type { AppendedSeq } from "../storage/transcript.js";
import type { SummaryStats, SummaryStore } from "../summary/summary-store.js";
import type { TokenCounter } from "../tokens/index.js";
import type { ChatMessage, SwisperContext } from "../types.js";
import { packContext } from "./context-packing.js";
import {
  configOverrides,
  resolveSessionConfig,
  resolveStoredConfig,
  type SessionConfig,
  type SessionConfigRecords,
  validateConfigKeys,
} from "./session-config.js";
import type { SummarizationScheduler } from "./summarization-scheduler.js";

export type {
  ContextOptions,
  EraseUserResult,
  ImportTotals,
  ListSessionsOptions,
  MemoryContext,
  RetentionSweepResult,
  SearchOptions,
  SearchResults,
  SessionInfo,
  SessionPage,
  SessionPatch,
  TranscriptOptions,
  TranscriptPage,
};

/** Options of a write. */
export interface AddMessagesOptions {
  /**
   * The session's user: recorded on the session when it has none yet (to change it, use
   * updateSession). Not recorded for a write held in the Redis outbox while PostgreSQL is away.
   */
  user_id?: string;
}

/** What `importMessages` answers. */
export interface ImportedMessages {
  seqs: AppendedSeq[];
  /** The session reached its summary trigger: call `summarizeSession` once the load is done. */
  needs_summary: boolean;
}

/**
 * Whether a write leaves the session at its summary trigger: the buffer's tokens, or a backlog
 * (messages the caps pushed out, not yet summarized) of half the backpressure's bound. Half, so
 * that the job has the other half of the bound's writes to finish in before a write waits for it:
 * asked for at the bound itself, a session of short messages made every 30th write wait for a
 * whole summarization step (`npm run bench`: write p95 2.6-3.4x its floor, against 1.6-1.7x).
 */
function needsSummary(outcome: AppendOutcome): boolean {
  return (
    outcome.bufferTokens >= outcome.summaryTriggerTokens || outcome.backlogMessages * 2 >= outcome.maxMessages
  );
}

/** Options of an export. */
export interface ExportSessionsOptions {
  /** Only this session (default: every session of the tenant, in session id order). */
  session_id?: string;
  /** Called after each session's lines, with its message count (progress). */
  onSession?: (sessionId: string, messages: number) => void;
}

/** Options of an import. */
export interface ImportSessionsOptions {
  /**
   * Import each session into the tenant its line names (an operator's restore of several
   * tenants). Default false: every session goes to this manager's tenant.
   */
  keepTenants?: boolean;
  /** Called once a session is done, with its message count and whether it was stored. */
  onSession?: (sessionId: string, messages: number, outcome: "imported" | "unchanged") => void;
}

/** spec: `get_memory_stats`. */
export interface MemoryStats {
  session_id: string;
  buffer: BufferInfo;
  summary: SummaryStats;
  redis: RedisStats;
  session_config: SessionConfig;
  token_cache: ReturnType<TokenCounter["cacheStats"]>;
  available: boolean;
  /** Every component's state and its breaker. */
  health: HealthSnapshot;
}

/** The Memory Manager API specification's circuit breakers, one per dependency: `memory.circuitBreaker.redis.getState()`. */
export interface ManagerBreakers {
  redis: CircuitBreaker;
  postgres: CircuitBreaker;
  summarizer: CircuitBreaker;
}

/** Everything the managers of all tenants share: connections, stores, counters. */
export interface ManagerResources {
  db: Database;
  redis: RedisConnection | null;
  breakers: ManagerBreakers;
  /** The one health model, over the breakers of the components in use. */
  health: HealthModel;
  tokenCounter: TokenCounter;
  /** A TokenCounter for another model, for budgets counted in that model's tokens. */
  counterFor(model: string): TokenCounter;
  bufferStore: BufferStore;
  redisBufferStore: RedisBufferStore | null;
  tieredBufferStore: TieredBufferStore | null;
  summaryStore: SummaryStore;
  configs: SessionConfigRecords;
  records: SessionRecords;
  /** The sessions as data: listing. */
  sessions: SessionCatalog;
  defaults: Readonly<SessionConfig>;
  /** Largest serialized SwisperContext accepted, in bytes. */
  maxContextBytes: number;
  /** Largest message accepted, by writes and by imports. */
  messageLimits: MessageLimits;
  /** Runs summarization jobs off the request path. */
  scheduler: SummarizationScheduler;
  /** Migration phase `coexistence`: mirrors acknowledged writes into the legacy store; else null. */
  legacyMirror?: LegacyMirror | null;
  /** Migration phase `gradual`: compares a sample of read sessions with the legacy store; else null. */
  consistency?: ConsistencyCheck | null;
  /** The migration from the legacy store: status, import and verify jobs (HTTP); null if not built. */
  legacyMigration?: LegacyMigration | null;
  /** Search mode words: the text search configuration when the caller names none (default simple). */
  searchLanguage?: string;
  /** Erases sessions idle past their retention; null where none was built. */
  retention?: RetentionSweeper | null;
  /** Closes what the factory created (not what the caller passed in). */
  close(): Promise<void>;
}

/**
 * The Memory Manager API specification's MemoryManager: one entry point for a tenant's session memory. Writes go to the
 * transcript and the buffer; reads come from Redis in one round trip, or from PostgreSQL when
 * there is no Redis.
 */
export class MemoryManager {
  readonly tenant: string;
  readonly tokenCounter: TokenCounter;
  readonly bufferStore: BufferStore;
  readonly summaryStore: SummaryStore;
  /** Circuit breakers of Redis, PostgreSQL and the summarizer (spec: `redis_circuit_breaker`). */
  readonly circuitBreaker: ManagerBreakers;
  /** Every component's state, last error and last transition. */
  readonly health: HealthMonitor;
  readonly #resources: ManagerResources;

  constructor(resources: ManagerResources, tenant = "default") {
    this.#resources = resources;
    this.circuitBreaker = resources.breakers;
    this.health = resources.health.monitor;
    this.tenant = validateTenant(tenant);
    this.tokenCounter = resources.tokenCounter;
    this.bufferStore = resources.bufferStore.forTenant(this.tenant);
    this.summaryStore = resources.summaryStore.forTenant(this.tenant);
  }

  /** The same memory, seen as another tenant (shares every connection). */
  forTenant(tenant: string): MemoryManager {
    return new MemoryManager(this.#resources, tenant);
  }

  /**
   * The same memory, whose writes are not mirrored into the legacy store whatever the phase: what
   * the legacy import writes through (mirrored back, every imported session would double).
   */
  withoutLegacyMirror(): MemoryManager {
    return new MemoryManager({ ...this.#resources, legacyMirror: null, consistency: null }, this.tenant);
  }

  /** The migration from the legacy session store (phase, status, import and verify jobs). */
  get legacyMigration(): LegacyMigration | null {
    return this.#resources.legacyMigration ?? null;
  }

  /**
   * Adds one message (spec: `add_message`); resolves true once it is in the transcript. When the
   * buffer reaches its trigger, a summarization job is queued; the write does not wait for it.
   */
  async addMessage(sessionId: string, message: ChatMessage): Promise<boolean> {
    await this.#append(sessionId, message);
    return true;
  }

  /**
   * Adds one message, or a batch of 1 to 1000 in order (the HTTP body's two forms), one round trip
   * per tier; returns where each landed. Errors name the field as it was sent: `message.role` for
   * one message, `messages[3].role` in a batch.
   */
  async addMessages(
    sessionId: string,
    messages: ChatMessage | readonly ChatMessage[],
    options: AddMessagesOptions = {},
  ): Promise<AppendedSeq[]> {
    return this.#append(sessionId, messages, options);
  }

  /**
   * Bulk load (imports): `addMessages` without starting the session's summarization and without
   * waiting for it (backpressure), so that a load runs at the transcript's pace, not the
   * summarizer's. `needs_summary` is true when the session has reached its summary trigger: call
   * `summarizeSession` for it once the load is done. Until then its context is the buffer alone.
   */
  async importMessages(
    sessionId: string,
    messages: readonly ChatMessage[],
    options: AddMessagesOptions = {},
  ): Promise<ImportedMessages> {
    const outcome = await this.#store(sessionId, messages, options);
    return { seqs: outcome.seqs, needs_summary: needsSummary(outcome) };
  }

  /**
   * Runs the session's summarization now, off the request path, and resolves once it has caught
   * up (true) or stopped progressing (false: the summarizer is failing; the next write asks again).
   */
  async summarizeSession(sessionId: string): Promise<boolean> {
    const ref = this.#ref(sessionId);
    this.#resources.scheduler.request(ref);
    return (await this.#resources.scheduler.settled(ref)) === "caught_up";
  }

  async #append(
    sessionId: string,
    messages: ChatMessage | readonly ChatMessage[],
    options: AddMessagesOptions = {},
  ): Promise<AppendedSeq[]> {
    const outcome = await this.#store(sessionId, messages, options);
    const scheduler = this.#resources.scheduler;
    const ref = { tenant: this.tenant, sessionId };
    if (needsSummary(outcome)) scheduler.request(ref);
    if (outcome.backlogMessages > outcome.maxMessages) {
      // Backpressure: more than a buffer's worth of messages is in neither the buffer nor a
      // summary, so the context would skip them. The write is committed; its acknowledgement
      // waits (bounded) for the session's summarization step.
      await scheduler.hold(ref);
    } else if (scheduler.running > 0 && this.#resources.db.kind === "pglite") {
      // The embedded database answers without I/O: a caller writing in a loop would keep the event
      // loop in microtasks, and the summarizer's answers (a worker message) would never arrive.
      await new Promise((resolve) => setImmediate(resolve));
    }
    return outcome.seqs;
  }

  /** The write itself: the buffer store's tiers, then the legacy store in a migration phase. */
  async #store(
    sessionId: string,
    messages: ChatMessage | readonly ChatMessage[],
    options: AddMessagesOptions,
  ): Promise<AppendOutcome> {
    const userId =
      options.user_id === undefined ? undefined : parseOrThrow(UserIdSchema, options.user_id, "user_id");
    const outcome = await this.bufferStore.addMessages(sessionId, messages, userId);
    if (this.#resources.legacyMirror) {
      // A message sent again with its id was stored once: the legacy store gets it once too.
      const list = Array.isArray(messages) ? messages : [messages as ChatMessage];
      const fresh = list.filter((_, index) => outcome.seqs[index]?.duplicate !== true);
      await this.#mirror(sessionId, { kind: "append", messages: toLegacyMessages(fresh) });
    }
    return outcome;
  }

  /** Resolves when no summarization job is queued, running or waiting to retry. */
  waitForIdle(): Promise<void> {
    return this.#resources.scheduler.waitForIdle();
  }

  /** The session's context (spec: `get_context`); with `max_tokens`, also a packed message list. */
  async getContext(sessionId: string, options: ContextOptions = {}): Promise<MemoryContext> {
    const ref = this.#ref(sessionId);
    const checked = parseOrThrow(ContextOptionsSchema, options, "", "options");
    const budget = this.#budget(checked);
    const state = await this.bufferStore.readState(ref, undefined, checked.min_seq);
    const summaryTokens = state.summary?.tokens ?? 0;
    // Phase gradual: a sample of reads is compared with the legacy store, after this answers.
    const { consistency, legacyMirror } = this.#resources;
    if (consistency && legacyMirror?.tenant === this.tenant) consistency.sample(this, ref.sessionId);
    const context: MemoryContext = {
      session_id: ref.sessionId,
      buffer_messages: state.messages,
      current_summary: state.summary?.summary_text ?? null,
      summary: state.summary,
      buffer_info: state.info,
      total_tokens: state.info.total_tokens + summaryTokens,
      message_count: state.info.message_count,
    };
    if (budget) {
      const counter = this.#resources.counterFor(budget.model);
      const sameModel = counter.encoding === this.tokenCounter.encoding;
      const packed = packContext(state.summary, state.messages, budget.maxTokens, counter, sameModel);
      context.messages = packed.messages;
      context.context_tokens = packed.tokens;
    }
    return context;
  }

  /** Saves the orchestrator's state (spec: `save_context`); it never enters the buffer. */
  async saveContext(sessionId: string, context: SwisperContext): Promise<boolean> {
    const ref = this.#ref(sessionId);
    const checked = parseOrThrow(SwisperContextSchema, context, "context");
    if (checked.session_id !== undefined && checked.session_id !== ref.sessionId) {
      throw new ValidationError("context.session_id", "must equal the session id it is saved under");
    }
    let json: string;
    try {
      json = JSON.stringify({ ...checked, session_id: ref.sessionId });
    } catch {
      throw new ValidationError("context", "must be representable as JSON (no BigInt, no cycles)");
    }
    if (Buffer.byteLength(json, "utf8") > this.#resources.maxContextBytes) {
      throw new ValidationError("context", `is larger than ${this.#resources.maxContextBytes} bytes`);
    }
    await this.#resources.records.saveContext(ref, json);
    // Parsed again only when a mirror wants it: a context may be a megabyte.
    if (this.#resources.legacyMirror) {
      await this.#mirror(ref.sessionId, {
        kind: "context",
        context: JSON.parse(json) as Record<string, unknown>,
      });
    }
    return true;
  }

  /** The last saved SwisperContext, or null. */
  async loadContext(sessionId: string): Promise<SwisperContext | null> {
    return this.#resources.records.loadContext(this.#ref(sessionId));
  }

  /**
   * Sets per-session settings (spec: `set_session_config`); keys left out keep their values.
   * Persisted in PostgreSQL and seen by every process. Returns the whole config.
   */
  async setSessionConfig(sessionId: string, config: Partial<SessionConfig>): Promise<SessionConfig> {
    const ref = this.#ref(sessionId);
    const keys = validateConfigKeys(config);
    const stored = await this.#resources.configs.read(ref);
    const set = { ...stored.set, ...keys };
    const next = resolveSessionConfig(set, this.#resources.defaults);
    await this.#resources.configs.write(ref, {
      overrides: configOverrides(next, this.#resources.defaults),
      set,
    });
    // The caps may have changed: the Redis buffer is rebuilt under the new config.
    await this.#resources.tieredBufferStore?.dropRedisCopy(ref);
    return next;
  }

  /** The session's whole config: its overrides over the defaults. */
  async getSessionConfig(sessionId: string): Promise<SessionConfig> {
    const { overrides } = await this.#resources.configs.read(this.#ref(sessionId));
    return resolveStoredConfig(this.#resources.defaults, overrides);
  }

  /** Buffer, summary, Redis and config figures for one session (spec: `get_memory_stats`). */
  async getMemoryStats(sessionId: string): Promise<MemoryStats> {
    const [buffer, summary, redis, sessionConfig] = await Promise.all([
      this.bufferStore.getBufferInfo(sessionId),
      this.summaryStore.getSummaryStats(sessionId),
      this.redisStats(),
      this.getSessionConfig(sessionId),
    ]);
    return {
      session_id: sessionId,
      buffer,
      summary,
      redis,
      session_config: sessionConfig,
      token_cache: this.tokenCounter.cacheStats(),
      available: this.isAvailable(),
      health: this.health.snapshot(),
    };
  }

  /**
   * Erases the session everywhere: transcript, summaries, config, snapshot, Redis keys and outbox.
   * While Redis does not answer this fails (StorageUnavailableError) and erases nothing, since a
   * Redis copy left behind would come back; nothing written before it resolves is visible after.
   */
  async clearSessionMemory(sessionId: string): Promise<boolean> {
    await this.eraseSessionIf(sessionId);
    return true;
  }

  /**
   * Erases the session as `clearSessionMemory` does when `guard` (asked under the session's row
   * lock) allows it; returns whether it erased. What the retention sweeper erases through, so that
   * a session written since the sweep read it is kept.
   */
  async eraseSessionIf(sessionId: string, guard?: EraseGuard): Promise<boolean> {
    const ref = this.#ref(sessionId);
    const { records, tieredBufferStore } = this.#resources;
    let erased = false;
    const eraseRecords = async () => {
      erased = await records.erase(ref, guard);
    };
    try {
      if (tieredBufferStore) await tieredBufferStore.eraseSession(ref, eraseRecords);
      else await eraseRecords();
    } catch (error) {
      if (error instanceof RedisUnavailableError || error instanceof DatabaseUnavailableError) {
        throw new StorageUnavailableError(`cannot erase the session now: ${error.message}`, { cause: error });
      }
      throw error;
    }
    if (erased) await this.#mirror(ref.sessionId, { kind: "erase" });
    return erased;
  }

  /**
   * One page of the tenant's sessions (a keyset page: `next_cursor` continues it, null on the last
   * page). `created_desc` pages never skip or repeat a session while writes go on; in
   * `updated_desc` order none repeats, and one updated after the listing began moves to the front
   * (a later listing sees it). A session is listed from its first message on.
   */
  async listSessions(options: ListSessionsOptions = {}): Promise<SessionPage> {
    const checked = parseOrThrow(ListSessionsOptionsSchema, options, "", "options");
    return this.#resources.sessions.list(this.tenant, checked);
  }

  /**
   * The session's whole transcript, a page at a time: the messages after `after_seq` (default
   * 0), in seq order, at most `limit` (1-1000, default 100), each with its seq, tokens and
   * `summarized` (the current summary covers it). `next_after_seq` continues; null on the last page.
   */
  async getTranscript(sessionId: string, options: TranscriptOptions = {}): Promise<TranscriptPage> {
    const ref = this.#ref(sessionId);
    const { after_seq: afterSeq, limit } = parseOrThrow(TranscriptOptionsSchema, options, "", "options");
    return this.#resources.sessions.transcript(this.tenant, ref.sessionId, afterSeq, limit);
  }

  /**
   * Searches the tenant's messages. Mode `words` (default): PostgreSQL text search (`language`,
   * default `searchLanguage`, else `simple`: words of any language, no stemming), `q` in
   * web-search syntax (all words; "a phrase"; `or`; -word), most relevant first. Mode
   * `substring`: messages containing `q` as typed, case-insensitively (trigram index where
   * pg_trgm is installed, else a bounded scan: `scan_limited`). Optionally only one session's,
   * one user's sessions' or one role's messages; each hit with an HTML-escaped snippet whose
   * matches are in <mark> tags; `next_cursor` continues the same search.
   */
  async searchMessages(options: SearchOptions): Promise<SearchResults> {
    const checked = parseOrThrow(SearchOptionsSchema, options, "", "options");
    return searchMessages(this.#resources.db, this.tenant, checked, this.#resources.searchLanguage);
  }

  /** The session's record (what the listing shows) and metadata; null before its first message. */
  async getSession(sessionId: string): Promise<SessionInfo | null> {
    return this.#resources.sessions.get(this.tenant, this.#ref(sessionId).sessionId);
  }

  /**
   * Sets the session's `title` (null: back to the default), `user_id` (null: none) and
   * `metadata` (a JSON object of at most 16 KiB, replacing the stored one); keys left out keep
   * their values. Returns the session, or null when it has no record (no message yet).
   */
  async updateSession(sessionId: string, patch: SessionPatch): Promise<SessionInfo | null> {
    const ref = this.#ref(sessionId);
    const { metadata, ...rest } = parseOrThrow(SessionPatchSchema, patch, "", "patch");
    let metadataJson: string | undefined;
    if (metadata !== undefined) {
      try {
        metadataJson = JSON.stringify(metadata);
      } catch {
        throw new ValidationError("metadata", "must be representable as JSON (no BigInt, no cycles)");
      }
      if (Buffer.byteLength(metadataJson, "utf8") > METADATA_MAX_BYTES) {
        throw new ValidationError("metadata", `is larger than ${METADATA_MAX_BYTES} bytes as JSON`);
      }
      // PostgreSQL's jsonb cannot hold the NUL character.
      if (/(?<!\\)(?:\\\\)*\\u0000/.test(metadataJson))
        throw new ValidationError("metadata", "must not contain \\u0000");
    }
    return this.#resources.sessions.update(this.tenant, ref.sessionId, rest, metadataJson);
  }

  /**
   * Erases every session of the user (the sessions whose `user_id` it is), each as
   * `clearSessionMemory` erases one: transcript, summaries, config, SwisperContext, Redis keys;
   * nothing comes back. A session of the user created while this runs is erased too. Answers how
   * many sessions and messages were erased. When a tier does not answer it stops with
   * StorageUnavailableError, having erased some sessions: run it again to erase the rest.
   */
  async eraseUser(userId: string): Promise<EraseUserResult> {
    const user = parseOrThrow(UserIdSchema, userId, "user_id");
    let sessions = 0;
    let messages = 0;
    for (;;) {
      const batch = await this.#resources.sessions.sessionsOfUser(this.tenant, user, 100);
      if (batch.length === 0) return { user_id: user, sessions_erased: sessions, messages_erased: messages };
      for (const session of batch) {
        await this.clearSessionMemory(session.sessionId);
        sessions++;
        messages += session.messages;
      }
    }
  }

  /**
   * The tenant's sessions (or one, `session_id`) as JSON Lines, one line (without its newline) at
   * a time: a header, each session's record, messages, summary versions, config and SwisperContext,
   * then an end line (the format is in the README). Read a page at a time: memory holds one page,
   * never a whole session. A session that does not exist gives only the header and the end line.
   */
  exportSessions(options: ExportSessionsOptions = {}): AsyncGenerator<string> {
    const sessionId = options.session_id === undefined ? undefined : this.#ref(options.session_id).sessionId;
    return exportLines(this.#resources.db, this.tenant, {
      sessionId,
      ...(options.onSession ? { onSession: options.onSession } : {}),
    });
  }

  /** One session's export (see exportSessions). */
  exportSession(sessionId: string): AsyncGenerator<string> {
    return this.exportSessions({ session_id: sessionId });
  }

  /**
   * Restores an export exactly (seqs, times, tokens, summary versions and ranges, config,
   * SwisperContext), each session in one transaction while its lines stream in. A session that
   * exists with the same content is left alone (importing twice stores nothing twice); with other
   * content it is an ImportConflictError. A bad line is an ImportLineError naming the line and
   * field; nothing of its session is stored (the sessions before it are). Not mirrored to the
   * legacy store.
   */
  importSessions(lines: AsyncIterable<string>, options: ImportSessionsOptions = {}): Promise<ImportTotals> {
    const { db, tieredBufferStore, defaults, maxContextBytes, messageLimits } = this.#resources;
    const target: ImportTarget = {
      db,
      maxContextBytes,
      messageLimits,
      resolveConfig: (set) => configOverrides(resolveSessionConfig(set, defaults), defaults),
      async afterImport(tenant, sessionId) {
        // A cache of an earlier session of that id (erased while Redis was away) must not come back.
        await tieredBufferStore?.dropRedisCopy({ tenant, sessionId }, "session");
      },
    };
    return importLines(target, lines, {
      ...(options.keepTenants ? {} : { tenant: this.tenant }),
      ...(options.onSession ? { onSession: options.onSession } : {}),
    });
  }

  /**
   * Hands an acknowledged write to the legacy mirror (phase coexistence). It never fails the
   * write: when the system of record cannot even queue it (it is away and Redis acknowledged the
   * write), the loss is counted and logged for `legacy verify` to find.
   */
  async #mirror(sessionId: string, write: LegacyWrite): Promise<void> {
    const mirror = this.#resources.legacyMirror;
    // The legacy table has no tenants: only the tenant it was migrated into is mirrored.
    if (!mirror || mirror.tenant !== this.tenant) return;
    await mirror.write(sessionId, write).catch((error: unknown) => mirror.lost(sessionId, write, error));
  }

  /**
   * True while this instance can acknowledge writes now, by some path: PostgreSQL's breaker is
   * CLOSED, or Redis's is and Redis keeps the outbox durably. Either path serves reads too. The
   * same verdict as `/ready`.
   */
  isAvailable(): boolean {
    return this.canAcknowledgeWrites();
  }

  /**
   * Writes this process acknowledged from the Redis outbox during a PostgreSQL outage that are not
   * replayed into the transcript yet (0 without Redis: there is no outbox). For `/metrics`.
   */
  outboxBacklog(): number {
    return this.#resources.tieredBufferStore?.outboxBacklog() ?? 0;
  }

  /**
   * Writes of this process that waited for their session's summarization (backpressure, see the
   * README's "Summarization lifecycle"), and those of them whose wait ran out. For `/metrics`.
   */
  summarizationBackpressure(): { held: number; timeouts: number } {
    const { held, holdTimeouts } = this.#resources.scheduler.stats();
    return { held, timeouts: holdTimeouts };
  }

  /** Whether a write can be acknowledged now (see `isAvailable`). */
  canAcknowledgeWrites(): boolean {
    return this.assessHealth().canAcknowledgeWrites;
  }

  /**
   * The health model's verdict over the breakers' states, with their snapshots; `observed` (a
   * failed probe, a failing summarizer) can lower a component from up to degraded. `/health`
   * reports this.
   */
  assessHealth(observed?: Readonly<Record<string, ComponentStatus | undefined>>): HealthView {
    return this.#resources.health.assess(observed);
  }

  /**
   * Snapshots of the circuit breakers of the components in use (without Redis, no Redis
   * breaker): what `/health`, `/metrics` and `inspect` show.
   */
  breakerSnapshots(): CircuitBreakerSnapshot[] {
    return this.#resources.health.breakerSnapshots();
  }

  /** Legacy writes waiting in the retry queue (phase coexistence), with the `top` deepest sessions. */
  legacyQueueDepth(top = 10): Promise<QueueDepth | null> {
    return this.#resources.legacyMirror?.queueDepth(top) ?? Promise.resolve(null);
  }

  /** Divergences from the legacy store seen by phase gradual's sampled checks, by kind; null in other phases. */
  migrationDivergences(): ReadonlyMap<string, number> | null {
    return this.#resources.consistency?.counts() ?? null;
  }

  /**
   * One retention sweep over every tenant, now (the manager also sweeps on its own, see
   * `retention.sweepIntervalMs`): erases each session idle longer than its retention, as
   * `clearSessionMemory` does. With `dry_run`, erases nothing and counts what it would erase.
   * `ran` is false when another process was sweeping.
   */
  async sweepRetention(options: { dry_run?: boolean } = {}): Promise<RetentionSweepResult> {
    const sweeper = this.#resources.retention;
    if (!sweeper)
      return { sessions_erased: 0, messages_erased: 0, dry_run: options.dry_run === true, ran: false };
    return sweeper.sweep({ dryRun: options.dry_run === true });
  }

  /** Sessions and messages this process's retention sweeps erased since it started (for `/metrics`). */
  retentionErased(): { sessions: number; messages: number } {
    return this.#resources.retention?.erased() ?? { sessions: 0, messages: 0 };
  }

  /** Legacy writes that failed or timed out since the process started (0 when not mirroring). */
  legacyWriteFailures(): number {
    return this.#resources.legacyMirror?.failures ?? 0;
  }

  /** Closes the connections this manager's factory opened; passed-in clients stay open. */
  async close(): Promise<void> {
    await this.#resources.close();
  }

  #ref(sessionId: string): SessionRef {
    return { tenant: this.tenant, sessionId: validateSessionId(sessionId) };
  }

  #budget(options: { max_tokens?: number | undefined; model?: string | undefined }): {
    maxTokens: number;
    model: string;
  } | null {
    const { max_tokens: maxTokens, model } = options;
    if (maxTokens === undefined) return null;
    return { maxTokens, model: model ?? this.tokenCounter.model };
  }

  /** Redis server figures from INFO (used memory, evicted and expired keys, hit ratio). */
  redisStats(): Promise<RedisStats> {
    return readRedisStats(this.#resources.redis);
  }
}
