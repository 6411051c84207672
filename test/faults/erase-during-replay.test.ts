import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { MemoryManager } from "../../src/manager/memory-manager.js";
import type { RedisConnection } from "../../src/storage/redis-client.js";
import { DURABLE_REDIS, FaultServers, untilClosed, within } from "./support/environment.js";
import {
  checkTranscripts,
  differencesFromSystemOfRecord,
  printFigures,
  readTranscript,
} from "./support/invariants.js";
import { libraryClient, WriteLog } from "./support/traffic.js";

// Scenario 2 of the fault campaign: a process acknowledges writes through the outbox while
// PostgreSQL is down and dies; PostgreSQL returns; another process starts (it replays the
// outboxes it finds) while 50 of those sessions are erased. Nothing erased may come back, in
// PostgreSQL or in any context, then or after yet another process starts.
//
// Before the fix this failed: all 50 erases resolved, and 50 of 50 erased sessions had their 20
// outbox messages back in PostgreSQL (1,000 rows) and in their contexts.

const ERASED = 50;
const KEPT = 10;
const PER_SESSION = 20;

let servers: FaultServers;
let raw: RedisConnection;

beforeAll(async () => {
  // Redis that keeps the outbox (no eviction, append-only file), so that writes are acknowledged.
  servers = await FaultServers.start(DURABLE_REDIS);
  raw = await servers.rawRedis();
});

afterAll(async () => {
  await servers?.stop();
});

async function waitForOutboxesReplayed(timeoutMs: number): Promise<number> {
  await within(async () => (await servers.sessionKeys(raw, "outbox")).length === 0, timeoutMs);
  return (await servers.sessionKeys(raw, "outbox")).length;
}

/** Erased messages visible anywhere: transcript rows, and the context a manager serves. */
async function erasedVisible(
  manager: MemoryManager,
  sessions: string[],
  erasedIds: Map<string, Set<string>>,
) {
  let sessionsWithRows = 0;
  let rows = 0;
  let contexts = 0;
  for (const session of sessions) {
    const erased = erasedIds.get(session)!;
    const back = (await readTranscript(servers.pool, session)).filter((row) =>
      erased.has(row.content.split(" ", 1)[0]!),
    ).length;
    rows += back;
    if (back > 0) sessionsWithRows++;
    const context = await manager.getContext(session);
    if (context.buffer_messages.some((message) => erased.has(String(message.content).split(" ", 1)[0]!)))
      contexts++;
  }
  return { sessionsWithRows, rows, contexts };
}

describe("scenario 2: erase during outbox replay", () => {
  it("erases sessions whose outbox another process is replaying, for good", async () => {
    const erasedSessions = Array.from({ length: ERASED }, (_, i) => `replay-erased-${i}`);
    const keptSessions = Array.from({ length: KEPT }, (_, i) => `replay-kept-${i}`);
    const erasedLog = new WriteLog("erased");
    const keptLog = new WriteLog("kept");
    const crashed = await servers.openManager();
    const a = libraryClient(crashed);
    const writeAll = async (count: number) =>
      Promise.all([
        ...erasedSessions.map(async (session) => {
          for (let i = 0; i < count; i++) await erasedLog.write(a, session, undefined, { retries: 20 });
        }),
        ...keptSessions.map(async (session) => {
          for (let i = 0; i < count; i++) await keptLog.write(a, session, undefined, { retries: 20 });
        }),
      ]);
    // Each session's buffer is in Redis before the outage, so the outbox can continue it.
    await writeAll(2);
    await servers.postgres.stopServer();
    await writeAll(PER_SESSION);
    const provisional = erasedLog.provisional + keptLog.provisional;
    expect(provisional).toBeGreaterThan(0);
    // The process "crashes" with its outboxes unreplayed.
    await crashed.close();
    const outboxes = (await servers.sessionKeys(raw, "outbox")).length;

    await servers.postgres.restart();
    const replaying = await servers.openManager();
    const erases = await Promise.all(
      erasedSessions.map((session) => libraryClient(replaying).erase(session)),
    );
    const erasesResolved = erases.filter((erase) => erase.ok).length;
    expect(erases.filter((erase) => !erase.ok)).toEqual([]);

    await untilClosed(replaying, ["postgres"]);
    const outboxesLeft = await waitForOutboxesReplayed(10_000);
    await replaying.waitForIdle();
    const erasedIds = new Map(erasedSessions.map((session) => [session, erasedLog.attempted.get(session)!]));
    const visible = await erasedVisible(replaying, erasedSessions, erasedIds);

    // Another process starts later: whatever the erase left in Redis must not come back either.
    const later = await servers.openManager();
    await waitForOutboxesReplayed(5_000);
    await later.waitForIdle();
    const visibleLater = await erasedVisible(later, erasedSessions, erasedIds);

    const { figures, examples } = await checkTranscripts(servers.pool, keptLog);
    const differences = await differencesFromSystemOfRecord(later, servers.postgres.url, [
      ...keptSessions,
      ...erasedSessions,
    ]);
    printFigures(
      "erase during outbox replay",
      {
        erasedSessions: ERASED,
        erasesResolved,
        outboxesAtCrash: outboxes,
        provisionalAcks: provisional,
        sessionsWithErasedRowsBack: visible.sessionsWithRows,
        erasedRowsBack: visible.rows,
        contextsServingErased: visible.contexts,
        erasedRowsBackAfterRestart: visibleLater.rows,
        outboxesLeft,
        keptAcknowledged: figures.acknowledged,
        keptLost: figures.lost,
        keptDuplicated: figures.duplicated,
        keptOutOfOrder: figures.outOfOrder,
        keptSeqMismatch: figures.seqMismatch,
        quietDifferences: differences.length,
      },
      [...examples, ...differences],
    );
    expect({
      ...visible,
      rowsAfterRestart: visibleLater.rows,
      contextsAfterRestart: visibleLater.contexts,
    }).toEqual({
      sessionsWithRows: 0,
      rows: 0,
      contexts: 0,
      rowsAfterRestart: 0,
      contextsAfterRestart: 0,
    });
    expect({ lost: figures.lost, duplicated: figures.duplicated, outOfOrder: figures.outOfOrder }).toEqual({
      lost: 0,
      duplicated: 0,
      outOfOrder: 0,
    });
    expect(examples).toEqual([]);
    expect(differences).toEqual([]);
  });
});
