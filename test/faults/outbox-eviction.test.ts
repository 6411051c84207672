import { afterEach, describe, expect, it } from "vitest";
import {
  DURABLE_REDIS,
  EVICTING_REDIS,
  FaultServers,
  sleep,
  untilClosed,
  within,
} from "./support/environment.js";
import { checkTranscripts, differencesFromSystemOfRecord, printFigures } from "./support/invariants.js";
import { libraryClient, startTraffic, WriteLog } from "./support/traffic.js";

// Scenario 3 of the fault campaign: 200 sessions writing while PostgreSQL is stopped for 10 s,
// with Redis as the API specification runs it in production (`maxmemory 2mb`, `allkeys-lru`, no
// persistence). An acknowledgement must mean durable: a write held only in a Redis that may evict
// it (or lose it in a crash) must not be acknowledged. Control: a Redis that keeps what it holds
// (`noeviction`, `appendonly yes`) acknowledges the outage's writes, and every one is stored.
//
// A third run fills a noeviction Redis (2 MB): writes must then be refused with a typed error
// (503), never a raw Redis error, also those whose PostgreSQL commit succeeded.
//
// Before the fix all three failed. allkeys-lru: 235 of 675 writes acknowledged during the outage
// (647 provisional) were never stored (other runs: 90 of 461, 110 of 386, 137 of 520, 208 of 591;
// in one run none of 241 was lost, and the test still failed on the 231 provisional acks held only
// by a Redis that may evict them), and 171 acks had promised a seq other than the stored one. Control: 0 lost of 5,086 provisional acks, but each
// promised a seq (after the fix a provisional ack promises none; in other runs 24-116 of those
// seqs were wrong and 1 write was out of order). Full noeviction Redis: 6,876 writes answered
// "OOM command not allowed when used memory > 'maxmemory'" (an untyped error; while PostgreSQL
// was up those writes had been committed).

const SESSIONS = 200;
const OUTAGE_MS = 10_000;

let servers: FaultServers | undefined;

afterEach(async () => {
  await servers?.stop();
  servers = undefined;
});

async function outageUnderTraffic(redisArgs: readonly string[], label: string, requireRedis = true) {
  const t0 = performance.now();
  const phases: Record<string, number> = {};
  const mark = (name: string) => {
    phases[name] = Math.round(performance.now() - t0);
  };
  servers = await FaultServers.start(redisArgs);
  mark("started");
  const manager = await servers.openManager();
  const client = libraryClient(manager);
  const log = new WriteLog(label);
  const sessions = Array.from({ length: SESSIONS }, (_, i) => `evict-${i}`);
  // Every session has a buffer in Redis before the outage.
  await Promise.all(sessions.map((session) => log.write(client, session, log.message(40))));
  const traffic = startTraffic(client, sessions, log, {
    writers: 10,
    words: 40,
    pauseMs: 10,
    write: { retries: 2, retryDelayMs: 100 },
  });
  await sleep(1000);
  const before = log.acknowledged;
  await servers.postgres.stopServer();
  await sleep(OUTAGE_MS);
  const duringOutage = log.acknowledged - before;
  const provisionalDuringOutage = log.provisional;
  await servers.postgres.restart();
  await sleep(2000);
  mark("restarted");
  await traffic.stop();
  mark("trafficStopped");
  await untilClosed(manager, ["postgres", "redis"]);
  const raw = await servers.rawRedis();
  const replayStarted = performance.now();
  await within(async () => (await servers!.sessionKeys(raw, "outbox")).length === 0, 20_000);
  const replayMs = performance.now() - replayStarted;
  mark("replayed");
  const { figures, examples } = await checkTranscripts(servers.pool, log);
  mark("checked");
  const stats = await manager.redisStats();
  // Every transcript is checked; the contexts of every fifth session (summaries must catch up first).
  const sample = sessions.filter((_, index) => index % 5 === 0);
  const differences = await differencesFromSystemOfRecord(manager, servers.postgres.url, sample, undefined, {
    requireRedis,
  });
  mark("compared");
  printFigures(
    label,
    {
      ...figures,
      acknowledgedDuringOutage: duringOutage,
      provisionalDuringOutage,
      evictedKeys: stats.evicted_keys ?? "?",
      quietDifferences: differences.length,
      replayWaitMs: replayMs,
    },
    [...examples, ...differences],
  );
  console.log(
    `[faults] ${label}: refusals ${JSON.stringify([...log.refusalKinds])}; phases ${JSON.stringify(phases)}`,
  );
  return { figures, examples, differences, log };
}

describe("scenario 3: eviction of the outbox", () => {
  it("acknowledges nothing it may lose: allkeys-lru, 2 MB, no persistence, PostgreSQL down 10 s", async () => {
    const { figures, examples, differences, log } = await outageUnderTraffic(
      ["--maxmemory", "2mb", ...EVICTING_REDIS],
      "outbox eviction (allkeys-lru, 2mb)",
    );
    expect(figures.acknowledged).toBeGreaterThan(0);
    expect({ lost: figures.lost, duplicated: figures.duplicated, outOfOrder: figures.outOfOrder }).toEqual({
      lost: 0,
      duplicated: 0,
      outOfOrder: 0,
    });
    // Such a Redis cannot hold the only copy: no provisional acknowledgement at all.
    expect(figures.provisional).toBe(0);
    expect(log.unexpected).toEqual([]);
    expect(examples).toEqual([]);
    expect(differences).toEqual([]);
  });

  it("control: noeviction with an append-only file acknowledges the outage's writes and stores them all", async () => {
    const { figures, examples, differences, log } = await outageUnderTraffic(
      ["--maxmemory", "64mb", ...DURABLE_REDIS],
      "outbox control (noeviction, appendonly yes)",
    );
    expect(figures.provisional).toBeGreaterThan(0);
    expect({ lost: figures.lost, duplicated: figures.duplicated, outOfOrder: figures.outOfOrder }).toEqual({
      lost: 0,
      duplicated: 0,
      outOfOrder: 0,
    });
    // A provisional acknowledgement promises no seq.
    expect(log.allAcks().filter((record) => record.ack.provisional && record.ack.seq !== null)).toEqual([]);
    expect(log.unexpected).toEqual([]);
    expect(examples).toEqual([]);
    expect(differences).toEqual([]);
  });

  it("a full noeviction Redis (2 MB) refuses writes with a typed error and loses none", async () => {
    const { figures, examples, differences, log } = await outageUnderTraffic(
      ["--maxmemory", "2mb", ...DURABLE_REDIS],
      "outbox full (noeviction, 2mb)",
      // A full Redis may leave reads to PostgreSQL; they must still be right.
      false,
    );
    expect({ lost: figures.lost, duplicated: figures.duplicated, outOfOrder: figures.outOfOrder }).toEqual({
      lost: 0,
      duplicated: 0,
      outOfOrder: 0,
    });
    expect(log.unexpected).toEqual([]);
    expect(examples).toEqual([]);
    expect(differences).toEqual([]);
  });
});
