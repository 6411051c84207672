import { copyFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FaultServers, sleep } from "./support/environment.js";
import { checkTranscripts, differencesFromSystemOfRecord, printFigures } from "./support/invariants.js";
import { libraryClient, ReadLog, WriteLog } from "./support/traffic.js";

// Scenario 5 of the fault campaign: Redis restarted from an old snapshot. 10 messages to each of
// 20 sessions, an RDB snapshot (SAVE) kept aside, 10 more each, Redis SIGKILLed and restarted
// from the old snapshot, with no write in between. A Redis that restarted must not serve a buffer
// it cannot prove current: every context shows all 20 messages.
//
// Before the fix: 20 of 20 contexts (40 of 40 reads, two passes) served the old buffer from Redis
// (10 of the 20 acknowledged messages), and once quiet all 20 still differed from the transcript.

const SESSIONS = 20;
// Default session sizes: 20 short messages stay in the buffer, none summarized.
const DEFAULT_SESSIONS = {};

let servers: FaultServers;

beforeAll(async () => {
  servers = await FaultServers.start();
});

afterAll(async () => {
  await servers?.stop();
});

describe("scenario 5: Redis restarted from an old snapshot", () => {
  it("serves no buffer from before the snapshot's restart", async () => {
    const manager = await servers.openManager({ sessionDefaults: DEFAULT_SESSIONS });
    const client = libraryClient(manager);
    const log = new WriteLog("snapshot");
    const sessions = Array.from({ length: SESSIONS }, (_, i) => `snapshot-${i}`);
    const writeEach = (count: number) =>
      Promise.all(
        sessions.map(async (session) => {
          for (let i = 0; i < count; i++) expect(await log.write(client, session)).not.toBeNull();
        }),
      );
    await writeEach(10);
    // Served from Redis before the snapshot.
    for (const session of sessions) {
      expect((await manager.getContext(session)).buffer_info.source).toBe("redis");
    }
    const raw = await servers.rawRedis();
    expect(await raw.send(["SAVE"])).toBe("OK");
    const dump = join(servers.redis.dir, "dump.rdb");
    await copyFile(dump, `${dump}.old`);
    await writeEach(10);

    await servers.redis.kill();
    await copyFile(`${dump}.old`, dump);
    await servers.redis.restart();
    // Give the manager's client time to reconnect (it retries every 500 ms) without sending it
    // anything: the manager never saw the outage.
    await sleep(1500);

    const reads = new ReadLog();
    let stale = 0;
    let staleFromRedis = 0;
    for (let pass = 0; pass < 2; pass++) {
      for (const session of sessions) {
        const outcome = await reads.read(client, session);
        const acked = log.acks.get(session)!.map((record) => record.content);
        const shown =
          outcome.kind === "context" ? outcome.context.buffer_messages.map((m) => String(m.content)) : [];
        if (shown.join("\n") !== acked.join("\n")) {
          stale++;
          if (outcome.kind === "context" && outcome.context.buffer_info.source === "redis") staleFromRedis++;
        }
      }
    }
    const { figures, examples } = await checkTranscripts(servers.pool, log);
    const differences = await differencesFromSystemOfRecord(
      manager,
      servers.postgres.url,
      sessions,
      DEFAULT_SESSIONS,
    );
    printFigures(
      "Redis restarted from an old snapshot",
      {
        ...figures,
        contextReads: reads.reads,
        staleContexts: stale,
        staleFromRedis,
        inconsistentReads: reads.inconsistent,
        quietDifferences: differences.length,
      },
      [...examples, ...differences],
    );
    expect({ staleContexts: stale, inconsistentReads: reads.inconsistent }).toEqual({
      staleContexts: 0,
      inconsistentReads: 0,
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
