import { isDeepStrictEqual } from "node:util";
import type pg from "pg";
import { createMemoryManager } from "../../../src/manager/create-memory-manager.js";
import type { MemoryContext, MemoryManager } from "../../../src/manager/memory-manager.js";
import type { SessionConfig } from "../../../src/manager/session-config.js";
import { quietLogger, SMALL_SESSIONS, sleep } from "./environment.js";
import type { WriteLog } from "./traffic.js";

// The final invariant checks, read from PostgreSQL directly (the system of record), never from
// the manager under test.

export interface TranscriptRow {
  seq: number;
  idempotencyKey: string | null;
  content: string;
}

/** The session's transcript rows, oldest first. */
export async function readTranscript(
  pool: pg.Pool,
  session: string,
  tenant = "default",
): Promise<TranscriptRow[]> {
  const { rows } = await pool.query<{
    seq: string;
    idempotency_key: string | null;
    message: { content: unknown };
  }>(
    "SELECT seq, idempotency_key, message FROM memory_messages WHERE tenant = $1 AND session_id = $2 ORDER BY seq",
    [tenant, session],
  );
  return rows.map((row) => ({
    seq: Number(row.seq),
    idempotencyKey: row.idempotency_key,
    content:
      typeof row.message.content === "string" ? row.message.content : JSON.stringify(row.message.content),
  }));
}

/** The id a recorded message's content begins with. */
function idOf(content: string): string {
  return content.split(" ", 1)[0]!;
}

/** What the checks counted; printed on one line per scenario. */
export interface Figures {
  sessions: number;
  acknowledged: number;
  provisional: number;
  /** Acknowledged, not in the transcript. */
  lost: number;
  /** Messages stored more than once (counted once per extra copy). */
  duplicated: number;
  /** Acknowledged messages out of acknowledgement order (how many would have to move). */
  outOfOrder: number;
  /** Acknowledgements whose promised seq is not the stored seq. */
  seqMismatch: number;
  /** Of those, provisional ones (after the fix a provisional acknowledgement promises no seq). */
  seqMismatchProvisional: number;
  /** Transcript rows no write of the test sent. */
  foreign: number;
  /** Writes answered with a non-typed error or a status other than 2xx/503. */
  unexpectedErrors: number;
  refused: number;
  gaveUp: number;
}

/** Length of the longest strictly increasing subsequence. */
function longestIncreasing(values: readonly number[]): number {
  const tails: number[] = [];
  for (const value of values) {
    let lo = 0;
    let hi = tails.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (tails[mid]! < value) lo = mid + 1;
      else hi = mid;
    }
    tails[lo] = value;
  }
  return tails.length;
}

/**
 * Invariant 1 and 5 for every session the log wrote to: each acknowledged write is in the
 * transcript exactly once, in acknowledgement order, at the seq it was told (when it was told
 * one); no row is there that nobody sent. Returns the figures and a few examples of each breach.
 */
