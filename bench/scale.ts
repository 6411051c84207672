/**
 * `npm run bench -- --shards N [--replicas]`: the chat workload of workload.bench.ts through one
 * Redis, through N shards (REDIS_URLS) and, with --replicas, through Sentinel with a primary and 2
 * replicas (REDIS_SENTINELS), reads passing their last write's seq (min_seq) and, separately, with
 * MEMORY_READ_FROM_REPLICAS=eventual. Every Redis here is a redis-server of the bench's own on a
 * free port (and a sentinel of its own); PostgreSQL is a scratch database at BENCH_DATABASE_URL.
 *
 * The configurations run in turn, round after round (BENCH_ROUNDS, default 3; each round starts
 * with the next one), so that a change in the machine's load falls on all of them alike; the load
 * average is printed before each run and the figures are the medians over the rounds, with ratios
 * to 1 shard. On a shared machine single runs vary by 2x: read the medians, and the loads.
 *
 * Be careful what the ratios mean. Everything here (the Node process driving the workload, every
 * redis-server, PostgreSQL) shares the machine's cores: on a 2-core machine more shards cannot add
 * CPU, and each write is a durable PostgreSQL commit whatever the Redis layout, so the ratios stay
 * near 1 (or below it: more processes to schedule). Shards and replicas raise what Redis can
 * serve when each has cores of its own; this bench shows what they cost or save on this machine,
 * no more.
 */
import { loadavg } from "node:os";
import pino from "pino";
import { connectRedis, createMemoryManager, type MemoryManager } from "../src/index.js";
import { RedisServerProcess, SentinelProcess } from "../test/support/processes.js";
import { createScratchDatabase } from "./scratch-database.js";
import { chatTurn, ms, seeded, summarize } from "./workload.js";

const SENTINEL_NAME = "bench-primary";

interface Shape {
  sessions: number;
  turns: number;
  concurrency: number;
}

interface Configuration {
  name: string;
  open(): Promise<MemoryManager>;
  /** Reads pass the seq of the session's last write (min_seq). */
  minSeq: boolean;
}

interface Run {
  opsPerSecond: number;
  writeP50: number;
  writeP95: number;
  readP50: number;
  readP95: number;
  replicaReads: number;
  reads: number;
}

/** `concurrency` chats at once, each session a chat of `turns` turns: write, read, write. */
async function drive(memory: MemoryManager, shape: Shape, prefix: string, minSeq: boolean): Promise<Run> {
  const writes: number[] = [];
  const reads: number[] = [];
  let replicaReads = 0;
  let next = 0;
  const started = performance.now();
  const worker = async () => {
    while (next < shape.sessions) {
      const index = next++;
      const session = `${prefix}-${index}`;
      const random = seeded(index + 1);
      for (let turn = 0; turn < shape.turns; turn++) {
        const [user, assistant] = chatTurn(random, turn);
        let t = performance.now();
        const [written] = await memory.addMessages(session, [user]);
        writes.push(performance.now() - t);
        t = performance.now();
        const context = await memory.getContext(
          session,
          minSeq && written ? { min_seq: written.seq } : undefined,
        );
        reads.push(performance.now() - t);
        if (context.buffer_info.source === "replica") replicaReads++;
        t = performance.now();
        await memory.addMessages(session, [assistant]);
        writes.push(performance.now() - t);
      }
    }
  };
  await Promise.all(Array.from({ length: shape.concurrency }, worker));
  const seconds = (performance.now() - started) / 1000;
  const write = summarize(writes);
  const read = summarize(reads);
  return {
    opsPerSecond: (writes.length + reads.length) / seconds,
    writeP50: write.p50,
    writeP95: write.p95,
    readP50: read.p50,
    readP95: read.p95,
    replicaReads,
    reads: reads.length,
  };
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? (sorted[middle] ?? 0) : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2;
};

const load = () =>
  loadavg()
    .map((value) => value.toFixed(2))
    .join(" ");

