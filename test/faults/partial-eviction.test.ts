import { afterEach, describe, expect, it } from "vitest";
import type { RedisConnection } from "../../src/storage/redis-client.js";
import { seededRandom } from "../support/fixtures.js";
import { EVICTING_REDIS, FaultServers, sleep, untilClosed } from "./support/environment.js";
import {
  checkTranscripts,
  countSummaries,
  differencesFromSystemOfRecord,
  printFigures,
} from "./support/invariants.js";
import { httpClient, ReadLog, startTraffic, WriteLog } from "./support/traffic.js";

// Scenario 4 of the fault campaign: Redis loses part of a session's keys (only the buffer LIST,
// only the meta HASH, only the config or summary HASH), deleted on purpose between and during
// writes, and evicted for real by allkeys-lru under memory pressure. A committed write never
// answers 5xx; every context read is self-consistent; once quiet, every context equals the
// transcript's.
//
// Before the fix both failed. Single keys deleted (39 buffers, 39 metas, 39 configs, 32
// summaries; 70 summaries committed meanwhile): 201 of 627 context reads were inconsistent
// (message_count or total_tokens disagreeing with the messages returned), 3 reads answered 5xx,
// and once quiet 10 of 20 contexts differed from the transcript's. allkeys-lru at 2 MB (1,028 keys
// evicted): 1 committed write answered 500, 278 of 767 reads inconsistent, 20 reads 5xx, 13 of 20
// contexts wrong once quiet. (No write was lost: the transcript was always right.)

const SESSIONS = 20;
const SUFFIXES = ["buf", "meta", "cfg", "sum"] as const;

let servers: FaultServers | undefined;

afterEach(async () => {
  await servers?.stop();
  servers = undefined;
});

/** Deletes one key of one session at a time (cycling through the suffixes) until stopped. */
function startDeleting(raw: RedisConnection, pauseMs: number) {
  let running = true;
  const deleted: Record<string, number> = { buf: 0, meta: 0, cfg: 0, sum: 0 };
  const random = seededRandom(4);
  const done = (async () => {
    let turn = 0;
    while (running) {
      const suffix = SUFFIXES[turn++ % SUFFIXES.length]!;
      const keys = await servers!.sessionKeys(raw, suffix);
      if (keys.length > 0) {
        const key = keys[Math.floor(random() * keys.length)]!;
        deleted[suffix]! += Number(await raw.send(["DEL", key], { key }));
      }
      await sleep(pauseMs);
    }
  })();
  return {
    deleted,
    async stop() {
      running = false;
      await done;
    },
  };
}

/** Fills Redis with keys of no session, so that allkeys-lru evicts the sessions' keys too. */
function startFilling(raw: RedisConnection) {
  let running = true;
  let written = 0;
  const filler = "x".repeat(20_000);
  const done = (async () => {
    while (running) {
      const key = `filler:${written++}`;
      await raw.send(["SET", key, filler], { key }).catch(() => {});
      await sleep(2);
    }
  })();
  return {
    get written() {
      return written;
    },
    async stop() {
      running = false;
      await done;
    },
  };
}

async function underKeyLoss(
  redisArgs: readonly string[],
  label: string,
  fault: (raw: RedisConnection) => {
    stop(): Promise<void>;
  },
) {
  servers = await FaultServers.start(redisArgs);
  const { app, memory } = await servers.openService();
  await servers.warmUp(memory);
  const raw = await servers.rawRedis();
  const client = httpClient(app);
  const log = new WriteLog(label);
  const reads = new ReadLog();
  const sessions = Array.from({ length: SESSIONS }, (_, i) => `partial-${i}`);
  const traffic = startTraffic(client, sessions, log, { writers: 5, words: 20, readEvery: 1 }, reads);
  await sleep(500);
  const running = fault(raw);
  await sleep(5000);
  const summariesDuringFault = await countSummaries(servers.pool);
  await running.stop();
  await sleep(300);
  await traffic.stop();
  await untilClosed(memory);
  const { figures, examples } = await checkTranscripts(servers.pool, log);
  const differences = await differencesFromSystemOfRecord(memory, servers.postgres.url, sessions);
  const stats = await memory.redisStats();
  const serverErrors = log.unexpected.filter((u) => (u.status ?? 500) >= 500).length;
  printFigures(
    label,
    {
      ...figures,
      writes5xx: serverErrors,
      reads: reads.reads,
      inconsistentReads: reads.inconsistent,
      readErrors: reads.unexpected.length,
      evictedKeys: stats.evicted_keys ?? "?",
      summariesDuringFault,
      quietDifferences: differences.length,
    },
    [...examples, ...differences],
  );
  if (log.unexpected.length > 0)
    console.log(`[faults] ${label}: first unexpected write answer ${JSON.stringify(log.unexpected[0])}`);
  return { figures, examples, differences, log, reads, serverErrors };
}

function expectInvariants(result: Awaited<ReturnType<typeof underKeyLoss>>) {
  const { figures, log, reads, differences, examples } = result;
  expect({
    writes5xx: result.serverErrors,
    unexpectedWriteErrors: log.unexpected.length,
    inconsistentReads: reads.inconsistent,
    readErrors: reads.unexpected.length,
    lost: figures.lost,
    duplicated: figures.duplicated,
    outOfOrder: figures.outOfOrder,
    seqMismatch: figures.seqMismatch,
  }).toEqual({
    writes5xx: 0,
    unexpectedWriteErrors: 0,
    inconsistentReads: 0,
    readErrors: 0,
    lost: 0,
    duplicated: 0,
    outOfOrder: 0,
    seqMismatch: 0,
  });
  expect(reads.examples).toEqual([]);
  expect(examples).toEqual([]);
  expect(differences).toEqual([]);
}

describe("scenario 4: partial eviction of a session's keys", () => {
  it("single keys deleted between and during writes: no 5xx, reads consistent, rebuilt once quiet", async () => {
    let deleting: ReturnType<typeof startDeleting> | undefined;
    const result = await underKeyLoss([], "partial eviction (single keys deleted)", (raw) => {
      deleting = startDeleting(raw, 3);
      return deleting;
    });
    console.log(`[faults] partial eviction: deleted ${JSON.stringify(deleting!.deleted)}`);
    expectInvariants(result);
  });

  it("real allkeys-lru pressure: no 5xx, reads consistent, rebuilt once quiet", async () => {
    const result = await underKeyLoss(
      ["--maxmemory", "2mb", ...EVICTING_REDIS],
      "partial eviction (allkeys-lru, 2mb)",
      startFilling,
    );
    expectInvariants(result);
  });
});
