import { z } from "zod";
import { ValidationError } from "../errors.js";
import type { Logger } from "../logger.js";
import { type MessageMeasurer, toTranscriptEntry } from "../messages/entries.js";
import { type MessageLimits, validateMessage, validateSessionId } from "../messages/validate.js";
import { parseOrThrow } from "../schemas/issues.js";
import type { BufferInfo } from "../schemas/memory-context.js";
import { batchOf } from "../schemas/message.js";
import type {
  AppendedSeq,
  AppendTotals,
  Transcript,
  TranscriptEntry,
  TranscriptSnapshot,
} from "../storage/transcript.js";
import type { ChatMessage, StoredMessage, SummaryRecord } from "../types.js";
import type { SessionRef } from "./keys.js";

// The batch's bounds; each message is checked on its own, to name it `messages[i]`.
const ANY_BATCH = batchOf(z.unknown());

export type { BufferInfo };

/** The buffer, its info and the current summary, as one consistent read. */
export interface BufferState {
  messages: StoredMessage[];
  info: BufferInfo;
  summary: SummaryRecord | null;
}

/** What an append did: each message's seq and the buffer's state afterwards. */
export interface AppendOutcome {
  seqs: AppendedSeq[];
  bufferTokens: number;
  summaryTriggerTokens: number;
  /** Unsummarized messages no longer in the buffer (pushed out by the caps, or cleared). */
  backlogMessages: number;
  maxMessages: number;
}

/** The state with only its newest `limit` messages (all of them when `limit` is undefined). */
export function newestOf(state: BufferState, limit: number | undefined): BufferState {
  if (limit === undefined) return state;
  return { ...state, messages: limit === 0 ? [] : state.messages.slice(-limit) };
}

/** The append outcome a buffer state implies. */
export function outcomeFromState(seqs: AppendedSeq[], state: BufferState): AppendOutcome {
  const { info } = state;
  return {
    seqs,
    bufferTokens: info.total_tokens,
    summaryTriggerTokens: info.summary_trigger_tokens,
    backlogMessages: backlogOf(info.first_seq, info.last_seq, state.summary?.last_seq ?? 0),
    maxMessages: info.max_messages,
  };
}

/** The append outcome the totals an append answered imply (the same as its state's). */
export function outcomeFromAppendTotals(
  seqs: AppendedSeq[],
  totals: AppendTotals,
  defaults: BufferDefaults,
): AppendOutcome {
  const overrides = totals.configOverrides;
  return {
    seqs,
    bufferTokens: totals.buffer.tokens,
    summaryTriggerTokens: overrides.summary_trigger_tokens ?? defaults.summaryTriggerTokens,
    backlogMessages: backlogOf(totals.buffer.firstSeq, totals.lastSeq, totals.coveredSeq),
    maxMessages: overrides.max_buffer_messages ?? defaults.maxMessages,
  };
}

/** Unsummarized messages before the buffer's first seq (0 for an empty buffer: all after last). */
function backlogOf(firstSeq: number, lastSeq: number, coveredSeq: number): number {
  return Math.max(0, (firstSeq > 0 ? firstSeq : lastSeq + 1) - coveredSeq - 1);
}

/** The buffer defaults every session starts from (a session's config overrides them). */
export interface BufferDefaults {
  maxMessages: number;
  maxTokens: number;
  summaryTriggerTokens: number;
  ttlSeconds: number;
}

/** What every buffer store is built from. */
export interface BufferStoreDependencies {
  transcript: Transcript;
  measurer: MessageMeasurer;
  defaults: BufferDefaults;
  limits: MessageLimits;
  logger: Logger;
  /** Tenant whose sessions this instance reads and writes (default "default"). */
  tenant?: string;
}

/**
 * The Memory Manager API specification's BufferStore: the recent messages of each session within its caps. Writes go to the
 * transcript first (the system of record), so nothing the caps push out is ever lost. One contract
 * suite runs against both implementations.
 */
export abstract class BufferStore {
  abstract readonly source: "redis" | "database";
  readonly tenant: string;
  protected readonly deps: BufferStoreDependencies;

  /** What this store was built from, for stores that wrap it. */
  get dependencies(): BufferStoreDependencies {
    return this.deps;
  }

  constructor(deps: BufferStoreDependencies) {
    this.deps = deps;
    this.tenant = deps.tenant ?? "default";
  }

