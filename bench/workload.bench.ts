/**
 * Replays a realistic chat workload through the library and prints latency percentiles, ops/s
 * and the ratio to the Memory Manager API specification's SLAs (write p95 10 ms, read p95 5 ms).
 *
 * 50 sessions x 60 turns; each turn adds the user message, reads the context (as the orchestrator
 * does before calling the model), then adds the assistant's reply. Modes: Redis + PostgreSQL
 * (the production path), PostgreSQL alone, and the embedded default.
 *
 * Env: BENCH_REDIS_URL (default redis://127.0.0.1:6379), BENCH_DATABASE_URL (default
 * postgres://postgres@127.0.0.1:5432/test; a scratch database is created and dropped),
 * BENCH_SESSIONS (50), BENCH_TURNS (60), BENCH_CONCURRENCY (16), BENCH_ROUNDS (3) and
 * BENCH_FLOOR_PAIRS (1000) for the comparison with the floor (see floorComparison).
 *
 * `--shards N` and `--replicas` (`npm run bench -- --shards 3 --replicas`) run the same workload
 * through one Redis, N shards and Sentinel with 2 replicas instead, each on redis-servers of the
 * bench's own, and print throughput as ratios to 1 shard (bench/scale.ts; BENCH_ROUNDS, 3).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import pg from "pg";
import { connectRedis, createMemoryManager, type MemoryManager, type Summarizer } from "../src/index.js";
import { PostgresDatabase } from "../src/storage/database.js";
import { Transcript } from "../src/storage/transcript.js";
import { chatTurn, ms, seeded, summarize } from "./workload.js";

const SESSIONS = Number(process.env.BENCH_SESSIONS ?? 50);
const TURNS = Number(process.env.BENCH_TURNS ?? 60);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 16);
const REDIS_URL = process.env.BENCH_REDIS_URL ?? "redis://127.0.0.1:6379";
const ADMIN_URL = process.env.BENCH_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const SLA = { writeP95: 10, readP95: 5 };
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const FLOOR_PAIRS = Number(process.env.BENCH_FLOOR_PAIRS ?? 1000);

interface Samples {
  write: number[];
  read: number[];
}

async function replay(
  memory: MemoryManager,
  concurrency: number,
  prefix: string,
): Promise<{ samples: Samples; seconds: number; ops: number }> {
  const samples: Samples = { write: [], read: [] };
  let next = 0;
  let ops = 0;
  const started = performance.now();
  async function worker() {
    while (next < SESSIONS) {
      const session = `${prefix}-${next++}`;
      const random = seeded(next);
      for (let turn = 0; turn < TURNS; turn++) {
        const [user, assistant] = chatTurn(random, turn);
        let t = performance.now();
        await memory.addMessage(session, user);
        samples.write.push(performance.now() - t);
        t = performance.now();
        await memory.getContext(session);
        samples.read.push(performance.now() - t);
        t = performance.now();
        await memory.addMessage(session, assistant);
        samples.write.push(performance.now() - t);
        ops += 3;
      }
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { samples, seconds: (performance.now() - started) / 1000, ops };
}

function report(mode: string, sequential: Samples, concurrent: { seconds: number; ops: number }) {
  const write = summarize(sequential.write);
  const read = summarize(sequential.read);
  return {
    mode,
    "write p50 ms": ms(write.p50),
    "write p95 ms": ms(write.p95),
    "write p99 ms": ms(write.p99),
    "read p50 ms": ms(read.p50),
    "read p95 ms": ms(read.p95),
    "read p99 ms": ms(read.p99),
    [`ops/s (${CONCURRENCY} sessions at once)`]: Math.round(concurrent.ops / concurrent.seconds),
    "write p95 / SLA": (write.p95 / SLA.writeP95).toFixed(3),
    "read p95 / SLA": (read.p95 / SLA.readP95).toFixed(3),
  };
}

async function runMode(mode: string, open: () => Promise<MemoryManager>) {
  const memory = await open();
  try {
    // Warm-up: connections, scripts, JIT, token cache of the fixed phrases.
    await replay(memory, 1, `warm-${Date.now()}`).catch(() => {});
    const sequential = await replay(memory, 1, `seq-${Date.now()}`);
    const concurrent = await replay(memory, CONCURRENCY, `conc-${Date.now()}`);
    return report(mode, sequential.samples, concurrent);
  } finally {
    await memory.close();
  }
}

/**
 * Summarization overhead without the model: lease, reads, commit and trim around an instant
 * summarizer, measured as job time minus summarizer time, over many triggered jobs.
 */
