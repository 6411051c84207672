/**
 * Verification: does the transcript hold what the legacy store holds? Each session's valid
 * elements (as the import converts them) against its stored messages, by role and content in
 * order, and the contract context against the saved SwisperContext.
 */
import type { MemoryManager } from "../manager/memory-manager.js";
import type { Database } from "../storage/database.js";
import { Transcript } from "../storage/transcript.js";
import { canonicalJson, convertContext } from "./convert.js";
import { convertSession, legacyRows } from "./import.js";
import type { LegacySessionRow, LegacySessionStore } from "./legacy-store.js";

export type DivergenceKind =
  | "message count"
  | "missing message"
  | "extra message"
  | "different content"
  | "different order"
  | "context differs";

export interface Divergence {
  kind: DivergenceKind;
  detail: string;
}

export interface SessionVerdict {
  sessionId: string;
  legacyMessages: number;
  storedMessages: number;
  divergences: Divergence[];
}

export interface LegacyVerifyOptions {
  legacy: LegacySessionStore;
  memory: MemoryManager;
  /** The memory's system of record, where the transcript is read. */
  database: Database;
  timeZone?: string;
  sessionId?: string;
  /** Check this many sessions chosen at random instead of all. */
  sample?: number;
  onSession?: (verdict: SessionVerdict) => void;
}

export interface LegacyVerifyResult {
  sessions: number;
  diverging: SessionVerdict[];
}

/** The divergences one session's report lists at most, so that a wholly different one stays readable. */
const MAX_REPORTED = 20;

/** How far ahead a missing or extra message is looked for before calling the pair different. */
const LOOKAHEAD = 64;

export async function verifyLegacySessions(options: LegacyVerifyOptions): Promise<LegacyVerifyResult> {
  const transcript = new Transcript(options.database);
  const result: LegacyVerifyResult = { sessions: 0, diverging: [] };
  for await (const row of rowsToVerify(options)) {
    const verdict = await verifySession(row, options, transcript);
    result.sessions += 1;
    if (verdict.divergences.length > 0) result.diverging.push(verdict);
    options.onSession?.(verdict);
  }
  return result;
}

async function* rowsToVerify(options: LegacyVerifyOptions): AsyncGenerator<LegacySessionRow> {
  if (options.sample === undefined || options.sessionId !== undefined) {
    yield* legacyRows(options);
    return;
  }
  for (const sessionId of await options.legacy.sampleSessionIds(options.sample)) {
    const row = await options.legacy.readSession(sessionId);
    if (row) yield row;
  }
}

async function verifySession(
  row: LegacySessionRow,
  options: LegacyVerifyOptions,
  transcript: Transcript,
): Promise<SessionVerdict> {
  const ref = { tenant: options.memory.tenant, sessionId: row.sessionId };
  const expected = convertSession(row, options.timeZone ?? "UTC").messages.map((message) => ({
    role: message.role,
    content: message.content,
  }));
  const stored: { role: string; content: unknown }[] = [];
  for (let after = 0; ; ) {
    const page = await transcript.readAfter(ref, after, 1000);
    for (const message of page) stored.push({ role: message.role, content: message.content });
    const last = page.at(-1);
    if (!last || page.length < 1000) break;
    after = last.seq;
  }
  const divergences = compareMessages(expected, stored);
  const legacyContext = convertContext(row.sessionId, row.sessionMetadata);
  const savedContext = await options.memory.loadContext(row.sessionId);
  if (canonicalJson(legacyContext) !== canonicalJson(savedContext)) {
    divergences.push({
      kind: "context differs",
      detail:
        legacyContext === null
          ? "memory has a context the legacy store has not"
          : "the saved context differs",
    });
  }
  return {
    sessionId: row.sessionId,
    legacyMessages: expected.length,
    storedMessages: stored.length,
    divergences,
  };
}

interface Compared {
  role: string;
  content: unknown;
}

/**
 * The differences between the legacy messages and the stored ones, by role and content in order:
 * a message on one side only (missing, extra), a pair that differs, or the same messages in
 * another order. Positions are 0-based among the valid messages.
 */
export function compareMessages(expected: readonly Compared[], stored: readonly Compared[]): Divergence[] {
  const legacyKeys = expected.map((message) => canonicalJson([message.role, message.content]));
  const storedKeys = stored.map((message) => canonicalJson([message.role, message.content]));
  if (
    legacyKeys.length === storedKeys.length &&
    legacyKeys.every((key, index) => key === storedKeys[index])
  ) {
    return [];
  }
  const divergences: Divergence[] = [];
  if (legacyKeys.length !== storedKeys.length) {
    divergences.push({
      kind: "message count",
      detail: `legacy ${legacyKeys.length}, memory ${storedKeys.length}`,
    });
  }
  if (sameMultiset(legacyKeys, storedKeys)) {
    const first = legacyKeys.findIndex((key, index) => key !== storedKeys[index]);
    divergences.push({ kind: "different order", detail: `first at position ${first}` });
    return divergences;
  }
  divergences.push(...alignmentDivergences(legacyKeys, storedKeys));
  if (divergences.length > MAX_REPORTED) {
    const more = divergences.length - MAX_REPORTED;
    divergences.length = MAX_REPORTED;
    divergences.push({
      kind: divergences[MAX_REPORTED - 1]?.kind ?? "message count",
      detail: `and ${more} more`,
    });
  }
  return divergences;
}

function sameMultiset(left: readonly string[], right: readonly string[]): boolean {
  if (left.length !== right.length) return false;
  const counts = new Map<string, number>();
  for (const key of left) counts.set(key, (counts.get(key) ?? 0) + 1);
  for (const key of right) {
    const count = counts.get(key) ?? 0;
    if (count === 0) return false;
    counts.set(key, count - 1);
  }
  return true;
}

/** A walk along both sides that resynchronizes on the nearest match within LOOKAHEAD. */
function alignmentDivergences(legacy: readonly string[], stored: readonly string[]): Divergence[] {
  const divergences: Divergence[] = [];
  let i = 0;
  let j = 0;
  const missing = () => divergences.push({ kind: "missing message", detail: `legacy position ${i++}` });
  const extra = () => divergences.push({ kind: "extra message", detail: `memory position ${j++}` });
  while (i < legacy.length || j < stored.length) {
    if (i < legacy.length && j < stored.length && legacy[i] === stored[j]) {
      i++;
      j++;
    } else if (i >= legacy.length) {
      extra();
    } else if (j >= stored.length) {
      missing();
    } else {
      const aheadInStored = stored.indexOf(legacy[i] as string, j + 1);
      const aheadInLegacy = legacy.indexOf(stored[j] as string, i + 1);
      const storedGap = aheadInStored === -1 || aheadInStored - j > LOOKAHEAD ? null : aheadInStored - j;
      const legacyGap = aheadInLegacy === -1 || aheadInLegacy - i > LOOKAHEAD ? null : aheadInLegacy - i;
      if (storedGap !== null && (legacyGap === null || storedGap <= legacyGap)) {
        for (let gap = 0; gap < storedGap; gap++) extra();
      } else if (legacyGap !== null) {
        for (let gap = 0; gap < legacyGap; gap++) missing();
      } else {
        divergences.push({ kind: "different content", detail: `legacy position ${i}, memory position ${j}` });
        i++;
        j++;
      }
    }
  }
  return divergences;
}
