/**
 * `swisper-memory legacy import` throughput: messages imported per second from a generated
 * `swisper_sessions` table into a scratch database, through the library's write path (the same
 * importLegacySessions the CLI runs). Prints the table's size and the sessions' length
 * distribution with the figures; each run imports into a fresh tenant, so nothing is a duplicate.
 *
 * The floor, measured in the same run and alternating with the import: the same rows read and
 * converted, and inserted into the same table (same indexes) by one plain INSERT a batch, with no
 * logic (no validation, no token counting, no session row, no idempotency check, no buffer). The
 * import's rate is its first pass (the transcript); the second pass (summaries of the sessions
 * that reached their trigger) is printed on its own.
 *
 * Env: BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test; a scratch database is
 * created and dropped), BENCH_REDIS_URL (unset: PostgreSQL alone; set: Redis + PostgreSQL, under
 * a key prefix of its own), BENCH_SESSIONS (2000), BENCH_RUNS (3), BENCH_BATCH (messages per
 * call, 1000), BENCH_CONCURRENCY (sessions at once, 16: the import's default).
 */
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { loadavg } from "node:os";
import { convertSession, importLegacySessions, legacyRows } from "../src/legacy/import.js";
import { PostgresLegacyStore } from "../src/legacy/legacy-store.js";
import { createMemoryManager } from "../src/manager/create-memory-manager.js";
import { type Database, PostgresDatabase } from "../src/storage/database.js";
import { connectRedis, type RedisConnection } from "../src/storage/redis-client.js";
import { generateLegacySessions, insertLegacySessions } from "../test/support/legacy-sessions.js";
import { cpuSecondsOf } from "./proc-cpu.js";
import { createScratchDatabase } from "./scratch-database.js";

const ADMIN_URL = process.env.BENCH_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const REDIS_URL = process.env.BENCH_REDIS_URL;
const SESSIONS = Number(process.env.BENCH_SESSIONS ?? 2000);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const BATCH = Number(process.env.BENCH_BATCH ?? 1000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 16);
const TABLE_SQL = readFileSync(new URL("../test/legacy/swisper_sessions.sql", import.meta.url), "utf8");

/** Most sessions short, some long, a few very long: 60% 1-20, 30% 21-100, 9% 101-500, 1% 501-3000. */
function sessionLength(index: number): number {
  const roll = (index * 2654435761) % 1000;
  const spread = (index * 40503) % 1000;
  if (roll < 600) return 1 + (spread % 20);
  if (roll < 900) return 21 + (spread % 80);
  if (roll < 990) return 101 + (spread % 400);
  return 501 + ((spread * 3) % 2500);
}

function distribution(lengths: number[]): string {
  const buckets: [string, number, number][] = [
    ["1-20", 1, 20],
    ["21-100", 21, 100],
    ["101-500", 101, 500],
    ["501+", 501, Number.POSITIVE_INFINITY],
  ];
  const parts = buckets.map(([name, low, high]) => {
    const count = lengths.filter((length) => length >= low && length <= high).length;
    return `${name}: ${count}`;
  });
  const sorted = [...lengths].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)];
  return `${parts.join(", ")} sessions; median ${median}, max ${sorted.at(-1)} messages`;
}

/** This process's CPU time (all threads, user and system) since `start`, in µs. */
function cpuMicros(start: NodeJS.CpuUsage): number {
  const { user, system } = process.cpuUsage(start);
  return user + system;
}