export async function checkTranscripts(
  pool: pg.Pool,
  log: WriteLog,
  tenant = "default",
): Promise<{ figures: Figures; examples: string[] }> {
  const figures: Figures = {
    sessions: 0,
    acknowledged: log.acknowledged,
    provisional: log.provisional,
    lost: 0,
    duplicated: 0,
    outOfOrder: 0,
    seqMismatch: 0,
    seqMismatchProvisional: 0,
    foreign: 0,
    unexpectedErrors: log.unexpected.length,
    refused: log.refusals,
    gaveUp: log.gaveUp,
  };
  const examples: string[] = log.unexpected.slice(0, 3).map((u) => `unexpected ${u.status ?? ""} ${u.error}`);
  const note = (text: string) => {
    if (examples.length < 12) examples.push(text);
  };
  // Seq promises broken are listed after the other breaches, which say more.
  const seqNotes: string[] = [];
  for (const [session, attempted] of log.attempted) {
    figures.sessions++;
    const rows = await readTranscript(pool, session, tenant);
    const seqsById = new Map<string, number[]>();
    for (const row of rows) {
      const id = idOf(row.content);
      if (!attempted.has(id)) {
        figures.foreign++;
        note(`${session}: row seq ${row.seq} "${row.content.slice(0, 40)}" was never sent`);
        continue;
      }
      const seqs = seqsById.get(id) ?? [];
      seqs.push(row.seq);
      seqsById.set(id, seqs);
    }
    for (const [id, seqs] of seqsById) {
      if (seqs.length > 1) {
        figures.duplicated += seqs.length - 1;
        note(`${session}: ${id} stored ${seqs.length} times (seqs ${seqs.join(",")})`);
      }
    }
    const acks = log.acks.get(session) ?? [];
    const storedPositions: number[] = [];
    for (const record of acks) {
      const seqs = seqsById.get(record.id);
      if (!seqs) {
        figures.lost++;
        note(`${session}: acknowledged ${record.id} (seq ${record.ack.seq}) is not in the transcript`);
        continue;
      }
      storedPositions.push(seqs[0]!);
      if (record.ack.seq !== null && record.ack.seq !== seqs[0]) {
        figures.seqMismatch++;
        if (record.ack.provisional) figures.seqMismatchProvisional++;
        if (seqNotes.length < 6)
          seqNotes.push(
            `${session}: ${record.id} was told seq ${record.ack.seq}${record.ack.provisional ? " (provisional)" : ""} but is stored at ${seqs[0]}`,
          );
      }
    }
    const outOfPlace = storedPositions.length - longestIncreasing(storedPositions);
    if (outOfPlace > 0) {
      const stored = acks.filter((record) => seqsById.has(record.id));
      const first = storedPositions.findIndex((seq, i) => i > 0 && seq < storedPositions[i - 1]!);
      note(
        `${session}: ${outOfPlace} acknowledged messages stored out of acknowledgement order, e.g. ` +
          `${stored[first]!.id} (acknowledged after ${stored[first - 1]!.id}, seq ${storedPositions[first - 1]}) ` +
          `stored at seq ${storedPositions[first]}`,
      );
    }
    figures.outOfOrder += outOfPlace;
  }
  return { figures, examples: [...examples, ...seqNotes] };
}

/** The figures that say whether every write was stored exactly as acknowledged. */
export function storageFigures(figures: Figures) {
  const { acknowledged, refused, unexpectedErrors, lost, duplicated, outOfOrder, seqMismatch, foreign } =
    figures;
  return { acknowledged, refused, unexpectedErrors, lost, duplicated, outOfOrder, seqMismatch, foreign };
}

/** `storageFigures` of a run where nothing was refused and nothing went wrong (add `acknowledged`). */
export const NOTHING_WRONG = {
  refused: 0,
  unexpectedErrors: 0,
  lost: 0,
  duplicated: 0,
  outOfOrder: 0,
  seqMismatch: 0,
  foreign: 0,
} as const;

/** One line of figures, to quote: `[faults] <scenario>: acknowledged=... lost=... ...`. */
export function printFigures(
  scenario: string,
  figures: Partial<Figures> & Record<string, unknown>,
  examples: readonly string[] = [],
): void {
  for (const example of examples.slice(0, 6)) console.log(`[faults] ${scenario}: e.g. ${example}`);
  const text = Object.entries(figures)
    .map(
      ([key, value]) => `${key}=${typeof value === "number" ? Math.round(value * 10) / 10 : String(value)}`,
    )
    .join(" ");
  console.log(`[faults] ${scenario}: ${text}`);
}

