/**
 * The backfill: every `swisper_sessions` row into the transcript, through the library's own
 * write path (`importMessages`: validation, exact tokens, the transcript and the buffer), so that
 * every invariant of the write path holds for imported messages too. Each element carries a
 * deterministic id (convert.ts), which makes the import idempotent: a re-run, or a run resumed
 * after a crash, stores nothing twice.
 *
 * Two passes. The first loads the transcript at its own pace: a request-path write waits for its
 * session's summarization once more than a buffer's worth is unsummarized (backpressure), which
 * bound the import to the summarizer's pace (about half the rate, measured with the offline
 * summarizer on 2 cores). The second summarizes the sessions the first left at their trigger.
 * A run cut off between the two summarizes them on its re-run (every batch is then a duplicate,
 * and still answers whether its session needs a summary), or at their next write.
 */
import { ValidationError } from "../errors.js";
import type { MemoryManager } from "../manager/memory-manager.js";
import type { SwisperContext } from "../schemas/swisper-context.js";
import type { ChatMessage } from "../types.js";
import { convertContext, convertElement } from "./convert.js";
import type { LegacySessionRow, LegacySessionStore } from "./legacy-store.js";
import { localIsoToEpochSeconds } from "./local-time.js";

export interface LegacyImportOptions {
  legacy: LegacySessionStore;
  memory: MemoryManager;
  /** The IANA zone of the legacy local times (default "UTC"). */
  timeZone?: string;
  /** Import only this session. */
  sessionId?: string;
  /** Read and check everything, write nothing. */
  dryRun?: boolean;
  /** Messages per `addMessages` call, 1 to 1000 (default 1000). */
  batchSize?: number;
  /** Rows read per page (default 50): what is held in memory at once. */
  pageSize?: number;
  /**
   * Sessions imported at once (default 16); each session's messages stay in order. More sessions
   * than the transcript's append statements in flight (4) let group commit put several sessions'
   * batches in one statement and one commit: medians of 16.5-17.5k messages/s where 4 made 14k
   * (npm run bench:import; most legacy sessions are far shorter than a batch).
   */
  concurrency?: number;
  /** Stop after this many sessions (a partial run; the next run resumes where it stopped). */
  maxSessions?: number;
  /** Called once a session is loaded (the progress bar). */
  onSession?: (sessionId: string, messages: number) => void;
  /** Called before the second pass, with how many sessions it summarizes. */
  onSummarizing?: (sessions: number) => void;
  /** Called once a session of the second pass is summarized. */
  onSummarized?: (sessionId: string) => void;
  /** Called for each element or context that is skipped, with the reason. */
  onSkipped?: (skipped: SkippedItem) => void;
}

/** Something that was not imported, and why. */
export interface SkippedItem {
  sessionId: string;
  /** The element's index in `chat_history`; null for the context or the whole session. */
  index: number | null;
  reason: string;
}

export interface LegacyImportTotals {
  sessions: number;
  /** Valid elements read (what a dry run would store). */
  messagesRead: number;
  /** Messages newly written to the transcript. */
  messagesStored: number;
  /** Messages already stored by an earlier run (same id): not written again. */
  duplicatesSkipped: number;
  /** Elements (and contexts, sessions) skipped, by reason. */
  skippedByReason: Record<string, number>;
  contextsSaved: number;
  /** The first pass: reading, converting and storing the messages. */
  seconds: number;
  /** Sessions the second pass summarized, and those whose summarizer did not catch up. */
  sessionsSummarized: number;
  summariesNotCaughtUp: number;
  /** The second pass. */
  summarySeconds: number;
}

/** Imports every session (or one); returns the totals. Invalid elements never stop it. */
export function importLegacySessions(options: LegacyImportOptions): Promise<LegacyImportTotals> {
  return importSessions(legacySourceSessions(options), options);
}

/**
 * One session as a source hands it to the engine: its valid elements already converted (each
 * with its deterministic id), oldest first, and what was skipped. Every source (the legacy table,
 * LangChain's Redis lists, Motorhead's) yields these, so that batching, idempotency, reporting and
 * totals are the same code for all of them.
 */