function median(values: number[]): number {
  return [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0;
}

/** The floor: the same rows read, converted and inserted with no logic; messages per second. */
async function floorRun(db: Database, legacy: PostgresLegacyStore, tenant: string): Promise<number> {
  const started = performance.now();
  let stored = 0;
  const rows = legacyRows({ legacy });
  const worker = async () => {
    for (let next = await rows.next(); !next.done; next = await rows.next()) {
      const { messages } = convertSession(next.value, "UTC");
      for (let start = 0; start < messages.length; start += BATCH) {
        const batch = messages.slice(start, start + BATCH);
        await db.query(
          `INSERT INTO memory_messages (tenant, session_id, seq, idempotency_key, message, tokens, tokens_estimated)
           SELECT $1, $2, $3 + i.ord, i.key, i.message::json, 0, false
           FROM unnest($4::text[], $5::text[]) WITH ORDINALITY AS i(key, message, ord)`,
          [tenant, next.value.sessionId, start, batch.map((m) => m.id), batch.map((m) => JSON.stringify(m))],
        );
        stored += batch.length;
      }
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  return stored / ((performance.now() - started) / 1000);
}

async function main(): Promise<void> {
  const scratch = await createScratchDatabase(ADMIN_URL, "swm_bench_import");
  const db = new PostgresDatabase({ connectionString: scratch.url });
  let redis: RedisConnection | null = null;
  try {
    await db.exec(TABLE_SQL);
    const sessions = generateLegacySessions({ sessions: SESSIONS, length: sessionLength });
    await insertLegacySessions(db, sessions);
    const lengths = sessions.map((session) => session.chatHistory.length);
    const total = lengths.reduce((sum, length) => sum + length, 0);
    const { rows } = await db.query<{ size: string }>(
      "SELECT pg_size_pretty(pg_total_relation_size('swisper_sessions')) AS size",
    );
    console.log(`swisper_sessions: ${SESSIONS} sessions, ${total} messages, ${rows[0]?.size} on disk`);
    console.log(`lengths: ${distribution(lengths)}`);
    const keyPrefix = `bench-import-${randomBytes(4).toString("hex")}`;
    redis = REDIS_URL ? await connectRedis({ url: REDIS_URL }) : null;
    console.log(
      `memory: ${redis ? "Redis + PostgreSQL" : "PostgreSQL alone"}, durable (synchronous_commit on)`,
    );
    const memory = await createMemoryManager({
      database: db,
      redis: redis ?? false,
      env: { MEMORY_KEY_PREFIX: keyPrefix },
      summarization: { idleFinalizeAfterMs: 0 },
    });
    const legacy = new PostgresLegacyStore({ database: db });
    const rates = { import: [] as number[], floor: [] as number[] };
    for (let run = 0; run < RUNS; run++) {
      const load = loadavg()[0]?.toFixed(2);
      let cpu = process.cpuUsage();
      let postgres = cpuSecondsOf("postgres");
      const floor = await floorRun(db, legacy, `floor${run}`);
      const floorCpu = cpuMicros(cpu);
      const floorPostgres = cpuSecondsOf("postgres") - postgres;
      rates.floor.push(floor);
      let pass = 0;
      cpu = process.cpuUsage();
      postgres = cpuSecondsOf("postgres");
      let passPostgres = 0;
      const totals = await importLegacySessions({
        legacy,
        memory: memory.forTenant(`import${run}`),
        batchSize: BATCH,
        concurrency: CONCURRENCY,
        onSummarizing: () => {
          pass = cpuMicros(cpu);
          passPostgres = cpuSecondsOf("postgres") - postgres;
        },
      });
      const rate = totals.messagesStored / totals.seconds;
      rates.import.push(rate);
      const perMessage = (micros: number) => (micros / totals.messagesStored).toFixed(0);
      console.log(
        `  run ${run + 1} (load ${load}): floor ${Math.round(floor)} messages/s, this process ${perMessage(floorCpu)} µs CPU a message, PostgreSQL ${perMessage(floorPostgres * 1e6)} µs; import ${totals.messagesStored} messages in ${totals.seconds.toFixed(1)} s = ${Math.round(rate)} messages/s (${(rate / floor).toFixed(2)}x), this process ${perMessage(pass)} µs CPU a message, PostgreSQL ${perMessage(passPostgres * 1e6)} µs; then ${totals.sessionsSummarized} sessions summarized in ${totals.summarySeconds.toFixed(1)} s`,
      );
    }
    const floor = median(rates.floor);
    const imported = median(rates.import);
    console.log(
      `import, batch ${BATCH}, ${CONCURRENCY} sessions at once: median ${Math.round(imported)} messages/s over ${RUNS} runs (target 20000); floor ${Math.round(floor)} messages/s; ratio ${(imported / floor).toFixed(2)}`,
    );
    await memory.close();
    if (redis) {
      const keys = await redis.scanKeys(`${keyPrefix}:*`);
      for (let i = 0; i < keys.length; i += 500) await redis.send(["DEL", ...keys.slice(i, i + 500)]);
    }
  } finally {
    await redis?.close();
    await db.close();
    await scratch.drop();
  }
}

await main();
