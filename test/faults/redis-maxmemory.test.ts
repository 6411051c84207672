import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createMemoryManager } from "../../src/manager/create-memory-manager.js";
import { connectRedis, type RedisConnection } from "../../src/storage/redis-client.js";
import { cli } from "../cli/run-cli.js";
import { recordingLogger } from "../support/fixtures.js";
import { RedisServerProcess } from "../support/processes.js";
import { FaultServers, SMALL_SESSIONS, untilClosed } from "./support/environment.js";
import {
  checkTranscripts,
  countSummaries,
  differencesFromSystemOfRecord,
  NOTHING_WRONG,
  printFigures,
  storageFigures,
} from "./support/invariants.js";
import { httpClient, ReadLog, startTraffic, WriteLog } from "./support/traffic.js";

// Redis's production settings: what the service says about them at start-up, and what a Redis
// that is full under `noeviction` does to writes (it answers OOM to every write command): each
// write is still stored in PostgreSQL and acknowledged, reads are served from PostgreSQL while
// the Redis breaker is open, and once Redis has room again every context equals the transcript's.

const SESSIONS = 12;
const FULL_REDIS = ["--maxmemory", "1mb", "--maxmemory-policy", "noeviction"] as const;

let servers: FaultServers;

beforeAll(async () => {
  servers = await FaultServers.start(FULL_REDIS);
});

afterAll(async () => {
  await servers?.stop();
});

/** Writes 20 KB keys of no session until Redis answers OOM; returns their names. */
async function fillUntilOom(raw: RedisConnection): Promise<string[]> {
  const filler = "x".repeat(20_000);
  const keys: string[] = [];
  for (let i = 0; i < 1000; i++) {
    const key = `filler:${i}`;
    try {
      await raw.send(["SET", key, filler], { key });
      keys.push(key);
    } catch (error) {
      if (String(error).includes("OOM")) return keys;
      throw error;
    }
  }
  throw new Error("Redis never answered OOM");
}

