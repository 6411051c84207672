import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CircuitState } from "../../src/resilience/index.js";
import { connectRedis, type RedisConnection } from "../../src/storage/redis-client.js";
import { freePort, RedisServerProcess, waitForPort } from "../support/processes.js";
import { FaultServers, sleep, until } from "./support/environment.js";
import { checkTranscripts, differencesFromSystemOfRecord, printFigures } from "./support/invariants.js";
import { libraryClient, startTraffic, WriteLog } from "./support/traffic.js";

// Redis behind Sentinel (REDIS_SENTINELS): a primary, a replica and a sentinel of the test's own.
// The primary is SIGKILLed under traffic; the sentinel promotes the replica. Writes keep being
// acknowledged (through PostgreSQL while the breaker is open), nothing is lost, duplicated or
// reordered, and the new primary serves every session, rebuilt from the transcript, within
// seconds.

const NAME = "swm-primary";

/** A redis-server in sentinel mode, monitoring `primaryPort` under NAME with quorum 1. */
class SentinelProcess {
  readonly port: number;
  readonly dir: string;
  #child: ChildProcess | null = null;

  private constructor(port: number, dir: string) {
    this.port = port;
    this.dir = dir;
  }

  static async start(primaryPort: number): Promise<SentinelProcess> {
    const sentinel = new SentinelProcess(await freePort(), await mkdtemp(join(tmpdir(), "swm-sentinel-")));
    const config = join(sentinel.dir, "sentinel.conf");
    await writeFile(
      config,
      [
        `port ${sentinel.port}`,
        "bind 127.0.0.1",
        `sentinel monitor ${NAME} 127.0.0.1 ${primaryPort} 1`,
        `sentinel down-after-milliseconds ${NAME} 1000`,
        `sentinel failover-timeout ${NAME} 5000`,
        `sentinel parallel-syncs ${NAME} 1`,
        "",
      ].join("\n"),
    );
    sentinel.#child = spawn("redis-server", [config, "--sentinel"], { stdio: "ignore" });
    await waitForPort(sentinel.port, 10_000);
    return sentinel;
  }

  async stop(): Promise<void> {
    const child = this.#child;
    if (child && child.exitCode === null) {
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGKILL");
      await exited;
    }
    await rm(this.dir, { recursive: true, force: true });
  }
}

