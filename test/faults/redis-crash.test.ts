import { afterEach, describe, expect, it } from "vitest";
import type { MemoryManager } from "../../src/manager/memory-manager.js";
import { CircuitState } from "../../src/resilience/index.js";
import { FaultServers, sleep, until, untilClosed } from "./support/environment.js";
import {
  checkTranscripts,
  countSummaries,
  coverageProblems,
  differencesFromSystemOfRecord,
  printFigures,
} from "./support/invariants.js";
import { libraryClient, startTraffic, WriteLog } from "./support/traffic.js";

// Regression tests (these passed before the fix and must keep passing): Redis SIGKILLed under
// traffic and restarted empty; Redis paused (SIGSTOP) under traffic and resumed. Writes are
// acknowledged throughout (PostgreSQL is up), nothing is lost or reordered, summary coverage stays
// exact, and once quiet every context equals the transcript's.

const SESSIONS = 8;

let servers: FaultServers | undefined;

afterEach(async () => {
  await servers?.stop();
  servers = undefined;
});

async function redisFaultUnderTraffic(
  label: string,
  fault: () => Promise<void>,
  recover: () => Promise<void>,
) {
  servers = await FaultServers.start();
  const manager: MemoryManager = await servers.openManager();
  await servers.warmUp(manager);
  const client = libraryClient(manager);
  const log = new WriteLog(label);
  const sessions = Array.from({ length: SESSIONS }, (_, i) => `${label}-${i}`);
  const traffic = startTraffic(client, sessions, log, { writers: 4, words: 20, readEvery: 3, pauseMs: 2 });
  await until(() => log.acknowledged > 100, "some traffic");
  await fault();
  await until(() => manager.circuitBreaker.redis.getState() === CircuitState.OPEN, "the Redis breaker opens");
  const duringFrom = log.acknowledged;
  await sleep(1500);
  const duringOutage = log.acknowledged - duringFrom;
  await recover();
  await untilClosed(manager, ["redis"]);
  await sleep(1000);
  await traffic.stop();
  const { figures, examples } = await checkTranscripts(servers.pool, log);
  const coverage: string[] = [];
  await manager.waitForIdle();
  for (const session of sessions) {
    const problem = await coverageProblems(manager, session);
    if (problem) coverage.push(`${session}: ${problem}`);
  }
  const differences = await differencesFromSystemOfRecord(manager, servers.postgres.url, sessions);
  printFigures(
    label,
    {
      ...figures,
      acknowledgedDuringOutage: duringOutage,
      summaries: await countSummaries(servers.pool),
      coverageProblems: coverage.length,
      quietDifferences: differences.length,
    },
    [...examples, ...coverage, ...differences],
  );
  expect(duringOutage).toBeGreaterThan(0);
  expect({
    lost: figures.lost,
    duplicated: figures.duplicated,
    outOfOrder: figures.outOfOrder,
    seqMismatch: figures.seqMismatch,
    unexpectedErrors: figures.unexpectedErrors,
    refused: figures.refused,
  }).toEqual({ lost: 0, duplicated: 0, outOfOrder: 0, seqMismatch: 0, unexpectedErrors: 0, refused: 0 });
  expect(examples).toEqual([]);
  expect(coverage).toEqual([]);
  expect(differences).toEqual([]);
}

describe("regression: Redis crashes and pauses under traffic", () => {
  it("Redis SIGKILLed and restarted empty: nothing lost, contexts rebuilt", async () => {
    await redisFaultUnderTraffic(
      "redis-sigkill",
      () => servers!.redis.kill(),
      () => servers!.redis.restart(),
    );
  });

  it("Redis paused with SIGSTOP and resumed: nothing lost, same answers", async () => {
    await redisFaultUnderTraffic(
      "redis-sigstop",
      async () => servers!.redis.pause(),
      async () => servers!.redis.resume(),
    );
  });
});
