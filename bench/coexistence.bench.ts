/**
 * What migration phases `coexistence` and `full` cost a write: write p50/p95 through the library
 * with the phase off, coexistence (the write waits for its legacy append) and full (the legacy
 * append happens in the background), in one run, alternating rounds so that the machine's drift
 * falls on all alike. The ratios are the figures: the legacy store's own append (one upsert
 * statement) is the floor of what coexistence adds.
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
const PHASES = ["off", "coexistence", "full"] as const;
type Phase = (typeof PHASES)[number];
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
    const managers: Record<Phase, MemoryManager> = {
      off,
      coexistence: await createMemoryManager({ ...base, legacy: { phase: "coexistence", store } }),
      full: await createMemoryManager({ ...base, legacy: { phase: "full", store } }),
    };
    const samples: Record<Phase, number[]> = { off: [], coexistence: [], full: [] };
    for (const phase of PHASES) await writeRound(managers[phase], `warm-${phase}`);
    for (let round = 0; round < ROUNDS; round++) {
      for (const phase of PHASES)
        samples[phase].push(...(await writeRound(managers[phase], `${phase}-${round}`)));
    }
    const figures = Object.fromEntries(
      Object.entries(samples).map(([phase, latencies]) => [phase, summarize(latencies)]),
    ) as Record<Phase, ReturnType<typeof summarize>>;
    console.log(
      `${SESSIONS} sessions at once x ${WRITES} writes x ${ROUNDS} rounds per phase, PostgreSQL alone`,
    );
    for (const phase of PHASES) {
      const { p50, p95 } = figures[phase];
      console.log(`  ${phase.padEnd(12)} write p50 ${ms(p50)} ms, p95 ${ms(p95)} ms`);
    }
    for (const phase of ["coexistence", "full"] as const) {
      const ratio = (key: "p50" | "p95") => (figures[phase][key] / figures.off[key]).toFixed(2);
      console.log(`${phase} / off: p50 ${ratio("p50")}x, p95 ${ratio("p95")}x`);
    }
    for (const memory of Object.values(managers)) await memory.close();
  } finally {
    await db.close();
    await scratch.drop();
  }
}

await main();