describe("Redis behind Sentinel", () => {
  let servers: FaultServers;
  let replica: RedisServerProcess;
  let sentinel: SentinelProcess;
  let sentinelClient: RedisConnection;

  beforeAll(async () => {
    servers = await FaultServers.start();
    replica = await RedisServerProcess.start({
      args: ["--replicaof", "127.0.0.1", String(servers.redis.port)],
    });
    sentinel = await SentinelProcess.start(servers.redis.port);
    sentinelClient = await connectRedis({
      url: `redis://127.0.0.1:${sentinel.port}`,
      commandTimeoutMs: 5000,
    });
    await until(async () => {
      const replicas = (await sentinelClient.send(["SENTINEL", "REPLICAS", NAME])) as unknown[];
      return replicas.length === 1;
    }, "the sentinel knows the replica");
  });
  afterAll(async () => {
    await sentinelClient?.close();
    await sentinel?.stop();
    await replica?.stop();
    await servers?.stop();
  });

  async function primaryPort(): Promise<number> {
    const reply = (await sentinelClient.send(["SENTINEL", "GET-MASTER-ADDR-BY-NAME", NAME])) as string[];
    return Number(reply[1]);
  }

  it("a read that passes its write's seq never misses it, and replicas serve such reads", async () => {
    const manager = await servers.openManager({
      redis: undefined,
      env: { REDIS_SENTINELS: `127.0.0.1:${sentinel.port}`, REDIS_SENTINEL_NAME: NAME },
    });
    const replicaReads = async () => {
      const raw = await connectRedis({ url: replica.url, commandTimeoutMs: 5000 });
      try {
        const [stats] = await raw.info("commandstats");
        return [...(stats ?? "").matchAll(/cmdstat_(?:evalsha_ro|eval_ro):calls=(\d+)/g)].reduce(
          (sum, match) => sum + Number(match[1]),
          0,
        );
      } finally {
        await raw.close();
      }
    };
    const readsBefore = await replicaReads();
    const replicaLink = await connectRedis({ url: replica.url, commandTimeoutMs: 5000 });
    await until(
      async () => ((await replicaLink.info("replication"))[0] ?? "").includes("master_link_status:up"),
      "the replica is in sync",
      20_000,
    );
    await replicaLink.close();
    // For two seconds of the run the replica stops following the primary (REPLICAOF NO ONE, then
    // back): it keeps serving what it had, behind the primary by whatever was written meanwhile.
    const detach = await connectRedis({ url: replica.url, commandTimeoutMs: 5000 });
    const cuts = (async () => {
      await sleep(1500);
      await detach.send(["REPLICAOF", "NO", "ONE"]);
      await sleep(2000);
      await detach.send(["REPLICAOF", "127.0.0.1", String(servers.redis.port)]);
    })();
    const missed: string[] = [];
    let servedByReplica = 0;
    try {
      const until5s = Date.now() + 5_000;
      for (let index = 0; index < 300 || Date.now() < until5s; index++) {
        const session = `replica-${index % 5}`;
        const content = `message ${index}`;
        const [written] = await manager.addMessages(session, [{ role: "user", content }]);
        const seq = written?.seq ?? 0;
        const context = await manager.getContext(session, { min_seq: seq });
        const last = context.buffer_messages.at(-1);
        if (context.buffer_info.source === "replica") servedByReplica++;
        if (context.buffer_info.last_seq < seq || last?.content !== content) missed.push(`${session}@${seq}`);
      }
    } finally {
      await cuts;
      await detach.close();
    }
    expect(missed).toEqual([]);
    expect(await replicaReads()).toBeGreaterThan(readsBefore + 30);
    expect(servedByReplica).toBeGreaterThan(30);
    await manager.close();
  });

  it("keeps acknowledging through a failover, loses nothing, and the new primary serves within seconds", async () => {
    const manager = await servers.openManager({
      redis: undefined,
      env: { REDIS_SENTINELS: `127.0.0.1:${sentinel.port}`, REDIS_SENTINEL_NAME: NAME },
    });
    await servers.warmUp(manager);
    const log = new WriteLog("sentinel");
    const sessions = Array.from({ length: 6 }, (_, index) => `sentinel-${index}`);
    const traffic = startTraffic(libraryClient(manager), sessions, log, {
      writers: 3,
      words: 20,
      readEvery: 3,
      pauseMs: 2,
    });
    await until(() => log.acknowledged > 100, "some traffic");
    const killedAt = Date.now();
    const before = log.acknowledged;
    await servers.redis.kill();
    await until(
      async () => (await primaryPort()) === replica.port,
      "the sentinel promotes the replica",
      30_000,
    );
    const promotedAfterMs = Date.now() - killedAt;
    await until(
      () => manager.circuitBreaker.redis.getState() === CircuitState.CLOSED && log.acknowledged > before + 50,
      "the new primary serves",
      30_000,
    );
    const servingAfterMs = Date.now() - killedAt;
    await sleep(1000);
    await traffic.stop();
    const { figures, examples } = await checkTranscripts(servers.pool, log);
    const differences = await differencesFromSystemOfRecord(manager, servers.postgres.url, sessions);
    printFigures(
      "sentinel failover",
      { ...figures, promotedAfterMs, servingAfterMs, quietDifferences: differences.length },
      [...examples, ...differences],
    );
    expect({
      lost: figures.lost,
      duplicated: figures.duplicated,
      outOfOrder: figures.outOfOrder,
      unexpectedErrors: figures.unexpectedErrors,
      refused: figures.refused,
    }).toEqual({ lost: 0, duplicated: 0, outOfOrder: 0, unexpectedErrors: 0, refused: 0 });
    expect(examples).toEqual([]);
    expect(differences).toEqual([]);
    // The contexts were served by the new primary: it holds the sessions' buffers now.
    const promoted = await connectRedis({ url: replica.url, commandTimeoutMs: 5000 });
    try {
      const buffers = await promoted.scanKeys(`${servers.keyPrefix}:{default:sentinel-*}:buf`);
      expect(buffers.length).toBe(sessions.length);
    } finally {
      await promoted.close();
    }
  });
});