export interface SourceSession {
  sessionId: string;
  messages: (ChatMessage & { id: string })[];
  /** Each message's index in the source's history, oldest first (what a skip report names). */
  indexes: number[];
  skipped: SkippedItem[];
  /** The context to save after the messages, or null. */
  context: SwisperContext | null;
  /** Elements read from the source, valid or not (the progress callback's count). */
  elements: number;
}

/** What the engine needs besides the sessions: the memory and the batching knobs. */
export type ImportEngineOptions = Pick<
  LegacyImportOptions,
  | "memory"
  | "dryRun"
  | "batchSize"
  | "concurrency"
  | "maxSessions"
  | "onSession"
  | "onSkipped"
  | "onSummarizing"
  | "onSummarized"
>;

/** The engine: stores each session's messages in batches, then its context; returns the totals. */
export async function importSessions(
  sessions: AsyncIterator<SourceSession>,
  options: ImportEngineOptions,
): Promise<LegacyImportTotals> {
  const started = performance.now();
  const totals: LegacyImportTotals = {
    sessions: 0,
    messagesRead: 0,
    messagesStored: 0,
    duplicatesSkipped: 0,
    skippedByReason: {},
    contextsSaved: 0,
    seconds: 0,
    sessionsSummarized: 0,
    summariesNotCaughtUp: 0,
    summarySeconds: 0,
  };
  // Only the ids of sessions that reached their trigger: the long ones, a fraction of the table.
  const toSummarize: string[] = [];
  let taken = 0;
  let failed = false;
  // Sessions are independent: a few at once keep PostgreSQL busy while this process converts
  // and counts tokens (one at a time left both idle half the time). The iterator hands each
  // session to one worker only.
  const worker = async () => {
    while (!failed) {
      if (options.maxSessions !== undefined && taken >= options.maxSessions) return;
      const next = await sessions.next();
      if (next.done || failed) return;
      if (options.maxSessions !== undefined && taken >= options.maxSessions) return;
      taken += 1;
      try {
        if (await importSession(next.value, options, totals)) toSummarize.push(next.value.sessionId);
      } catch (error) {
        failed = true;
        throw error;
      }
      totals.sessions += 1;
      options.onSession?.(next.value.sessionId, next.value.elements);
    }
  };
  const concurrency = Math.max(1, options.concurrency ?? 16);
  await Promise.all(Array.from({ length: concurrency }, worker));
  totals.seconds = (performance.now() - started) / 1000;
  await summarizeSessions(toSummarize, options, concurrency, totals);
  return totals;
}