  /** Appends validated, counted entries to the transcript and the buffer. */
  abstract appendEntries(ref: SessionRef, entries: readonly TranscriptEntry[]): Promise<AppendOutcome>;
  /** The newest `limit` buffered messages (all when omitted), the info and the summary. */
  /**
   * The session's buffer state. `minSeq`: the caller wrote that seq and must see it; a store that
   * reads from Redis replicas may then answer from one that has it (else from the primary).
   */
  abstract readState(ref: SessionRef, limit?: number, minSeq?: number): Promise<BufferState>;
  /** Empties the buffer; the messages stay in the transcript. */
  abstract clearRef(ref: SessionRef): Promise<void>;
  /** The same store for another tenant, sharing connections. */
  abstract forTenant(tenant: string): BufferStore;

  /** Adds one message (spec: `add_message`). Resolves true once it is in the transcript. */
  async addMessage(sessionId: string, message: ChatMessage): Promise<boolean> {
    await this.addMessages(sessionId, message);
    return true;
  }

  /**
   * Adds one message or a batch of 1 to 1000, in order, one round trip per tier. A repeated `id`
   * is stored once.
   */
  async addMessages(
    sessionId: string,
    messages: ChatMessage | readonly ChatMessage[],
    userId?: string,
  ): Promise<AppendOutcome> {
    const ref = this.ref(sessionId);
    const entries = this.prepare(messages);
    // The session's user, recorded on the session's row when it has none (listing, eraseUser).
    if (userId !== undefined) for (const entry of entries) entry.userId = userId;
    return this.appendEntries(ref, entries);
  }

  /**
   * Validates and counts one message or a batch; throws a ValidationError before anything is
   * stored, naming the field as it was sent (`message.role`, `messages[3].role`).
   */
  prepare(input: unknown): TranscriptEntry[] {
    const { limits, logger, measurer } = this.deps;
    const nowSeconds = Math.floor(Date.now() / 1000);
    const validated = Array.isArray(input)
      ? parseOrThrow(ANY_BATCH, input, "messages").map((message, index) =>
          validateMessage(message, limits, logger, `messages[${index}]`, nowSeconds),
        )
      : [validateMessage(input, limits, logger, "message", nowSeconds)];
    return validated.map((message) => toTranscriptEntry(message, measurer));
  }

  /** The newest `limit` messages of the buffer, oldest first (spec: `get_messages`). */
  async getMessages(sessionId: string, limit?: number): Promise<StoredMessage[]> {
    return (await this.getBuffer(sessionId, limit)).messages;
  }

  /**
   * The newest `limit` messages (all when omitted), the buffer's info and the current summary, as
   * one consistent read (what `GET .../buffer` answers).
   */
  async getBuffer(sessionId: string, limit?: number): Promise<BufferState> {
    if (limit !== undefined && !(Number.isSafeInteger(limit) && limit >= 0)) {
      throw new ValidationError("limit", "must be a non-negative integer");
    }
    return this.readState(this.ref(sessionId), limit);
  }

  /** The buffer's metadata (spec: `get_buffer_info`). */
  async getBufferInfo(sessionId: string): Promise<BufferInfo> {
    return (await this.readState(this.ref(sessionId), 0)).info;
  }

  /** True when the buffer holds at least `threshold` tokens (spec: `should_trigger_summary`). */
  async shouldTriggerSummary(sessionId: string, threshold = 3000): Promise<boolean> {
    return (await this.getBufferInfo(sessionId)).total_tokens >= threshold;
  }

  /** Empties the buffer (spec: `clear_buffer`); the transcript keeps the messages. */
  async clearBuffer(sessionId: string): Promise<boolean> {
    await this.clearRef(this.ref(sessionId));
    return true;
  }

  protected ref(sessionId: string): SessionRef {
    return { tenant: this.tenant, sessionId: validateSessionId(sessionId) };
  }
}

/** The buffer state as the system of record has it (what Redis holds after a rebuild). */
export function stateFromSnapshot(
  snapshot: TranscriptSnapshot,
  defaults: BufferDefaults,
  source: BufferInfo["source"],
): BufferState {
  const overrides = snapshot.configOverrides;
  const { messages, buffer } = snapshot;
  return {
    messages,
    summary: snapshot.summary,
    info: {
      message_count: buffer.count,
      total_tokens: buffer.tokens,
      last_updated: snapshot.lastUpdated?.toISOString() ?? null,
      ttl_remaining:
        source === "redis" && snapshot.lastSeq > 0
          ? (overrides.buffer_ttl_seconds ?? defaults.ttlSeconds)
          : null,
      max_messages: overrides.max_buffer_messages ?? defaults.maxMessages,
      max_tokens: overrides.max_buffer_tokens ?? defaults.maxTokens,
      summary_trigger_tokens: overrides.summary_trigger_tokens ?? defaults.summaryTriggerTokens,
      first_seq: buffer.firstSeq,
      last_seq: snapshot.lastSeq,
      estimated_messages: buffer.estimated,
      source,
    },
  };
}