export async function runScaleBench(options: {
  shards: number;
  replicas: boolean;
  adminUrl: string;
  shape: Shape;
  rounds: number;
}): Promise<void> {
  const { shards, replicas, adminUrl, shape, rounds } = options;
  const started: { stop(): Promise<void> }[] = [];
  const scratch = await createScratchDatabase(adminUrl, "swm_bench_scale");
  try {
    const single = await RedisServerProcess.start();
    started.push(single);
    const shardServers: RedisServerProcess[] = [];
    for (let i = 0; i < shards; i++) shardServers.push(await RedisServerProcess.start());
    started.push(...shardServers);
    const common = {
      database: scratch.url,
      summarization: { idleFinalizeAfterMs: 0 },
      logger: pino({ level: "warn" }),
    };
    const configurations: Configuration[] = [
      {
        name: "1 shard",
        minSeq: false,
        open: () => createMemoryManager({ ...common, redis: single.url, env: {}, keyPrefix: "one" }),
      },
    ];
    if (shards > 1) {
      configurations.push({
        name: `${shards} shards`,
        minSeq: false,
        open: () =>
          createMemoryManager({
            ...common,
            env: { REDIS_URLS: shardServers.map((server) => server.url).join(",") },
            keyPrefix: "shards",
          }),
      });
    }
    if (replicas) {
      const primary = await RedisServerProcess.start();
      started.push(primary);
      const copies: RedisServerProcess[] = [];
      for (let i = 0; i < 2; i++) {
        copies.push(
          await RedisServerProcess.start({ args: ["--replicaof", "127.0.0.1", String(primary.port)] }),
        );
      }
      started.push(...copies);
      const sentinel = await SentinelProcess.start(primary.port, SENTINEL_NAME);
      started.unshift(sentinel);
      await waitForReplicas(copies);
      const env = { REDIS_SENTINELS: `127.0.0.1:${sentinel.port}`, REDIS_SENTINEL_NAME: SENTINEL_NAME };
      configurations.push(
        {
          name: "Sentinel, 2 replicas, reads pass min_seq",
          minSeq: true,
          open: () => createMemoryManager({ ...common, env, keyPrefix: "sentinel" }),
        },
        {
          name: "Sentinel, 2 replicas, MEMORY_READ_FROM_REPLICAS=eventual",
          minSeq: false,
          open: () =>
            createMemoryManager({
              ...common,
              env: { ...env, MEMORY_READ_FROM_REPLICAS: "eventual" },
              keyPrefix: "eventual",
            }),
        },
      );
    }

    console.log(
      `scale: ${shape.sessions} sessions x ${shape.turns} turns, ${shape.concurrency} at once (write, context read, write per turn; latencies under that load); ` +
        `${rounds} rounds, the configurations in turn; every write commits to PostgreSQL`,
    );
    const memories: MemoryManager[] = [];
    try {
      for (const [index, configuration] of configurations.entries()) {
        const memory = await configuration.open();
        memories.push(memory);
        // Warm-up: connections, scripts on every server, JIT.
        await drive(
          memory,
          { ...shape, sessions: shape.concurrency, turns: 5 },
          `warm-${index}`,
          configuration.minSeq,
        );
        await memory.waitForIdle();
      }
      const runs = configurations.map(() => [] as Run[]);
      for (let round = 0; round < rounds; round++) {
        // Each round starts one configuration later, so that none always runs first (after the
        // warm-ups) or last.
        for (let turn = 0; turn < configurations.length; turn++) {
          const index = (round + turn) % configurations.length;
          const configuration = configurations[index] as Configuration;
          const memory = memories[index] as MemoryManager;
          console.log(`  round ${round + 1}, ${configuration.name}: load average ${load()}`);
          // Sessions of each configuration's own: they share the PostgreSQL database.
          const run = await drive(memory, shape, `c${index}-r${round}`, configuration.minSeq);
          await memory.waitForIdle();
          console.log(
            `    ${Math.round(run.opsPerSecond)} ops/s; write p50 ${ms(run.writeP50)} p95 ${ms(run.writeP95)} ms; ` +
              `read p50 ${ms(run.readP50)} p95 ${ms(run.readP95)} ms` +
              (run.replicaReads ? `; ${run.replicaReads} of ${run.reads} reads from a replica` : ""),
          );
          runs[index]?.push(run);
        }
      }
      const baseline = median((runs[0] ?? []).map((run) => run.opsPerSecond));
      console.table(
        configurations.map((configuration, index) => {
          const of = (pick: (run: Run) => number) => median((runs[index] ?? []).map(pick));
          return {
            configuration: configuration.name,
            "ops/s (median)": Math.round(of((run) => run.opsPerSecond)),
            "/ 1 shard": (of((run) => run.opsPerSecond) / baseline).toFixed(2),
            "write p50 ms": ms(of((run) => run.writeP50)),
            "write p95 ms": ms(of((run) => run.writeP95)),
            "read p50 ms": ms(of((run) => run.readP50)),
            "read p95 ms": ms(of((run) => run.readP95)),
            "reads from replicas": `${Math.round((100 * of((run) => run.replicaReads)) / of((run) => run.reads))}%`,
          };
        }),
      );
      console.log(
        `load average after: ${load()}. All servers share this machine's cores; ratios near 1 mean the ` +
          "layout costs nothing here, not that it adds capacity (see the comment at the top of bench/scale.ts).",
      );
    } finally {
      for (const memory of memories) await memory.close();
    }
  } finally {
    for (const server of started) await server.stop().catch(() => {});
    await scratch.drop();
  }
}

/** Both replicas report their link to the primary up. */
async function waitForReplicas(copies: RedisServerProcess[]): Promise<void> {
  for (const copy of copies) {
    const link = await connectRedis({ url: copy.url });
    try {
      const deadline = Date.now() + 20_000;
      while (!((await link.info("replication"))[0] ?? "").includes("master_link_status:up")) {
        if (Date.now() > deadline) throw new Error(`the replica on ${copy.port} did not sync`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    } finally {
      await link.close();
    }
  }
}