/** The second pass: each session's summarization, `concurrency` sessions at once. */
async function summarizeSessions(
  sessionIds: string[],
  options: ImportEngineOptions,
  concurrency: number,
  totals: LegacyImportTotals,
): Promise<void> {
  const started = performance.now();
  options.onSummarizing?.(sessionIds.length);
  let next = 0;
  const worker = async () => {
    while (next < sessionIds.length) {
      const sessionId = sessionIds[next++] as string;
      if (await options.memory.summarizeSession(sessionId)) totals.sessionsSummarized += 1;
      else totals.summariesNotCaughtUp += 1;
      options.onSummarized?.(sessionId);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  totals.summarySeconds = (performance.now() - started) / 1000;
}

/** The legacy rows as source sessions, converted one at a time as the engine asks. */
async function* legacySourceSessions(options: LegacyImportOptions): AsyncGenerator<SourceSession> {
  const timeZone = options.timeZone ?? "UTC";
  for await (const row of legacyRows(options)) {
    yield {
      sessionId: row.sessionId,
      ...convertSession(row, timeZone),
      context: convertContext(row.sessionId, row.sessionMetadata),
      elements: row.chatHistory.length,
    };
  }
}

/** The rows to import, a page at a time: never the whole table in memory. */
export async function* legacyRows(options: {
  legacy: LegacySessionStore;
  sessionId?: string;
  pageSize?: number;
}): AsyncGenerator<LegacySessionRow> {
  if (options.sessionId !== undefined) {
    const row = await options.legacy.readSession(options.sessionId);
    if (row) yield row;
    return;
  }
  const pageSize = options.pageSize ?? 50;
  let after: string | null = null;
  for (;;) {
    const page = await options.legacy.readSessionsAfter(after, pageSize);
    for (const row of page) yield row;
    const last = page.at(-1);
    if (!last || page.length < pageSize) return;
    after = last.sessionId;
  }
}

/** A session's valid elements as messages, in order, and what was skipped. */
export function convertSession(
  row: LegacySessionRow,
  timeZone: string,
): { messages: (ChatMessage & { id: string })[]; indexes: number[]; skipped: SkippedItem[] } {
  const messages: (ChatMessage & { id: string })[] = [];
  /** Each message's index in `chat_history`. */
  const indexes: number[] = [];
  const skipped: SkippedItem[] = [];
  // An element without a readable time gets its predecessor's, so that times never go backwards.
  let fallback = localIsoToEpochSeconds(row.createdAt, timeZone) ?? undefined;
  row.chatHistory.forEach((element, index) => {
    const converted = convertElement(row.sessionId, index, element, timeZone, fallback);
    if (converted.ok) {
      messages.push(converted.message);
      indexes.push(index);
      fallback = converted.message.timestamp;
    } else {
      skipped.push({ sessionId: row.sessionId, index, reason: converted.reason });
    }
  });
  return { messages, indexes, skipped };
}

/** Loads one session; answers whether it needs the second pass (a summary). */
async function importSession(
  session: SourceSession,
  options: ImportEngineOptions,
  totals: LegacyImportTotals,
): Promise<boolean> {
  const skip = (item: SkippedItem) => {
    totals.skippedByReason[item.reason] = (totals.skippedByReason[item.reason] ?? 0) + 1;
    options.onSkipped?.(item);
  };
  const { sessionId, messages, indexes, skipped, context } = session;
  for (const item of skipped) skip(item);
  totals.messagesRead += messages.length;
  if (options.dryRun) return false;
  const batchSize = Math.min(1000, Math.max(1, options.batchSize ?? 1000));
  let needsSummary = false;
  try {
    for (let start = 0; start < messages.length; start += batchSize) {
      const batch = messages.slice(start, start + batchSize);
      const batchIndexes = indexes.slice(start, start + batchSize);
      needsSummary =
        (await storeBatch(sessionId, batch, batchIndexes, options.memory, totals, skip)) ?? needsSummary;
    }
    if (context) {
      await options.memory.saveContext(sessionId, context);
      totals.contextsSaved += 1;
    }
  } catch (error) {
    // A session the library refuses as a whole (its id, its context) is reported, not fatal.
    if (!(error instanceof ValidationError)) throw error;
    skip({ sessionId, index: null, reason: `refused by the library: ${error.field}` });
  }
  return needsSummary;
}

/**
 * Stores one batch; answers whether the session is at its summary trigger (null when the library
 * refused the whole batch: nothing was written to tell). A message the library
 * refuses (too large, metadata too deep) is reported and left out, and the rest of the batch is
 * sent again: the library checks a batch whole.
 */
async function storeBatch(
  sessionId: string,
  batch: (ChatMessage & { id: string })[],
  indexes: number[],
  memory: MemoryManager,
  totals: LegacyImportTotals,
  skip: (item: SkippedItem) => void,
): Promise<boolean | null> {
  let pending = batch;
  let pendingIndexes = indexes;
  while (pending.length > 0) {
    try {
      const imported = await memory.importMessages(sessionId, pending);
      for (const seq of imported.seqs) {
        if (seq.duplicate) totals.duplicatesSkipped += 1;
        else totals.messagesStored += 1;
      }
      return imported.needs_summary;
    } catch (error) {
      const position = error instanceof ValidationError ? /^messages\[(\d+)\]/.exec(error.field) : null;
      if (!position || !(error instanceof ValidationError)) throw error;
      const refused = Number(position[1]);
      const field = error.field.replace(/^messages\[\d+\]/, "message");
      skip({ sessionId, index: pendingIndexes[refused] ?? null, reason: `refused by the library: ${field}` });
      pending = pending.filter((_message, index) => index !== refused);
      pendingIndexes = pendingIndexes.filter((_legacyIndex, index) => index !== refused);
    }
  }
  return null;
}