describe("Redis at maxmemory 1mb with maxmemory-policy noeviction", () => {
  it("says at start-up what the settings mean here, as a warning", async () => {
    const logger = recordingLogger();
    const manager = await servers.openManager({ logger });
    await manager.close();
    const warning = logger.lines.find((line) => line.level === "warn" && line.message.includes("noeviction"));
    expect(warning?.details).toMatchObject({
      redis: {
        maxmemory: 1024 * 1024,
        maxmemory_policy: "noeviction",
        source: "CONFIG GET",
        appendonly: "no",
      },
    });
    expect(warning?.message).toContain("refuses writes (OOM)");
    expect(warning?.message).toContain("writes are stored in PostgreSQL and acknowledged");
    expect(logger.infos.join("\n")).not.toContain("refused CONFIG GET");
  });

  it("shows the settings in stats and inspect (CLI and HTTP)", async () => {
    const env = {
      DATABASE_URL: servers.postgres.url,
      REDIS_URL: servers.redis.url,
      MEMORY_KEY_PREFIX: servers.keyPrefix,
    };
    const manager = await servers.openManager({ sessionDefaults: SMALL_SESSIONS });
    await manager.addMessage("settings", { role: "user", content: "Which laptop is lightest?" });
    await manager.close();

    const inspect = await cli(env, "inspect", "settings");
    expect(inspect.code).toBe(0);
    expect(inspect.stdout).toContain(
      "Redis memory:      maxmemory 1mb, maxmemory-policy noeviction (when full",
    );
    const stats = await cli(env, "stats", "settings", "--json");
    expect(JSON.parse(stats.stdout).redis).toMatchObject({
      maxmemory: 1024 * 1024,
      maxmemory_policy: "noeviction",
    });
    const whole = await cli(env, "stats");
    expect(whole.stdout).toMatch(/maxmemory_policy\s+noeviction/);

    const { app } = await servers.openService();
    const response = await app.inject({ method: "GET", url: "/v1/sessions/settings/stats" });
    expect(response.json().redis).toMatchObject({ maxmemory: 1024 * 1024, maxmemory_policy: "noeviction" });
  });

  it("acknowledges every write while Redis answers OOM, serves reads, and is exact once Redis has room", async () => {
    const raw = await servers.rawRedis();
    const { app, memory } = await servers.openService();
    const opened: string[] = [];
    memory.circuitBreaker.redis.onStateChange((change) => {
      if (change.to === "open") opened.push(change.reason);
    });
    const fillers = await fillUntilOom(raw);
    const log = new WriteLog("oom");
    const reads = new ReadLog();
    const sessions = Array.from({ length: SESSIONS }, (_, i) => `oom-${i}`);
    const traffic = startTraffic(
      httpClient(app),
      sessions,
      log,
      { writers: 6, words: 20, readEvery: 2, maxWrites: 360 },
      reads,
    );
    await traffic.done;
    // Redis is still full: the writes above were refused by it, not let in.
    const refusal = await raw.send(["SET", "one-more", "x"]).then(
      () => "accepted",
      (error: unknown) => String(error),
    );
    const summaries = await countSummaries(servers.pool);

    // Room again (at 1mb, Redis's own overhead and the clients' buffers fill nearly all of it, so
    // the operator raises the limit): the breaker closes, and every buffer is rebuilt from the
    // transcript.
    await raw.send(["CONFIG", "SET", "maxmemory", "64mb"]);
    for (let i = 0; i < fillers.length; i += 100) await raw.send(["DEL", ...fillers.slice(i, i + 100)]);
    await untilClosed(memory, ["redis"]);
    // Summarization waited while Redis was full (its lease lives there) and gave up retrying; a
    // session's next write sets it going again.
    const client = httpClient(app);
    for (const session of sessions) await log.write(client, session);
    await memory.waitForIdle();
    const { figures, examples } = await checkTranscripts(servers.pool, log);
    const differences = await differencesFromSystemOfRecord(memory, servers.postgres.url, sessions);
    const summariesAfter = await countSummaries(servers.pool);
    printFigures(
      "redis full (noeviction, 1mb)",
      {
        ...figures,
        fillerKeys: fillers.length,
        breakerOpenings: opened.length,
        reads: reads.reads,
        inconsistentReads: reads.inconsistent,
        readErrors: reads.unexpected.length,
        summariesWhileFull: summaries,
        summariesAfter,
        quietDifferences: differences.length,
      },
      [...examples, ...reads.examples, ...reads.unexpected, ...differences],
    );
    expect(refusal).toContain("OOM");
    expect(opened.length).toBeGreaterThan(0);
    expect(summariesAfter).toBeGreaterThan(0);
    expect(storageFigures(figures)).toEqual({ acknowledged: 360 + SESSIONS, ...NOTHING_WRONG });
    expect({ inconsistentReads: reads.inconsistent, readErrors: reads.unexpected.length }).toEqual({
      inconsistentReads: 0,
      readErrors: 0,
    });
    expect(examples).toEqual([]);
    expect(differences).toEqual([]);
  });
});

describe("a Redis that refuses CONFIG", () => {
  let redis: RedisServerProcess;

  beforeAll(async () => {
    redis = await RedisServerProcess.start({
      args: ["--rename-command", "CONFIG", "", "--maxmemory", "2mb", "--maxmemory-policy", "volatile-lru"],
    });
  });

  afterAll(async () => {
    await redis?.stop();
  });

  async function startUpLines() {
    const logger = recordingLogger();
    const manager = await createMemoryManager({
      database: servers.postgres.url,
      redis: redis.url,
      logger,
      summarization: { idleFinalizeAfterMs: 0 },
    });
    await manager.close();
    return logger.lines;
  }

  it("says so once, reads the settings from INFO, and warns on volatile-lru only with keys it cannot evict", async () => {
    const quiet = await startUpLines();
    expect(quiet.filter((line) => line.message.includes("refused CONFIG GET"))).toHaveLength(1);
    const settings = quiet.find((line) => line.message.includes("volatile-lru"));
    expect(settings).toMatchObject({
      level: "info",
      details: {
        redis: { maxmemory: 2 * 1024 * 1024, maxmemory_policy: "volatile-lru", source: "INFO", save: null },
      },
    });

    const own = await connectRedis({ url: redis.url });
    await own.send(["SET", "someone-elses-key", "kept forever"]);
    await own.close();
    const crowded = await startUpLines();
    const warning = crowded.find((line) => line.message.includes("volatile-lru"));
    expect(warning?.level).toBe("warn");
    expect(warning?.message).toContain("1 keys without a TTL");
  });
});
