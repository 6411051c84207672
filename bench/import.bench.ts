/**
 * `swisper-memory legacy import` throughput: messages imported per second from a generated
 * `swisper_sessions` table into a scratch database, through the library's write path (the same
 * importLegacySessions the CLI runs). Prints the table's size and the sessions' length
 * distribution with the figures; each run imports into a fresh tenant, so nothing is a duplicate.
 *
 * Env: BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test; a scratch database is
 * created and dropped), BENCH_REDIS_URL (unset: PostgreSQL alone; set: Redis + PostgreSQL, under
 * a key prefix of its own), BENCH_SESSIONS (2000), BENCH_RUNS (3), BENCH_BATCHES (messages per
 * addMessages call to compare, default "1000,100"), BENCH_CONCURRENCY (sessions at once, 4).
 */
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { importLegacySessions } from "../src/legacy/import.js";
import { PostgresLegacyStore } from "../src/legacy/legacy-store.js";
import { createMemoryManager } from "../src/manager/create-memory-manager.js";
import { PostgresDatabase } from "../src/storage/database.js";
import { connectRedis, type RedisConnection } from "../src/storage/redis-client.js";
import { generateLegacySessions, insertLegacySessions } from "../test/support/legacy-sessions.js";
import { createScratchDatabase } from "./scratch-database.js";

const ADMIN_URL = process.env.BENCH_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const REDIS_URL = process.env.BENCH_REDIS_URL;
const SESSIONS = Number(process.env.BENCH_SESSIONS ?? 2000);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const BATCHES = (process.env.BENCH_BATCHES ?? "1000,100").split(",").map(Number);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 4);
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
    for (const batchSize of BATCHES) {
      const rates: number[] = [];
      for (let run = 0; run < RUNS; run++) {
        const totals = await importLegacySessions({
          legacy,
          memory: memory.forTenant(`b${batchSize}r${run}`),
          batchSize,
          concurrency: CONCURRENCY,
        });
        rates.push(totals.messagesStored / totals.seconds);
        console.log(
          `  batch ${batchSize} run ${run + 1}: ${totals.messagesStored} messages in ${totals.seconds.toFixed(1)} s = ${Math.round(totals.messagesStored / totals.seconds)} messages/s`,
        );
      }
      const median = [...rates].sort((a, b) => a - b)[Math.floor(rates.length / 2)] ?? 0;
      console.log(
        `batch ${batchSize}, ${CONCURRENCY} sessions at once: median ${Math.round(median)} messages/s over ${RUNS} runs (target 20000)`,
      );
    }
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