/** Invariant 2: summary versions cover [1..k] without gap or overlap; the buffer is after k. */
export async function coverageProblems(manager: MemoryManager, session: string): Promise<string | null> {
  const versions = await manager.summaryStore.allVersions({ tenant: manager.tenant, sessionId: session });
  let k = 0;
  for (const version of versions) {
    if (version.first_seq !== k + 1)
      return `version ${version.version} covers [${version.first_seq}..${version.last_seq}] after ${k}`;
    k = version.last_seq;
  }
  const context = await manager.getContext(session);
  const early = context.buffer_messages.find((message) => message.seq <= k);
  return early ? `buffer holds seq ${early.seq}, covered by the summaries up to ${k}` : null;
}

/**
 * Once quiet: the context the manager serves (from Redis, unless `requireRedis` is false) equals what the transcript alone says,
 * read by a manager with no Redis on the same database and the same session defaults. Returns a
 * description of each session that differs.
 */
export async function differencesFromSystemOfRecord(
  manager: MemoryManager,
  databaseUrl: string,
  sessions: readonly string[],
  sessionDefaults: Partial<SessionConfig> = SMALL_SESSIONS,
  options: { requireRedis?: boolean } = {},
): Promise<string[]> {
  const requireRedis = options.requireRedis ?? true;
  await manager.waitForIdle();
  const reference = await createMemoryManager({
    database: databaseUrl,
    redis: false,
    logger: quietLogger(),
    sessionDefaults,
    summarization: { idleFinalizeAfterMs: 0 },
  });
  const differences: string[] = [];
  try {
    for (const session of sessions) {
      const expected = await reference.getContext(session);
      try {
        // The first read after the faults may rebuild the buffer; it must then be served by Redis.
        let actual: MemoryContext = await manager.getContext(session);
        for (let i = 0; i < 40 && actual.buffer_info.source !== "redis"; i++) {
          await sleep(50);
          actual = await manager.getContext(session);
        }
        const difference = contextDifference(expected, actual, requireRedis);
        if (difference) differences.push(`${session}: ${difference}`);
      } catch (error) {
        differences.push(`${session}: the read failed: ${String(error).slice(0, 200)}`);
      }
    }
  } finally {
    await reference.close();
  }
  return differences;
}

function contextDifference(
  expected: MemoryContext,
  actual: MemoryContext,
  requireRedis: boolean,
): string | null {
  if (requireRedis && actual.buffer_info.source !== "redis")
    return `served from ${actual.buffer_info.source}, not Redis`;
  const contents = (context: MemoryContext) =>
    context.buffer_messages.map((m) => `${m.seq}:${idOf(String(m.content))}`);
  const want = contents(expected).join(" ");
  const got = contents(actual).join(" ");
  if (want !== got) return `buffer [${got}] but the transcript says [${want}]`;
  if (!isDeepStrictEqual(actual.buffer_messages, expected.buffer_messages))
    return "buffer messages differ in their fields";
  if (actual.current_summary !== expected.current_summary) return "current summary differs";
  if (actual.buffer_info.total_tokens !== expected.buffer_info.total_tokens)
    return `total_tokens ${actual.buffer_info.total_tokens}, expected ${expected.buffer_info.total_tokens}`;
  if (actual.buffer_info.last_seq !== expected.buffer_info.last_seq)
    return `last_seq ${actual.buffer_info.last_seq}, expected ${expected.buffer_info.last_seq}`;
  if (actual.buffer_info.message_count !== expected.buffer_info.message_count)
    return `message_count ${actual.buffer_info.message_count}, expected ${expected.buffer_info.message_count}`;
  for (const key of ["max_tokens", "max_messages", "summary_trigger_tokens"] as const) {
    if (actual.buffer_info[key] !== expected.buffer_info[key])
      return `${key} ${actual.buffer_info[key]}, the stored config says ${expected.buffer_info[key]}`;
  }
  return null;
}

/** Summary versions committed so far, over all sessions (to show summaries ran during the faults). */
export async function countSummaries(pool: pg.Pool): Promise<number> {
  const { rows } = await pool.query<{ n: string }>("SELECT count(*) AS n FROM memory_summaries");
  return Number(rows[0]!.n);
}
