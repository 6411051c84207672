/**
 * What migration phase `coexistence` costs a write: write p50/p95 through the library with the
 * phase off and on (every acknowledged write also appended to `swisper_sessions`), in one run,
 * alternating off/on rounds so that the machine's drift falls on both alike. The ratio is the
 * figure: the legacy store's own append (one upsert statement) is the floor of what it adds.
 *
 * Env: BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test; a scratch database
 * is created and dropped, holding both the memory's tables and `swisper_sessions`),
 * BENCH_SESSIONS (8 at once), BENCH_WRITES (per session and round, 150), BENCH_ROUNDS (3 per phase).
 */
import { readFileSync } from "node:fs";
import { PostgresLegacyStore } from "../src/legacy/legacy-store.js";
import { createMemoryManager } from "../src/manager/create-memory-manager.js";
import type { MemoryManager } from "../src/manager/memory-manager.js";
import { PostgresDatabase } from "../src/storage/database.js";
import { createScratchDatabase } from "./scratch-database.js";
import { ms, summarize } from "./workload.js";

const ADMIN_URL = process.env.BENCH_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const SESSIONS = Number(process.env.BENCH_SESSIONS ?? 8);
const WRITES = Number(process.env.BENCH_WRITES ?? 150);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const TABLE_SQL = readFileSync(new URL("../test/legacy/swisper_sessions.sql", import.meta.url), "utf8");

/** SESSIONS sessions at once, each WRITES messages in sequence; every write's latency in ms. */
async function writeRound(memory: MemoryManager, tag: string): Promise<number[]> {
  const latencies: number[] = [];
  await Promise.all(
    Array.from({ length: SESSIONS }, async (_, session) => {
      for (let i = 0; i < WRITES; i++) {
        const started = performance.now();
        await memory.addMessage(`${tag}-${session}`, {
          role: i % 2 ? "assistant" : "user",
          content: `Turn ${i}: a light laptop under 1500 CHF with a good keyboard, please.`,
        });
        latencies.push(performance.now() - started);
      }
    }),
  );
  return latencies;
}

async function main(): Promise<void> {
  const scratch = await createScratchDatabase(ADMIN_URL, "swm_bench_coexist");
  const db = new PostgresDatabase({ connectionString: scratch.url });
  try {
    await db.exec(TABLE_SQL);
    const base = { database: db, redis: false as const, env: {}, summarization: { idleFinalizeAfterMs: 0 } };
    const off = await createMemoryManager(base);
    const store = new PostgresLegacyStore({ database: db });
    const on = await createMemoryManager({ ...base, legacy: { phase: "coexistence", store } });
    const samples: Record<"off" | "coexistence", number[]> = { off: [], coexistence: [] };
    await writeRound(off, "warm-off");
    await writeRound(on, "warm-on");
    for (let round = 0; round < ROUNDS; round++) {
      samples.off.push(...(await writeRound(off, `off-${round}`)));
      samples.coexistence.push(...(await writeRound(on, `on-${round}`)));
    }
    const figures = Object.fromEntries(
      Object.entries(samples).map(([phase, latencies]) => [phase, summarize(latencies)]),
    ) as Record<"off" | "coexistence", ReturnType<typeof summarize>>;
    console.log(
      `${SESSIONS} sessions at once x ${WRITES} writes x ${ROUNDS} rounds per phase, PostgreSQL alone`,
    );
    for (const phase of ["off", "coexistence"] as const) {
      const { p50, p95 } = figures[phase];
      console.log(`  ${phase.padEnd(12)} write p50 ${ms(p50)} ms, p95 ${ms(p95)} ms`);
    }
    const ratio = (key: "p50" | "p95") => (figures.coexistence[key] / figures.off[key]).toFixed(2);
    console.log(`coexistence / off: p50 ${ratio("p50")}x, p95 ${ratio("p95")}x`);
    await on.close();
    await off.close();
  } finally {
    await db.close();
    await scratch.drop();
  }
}

await main();