async function summarizationOverhead(url: string, keyPrefix: string) {
  const overheads: number[] = [];
  const instant: Summarizer = {
    name: "extractive",
    async summarize(request) {
      const started = performance.now();
      const text = `Summary through seq ${request.messages.at(-1)?.seq}.`;
      return {
        text,
        summarizer: "extractive",
        model: null,
        inputTokens: 0,
        outputTokens: request.countTokens(text),
        merged: false,
        latencyMs: performance.now() - started,
      };
    },
  };
  const memory = await createMemoryManager({
    database: url,
    redis: REDIS_URL,
    keyPrefix,
    summarizer: instant,
    summarization: {
      concurrency: 1,
      idleFinalizeAfterMs: 0,
      onJob: (outcome, elapsedMs) => {
        if (outcome.kind === "committed") overheads.push(elapsedMs - outcome.summarizerMs);
      },
    },
  });
  try {
    const random = seeded(4242);
    for (let session = 0; session < 20; session++) {
      for (let turn = 0; turn < 30; turn++) {
        for (const message of chatTurn(random, turn)) await memory.addMessage(`sum-${session}`, message);
        await memory.waitForIdle();
      }
    }
  } finally {
    await memory.close();
  }
  const stats = summarize(overheads.slice(5));
  return {
    jobs: stats.n,
    "p50 ms": ms(stats.p50),
    "p95 ms": ms(stats.p95),
    "p99 ms": ms(stats.p99),
    "p95 / 200 ms": (stats.p95 / 200).toFixed(4),
  };
}

/** The server's own floor: a one-row durable INSERT (commit with WAL flush), on the same database. */
async function durableInsertFloor(url: string) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query("CREATE TABLE bench_floor (x int)");
  const samples: number[] = [];
  for (let i = 0; i < 2000; i++) {
    const t = performance.now();
    await client.query("INSERT INTO bench_floor VALUES ($1)", [i]);
    samples.push(performance.now() - t);
  }
  await client.query("DROP TABLE bench_floor");
  await client.end();
  const floor = summarize(samples);
  return {
    mode: "floor: bare durable INSERT",
    "write p50 ms": ms(floor.p50),
    "write p95 ms": ms(floor.p95),
    "write p99 ms": ms(floor.p99),
    "write p95 / SLA": (floor.p95 / SLA.writeP95).toFixed(3),
  };
}

/**
 * The library against its floor, one operation at a time and interleaved so that both see the same
 * moment of this shared machine: a durable `addMessage` against one durable INSERT of the same
 * JSON plus one EVALSHA that pushes it to a list (the write's round trips with no logic), and a
 * `getContext` against one EVALSHA that returns the list's last 30 entries (the read's round trip).
 * Between the two, the product's own append statement (`Transcript.append`, the message counted
 * beforehand) plus the same EVALSHA: what the transcript keeps per message costs over the floor's
 * INSERT, without the library's logic. ROUNDS rounds of FLOOR_PAIRS; medians of the rounds' p50/p95.
 */
async function floorComparison(url: string, keyPrefix: string) {
  const memory = await createMemoryManager({ database: url, redis: REDIS_URL, keyPrefix });
  const database = new PostgresDatabase({ connectionString: url });
  const transcript = new Transcript(database);
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query("CREATE TABLE bench_floor_messages (session text, seq bigserial, body jsonb)");
  const redis = await connectRedis({ url: REDIS_URL });
  const push = String(await redis.send(["SCRIPT", "LOAD", "return redis.call('RPUSH', KEYS[1], ARGV[1])"]));
  const range = String(await redis.send(["SCRIPT", "LOAD", "return redis.call('LRANGE', KEYS[1], -30, -1)"]));
  const rounds: Record<
    "write" | "statement" | "writeFloor" | "read" | "readFloor",
    { p50: number; p95: number }
  >[] = [];
  try {
    for (let round = 0; round < ROUNDS; round++) {
      const samples = {
        write: [] as number[],
        statement: [] as number[],
        writeFloor: [] as number[],
        read: [] as number[],
        readFloor: [] as number[],
      };
      const random = seeded(round + 1);
      const session = `floor-${round}-${Date.now()}`;
      const key = `${keyPrefix}:floor:${session}`;
      for (let pair = 0; pair < FLOOR_PAIRS; pair++) {
        const [message] = chatTurn(random, pair);
        let t = performance.now();
        await memory.addMessage(session, message);
        samples.write.push(performance.now() - t);
        t = performance.now();
        const json = JSON.stringify(message);
        await client.query("INSERT INTO bench_floor_messages (session, body) VALUES ($1, $2)", [
          session,
          json,
        ]);
        await redis.send(["EVALSHA", push, "1", key, json]);
        samples.writeFloor.push(performance.now() - t);
        const entry = {
          message,
          json,
          tokens: memory.tokenCounter.countMessageTokens(message),
          tokensEstimated: false,
        };
        t = performance.now();
        await transcript.append({ tenant: "default", sessionId: `${session}-statement` }, [entry]);
        await redis.send(["EVALSHA", push, "1", `${key}-statement`, json]);
        samples.statement.push(performance.now() - t);
        t = performance.now();
        await memory.getContext(session);
        samples.read.push(performance.now() - t);
        t = performance.now();
        await redis.send(["EVALSHA", range, "1", key]);
        samples.readFloor.push(performance.now() - t);
      }
      rounds.push({
        write: summarize(samples.write.slice(FLOOR_PAIRS / 10)),
        statement: summarize(samples.statement.slice(FLOOR_PAIRS / 10)),
        writeFloor: summarize(samples.writeFloor.slice(FLOOR_PAIRS / 10)),
        read: summarize(samples.read.slice(FLOOR_PAIRS / 10)),
        readFloor: summarize(samples.readFloor.slice(FLOOR_PAIRS / 10)),
      });
    }
  } finally {
    await client.query("DROP TABLE bench_floor_messages");
    await client.end();
    await redis.close();
    await database.close();
    await memory.close();
  }
  const median = (values: number[]) =>
    [...values].sort((a, b) => a - b)[Math.floor((values.length - 1) / 2)] ?? 0;
  const of = (name: keyof (typeof rounds)[number], field: "p50" | "p95") =>
    median(rounds.map((r) => r[name][field]));
  const row = (
    label: string,
    name: "write" | "statement" | "read",
    floor: "writeFloor" | "readFloor",
    target: number | null,
  ) => ({
    operation: label,
    "p50 ms": ms(of(name, "p50")),
    "floor p50 ms": ms(of(floor, "p50")),
    "p95 ms": ms(of(name, "p95")),
    "floor p95 ms": ms(of(floor, "p95")),
    "p50 ratio": (of(name, "p50") / of(floor, "p50")).toFixed(2),
    "p95 ratio": (of(name, "p95") / of(floor, "p95")).toFixed(2),
    target: target === null ? "" : `<= ${target}`,
  });
  return [
    row("addMessage (durable) vs INSERT + EVALSHA", "write", "writeFloor", 1.5),
    row("its append statement + EVALSHA vs INSERT + EVALSHA", "statement", "writeFloor", null),
    row("getContext vs one EVALSHA", "read", "readFloor", 2),
  ];
}

async function deleteKeys(prefix: string) {
  const redis = await connectRedis({ url: REDIS_URL });
  const keys = await redis.scanKeys(`${prefix}:*`);
  for (let i = 0; i < keys.length; i += 500) await redis.send(["DEL", ...keys.slice(i, i + 500)]);
  await redis.close();
}

async function main() {
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  const dbName = `swm_bench_${Date.now().toString(36)}`;
  await admin.query(`CREATE DATABASE ${dbName}`);
  const url = new URL(ADMIN_URL);
  url.pathname = `/${dbName}`;
  const keyPrefix = `bench${Date.now().toString(36)}`;
  const dataDir = await mkdtemp(join(tmpdir(), "swisper-bench-"));
  const rows = [];
  try {
    console.log(
      `workload: ${SESSIONS} sessions x ${TURNS} turns (user ~40 tokens, assistant ~220), latencies from one client in sequence`,
    );
    rows.push(
      await runMode("Redis + PostgreSQL", () =>
        createMemoryManager({ database: url.toString(), redis: REDIS_URL, keyPrefix }),
      ),
    );
    rows.push(
      await runMode("PostgreSQL only", () => createMemoryManager({ database: url.toString(), redis: false })),
    );
    rows.push(
      await runMode("embedded PGlite", () => createMemoryManager({ env: { MEMORY_DATA_DIR: dataDir } })),
    );
    rows.push(await durableInsertFloor(url.toString()));
    console.table(rows);
    console.log(
      "Every write commits to PostgreSQL before it is acknowledged (synchronous_commit as the server has it), " +
        "so write latency cannot go below the floor row; the difference is this library's own cost.",
    );
    console.log(
      `\nthe library against its floor (Redis + PostgreSQL, one operation at a time, interleaved; medians of ${ROUNDS} rounds of ${FLOOR_PAIRS}; load average ${loadavg()[0]?.toFixed(2)}):`,
    );
    console.table(await floorComparison(url.toString(), keyPrefix));
    console.log("\nsummarization overhead, excluding the summarizer's own time (Redis + PostgreSQL):");
    console.table([await summarizationOverhead(url.toString(), keyPrefix)]);
  } finally {
    await deleteKeys(keyPrefix);
    await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
    await admin.end();
    await rm(dataDir, { recursive: true, force: true });
  }
}

const { values: flags } = parseArgs({
  options: { shards: { type: "string" }, replicas: { type: "boolean" } },
});
if (flags.shards !== undefined || flags.replicas) {
  const shards = Number(flags.shards ?? 1);
  if (!Number.isInteger(shards) || shards < 1) throw new Error(`--shards takes a whole number of 1 or more`);
  const { runScaleBench } = await import("./scale.js");
  await runScaleBench({
    shards,
    replicas: flags.replicas ?? false,
    adminUrl: ADMIN_URL,
    shape: { sessions: SESSIONS, turns: TURNS, concurrency: CONCURRENCY },
    rounds: Number(process.env.BENCH_ROUNDS ?? 3),
  });
} else {
  await main();
}
