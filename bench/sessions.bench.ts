/**
 * Sessions as data at scale: listing p50/p95 at 10k and at 1M sessions (first page and a deep
 * page through a cursor, both orders, with and without a user filter), search p50/p95 over 1M
 * messages (words and substring mode), the 1M/10k ratios (the goal is flat: under 2x), and one
 * retention sweep over 1M sessions (dry, through the idle-time index), and export and import
 * messages per second (a tenant of BENCH_TRANSFER_SESSIONS sessions of 1 to 1000 messages,
 * exported to a file and imported from it into a fresh tenant, as the CLI streams them). The
 * sessions and messages are generated with set-based SQL straight into the memory tables of a
 * scratch database; the figures are read through the library. The load average is printed before
 * each part.
 *
 * Env: BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test; a scratch database is
 * created and dropped), BENCH_SESSIONS_SMALL (10000), BENCH_SESSIONS_LARGE (1000000: lower it on
 * a small machine), BENCH_SAMPLES (timed calls per figure, 40), BENCH_RUNS (3: each figure is the
 * median of the runs' p50 and p95), BENCH_TRANSFER_SESSIONS (400: 200,800 messages).
 */

import { once } from "node:events";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdtemp, rm, stat } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { createMemoryManager } from "../src/manager/create-memory-manager.js";
import type { MemoryManager } from "../src/manager/memory-manager.js";
import { encodeCursor } from "../src/sessions/cursor.js";
import { splitLines } from "../src/sessions/import.js";
import { candidatesSql } from "../src/sessions/retention.js";
import { PostgresDatabase } from "../src/storage/database.js";
import { createScratchDatabase } from "./scratch-database.js";

const ADMIN_URL = process.env.BENCH_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const SMALL = Number(process.env.BENCH_SESSIONS_SMALL ?? 10_000);
const LARGE = Number(process.env.BENCH_SESSIONS_LARGE ?? 1_000_000);
const SAMPLES = Number(process.env.BENCH_SAMPLES ?? 40);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const TRANSFER_SESSIONS = Number(process.env.BENCH_TRANSFER_SESSIONS ?? 400);
/** Sessions per user, the same at every scale: a user's listing is as long at 10k as at 1M. */
const SESSIONS_PER_USER = 50;
const WORDS = [
  "laptop",
  "battery",
  "screen",
  "order",
  "refund",
  "delivery",
  "price",
  "warranty",
  "keyboard",
  "charger",
  "bag",
  "light",
  "heavy",
  "cheap",
  "fast",
  "slow",
  "return",
  "invoice",
  "account",
  "login",
];

interface Figure {
  p50: number;
  p95: number;
}

function say(line: string): void {
  process.stdout.write(`${line}\n`);
}

function load(part: string): void {
  const [one, five, fifteen] = loadavg().map((value) => value.toFixed(2));
  say(`\n== ${part} (load average ${one} ${five} ${fifteen})`);
}

function percentile(sorted: number[], fraction: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * fraction))] ?? Number.NaN;
}

function median(values: number[]): number {
  return percentile(
    [...values].sort((a, b) => a - b),
    0.5,
  );
}

/** p50 and p95 of SAMPLES calls, the median of RUNS runs (one untimed call first). */
async function measure(call: () => Promise<unknown>): Promise<Figure> {
  await call();
  const p50s: number[] = [];
  const p95s: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    const times: number[] = [];
    for (let sample = 0; sample < SAMPLES; sample++) {
      const started = performance.now();
      await call();
      times.push(performance.now() - started);
    }
    times.sort((a, b) => a - b);
    p50s.push(percentile(times, 0.5));
    p95s.push(percentile(times, 0.95));
  }
  return { p50: median(p50s), p95: median(p95s) };
}

const ms = (value: number) => `${value.toFixed(2)} ms`;

/**
 * `count` sessions of `tenant`, one user message each (so `count` messages), created over the
 * last year and updated up to a day after; every 10000th message holds a Cyrillic phrase, every
 * 1000th the word lighthouse.
 */
async function generate(db: PostgresDatabase, tenant: string, count: number): Promise<number> {
  const started = performance.now();
  // The text indexes are built once after the insert: much faster than a million GIN inserts.
  const { rows: textIndexes } = await db.query<{ name: string; definition: string }>(
    `SELECT indexname AS name, indexdef AS definition FROM pg_indexes
     WHERE tablename = 'memory_messages' AND indexname IN ('memory_messages_search', 'memory_messages_substring')`,
  );
  for (const index of textIndexes) await db.query(`DROP INDEX ${index.name}`);
  await db.query(
    `INSERT INTO memory_sessions (tenant, session_id, next_seq, created_at, updated_at, user_id,
                                  default_title, last_user_message)
     SELECT $1, 's' || lpad(n::text, 8, '0'), 2, at, least(now(), at + ((n::bigint * 7919) % 86400) * interval '1 second'),
            'user-' || (n % greatest(1, $2::integer / ${SESSIONS_PER_USER})), 'Session ' || n, 'Message ' || n
     FROM generate_series(1, $2::integer) AS n,
          LATERAL (SELECT now() - interval '365 days' * (1 - n::float8 / $2::integer) AS at) AS t`,
    [tenant, count],
  );
  await db.query(
    `INSERT INTO memory_messages (tenant, session_id, seq, message, tokens, created_at)
     SELECT $1, 's' || lpad(n::text, 8, '0'), 1,
            json_build_object('role', 'user', 'content',
              'Message ' || n || ': ' || ($3::text[])[1 + (n * 7) % 20] || ' ' || ($3::text[])[1 + (n * 13) % 20]
              || ' ' || ($3::text[])[1 + (n * 31) % 20]
              || CASE WHEN n % 10000 = 0 THEN ' синий кит плывёт на север' ELSE '' END
              || CASE WHEN n % 1000 = 7 THEN ' lighthouse' ELSE '' END),
            12, now() - interval '365 days' * (1 - n::float8 / $2::integer)
     FROM generate_series(1, $2::integer) AS n`,
    [tenant, count, WORDS],
  );
  await db.transaction(async (tx) => {
    await tx.query("SET LOCAL maintenance_work_mem = '256MB'");
    for (const index of textIndexes) await tx.query(index.definition);
  });
  await db.query("ANALYZE memory_sessions");
  await db.query("ANALYZE memory_messages");
  return (performance.now() - started) / 1000;
}

/** A cursor for the page after the session at `offset` in `order`: a deep page without walking there. */
async function deepCursor(
  db: PostgresDatabase,
  tenant: string,
  order: "updated_desc" | "created_desc",
  offset: number,
  userId?: string,
): Promise<string> {
  const column = order === "updated_desc" ? "updated_at" : "created_at";
  const { rows } = await db.query<{ at: string; session_id: string }>(
    `SELECT to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS at, session_id
     FROM memory_sessions WHERE tenant = $1 AND ($3::text IS NULL OR user_id = $3)
     ORDER BY ${column} DESC, session_id DESC OFFSET $2 LIMIT 1`,
    [tenant, offset, userId ?? null],
  );
  const row = rows[0];
  if (!row) throw new Error(`no session at offset ${offset}`);
  return encodeCursor([order === "updated_desc" ? "u" : "c", row.at, row.session_id]);
}

type Listing = Record<string, Figure>;

async function listingFigures(db: PostgresDatabase, memory: MemoryManager, count: number): Promise<Listing> {
  const figures: Listing = {};
  const user = "user-7";
  for (const order of ["updated_desc", "created_desc"] as const) {
    const deep = await deepCursor(db, memory.tenant, order, Math.floor(count / 2));
    const deepOfUser = await deepCursor(db, memory.tenant, order, SESSIONS_PER_USER / 2, user);
    figures[`${order} first page`] = await measure(() => memory.listSessions({ order }));
    figures[`${order} deep page`] = await measure(() => memory.listSessions({ order, cursor: deep }));
    figures[`${order} user first page`] = await measure(() => memory.listSessions({ order, user_id: user }));
    figures[`${order} user deep page`] = await measure(() =>
      memory.listSessions({ order, user_id: user, cursor: deepOfUser }),
    );
  }
  return figures;
}

const SEARCHES = {
  "words, rare phrase (1 in 10000)": { q: '"синий кит"' },
  "words, 1 in 1000 (lighthouse)": { q: "lighthouse" },
  "substring, rare (ий ки)": { q: "ий ки", mode: "substring" },
  "substring, 1 in 1000 (ighthous)": { q: "ighthous", mode: "substring" },
} as const;

async function searchFigures(memory: MemoryManager): Promise<Listing> {
  const figures: Listing = {};
  for (const [name, options] of Object.entries(SEARCHES)) {
    const first = await memory.searchMessages(options);
    if (first.results.length === 0) throw new Error(`search ${name} found nothing`);
    figures[name] = await measure(() => memory.searchMessages(options));
  }
  return figures;
}

function printFigures(small: Listing, large: Listing): void {
  say(`${"".padEnd(36)} ${`${SMALL}`.padStart(22)} ${`${LARGE}`.padStart(22)}  ratio p50 / p95`);
  for (const [name, figure] of Object.entries(small)) {
    const big = large[name] as Figure;
    const ratio = `${(big.p50 / figure.p50).toFixed(2)}x / ${(big.p95 / figure.p95).toFixed(2)}x`;
    say(
      `${name.padEnd(36)} ${`${ms(figure.p50)} / ${ms(figure.p95)}`.padStart(22)} ${`${ms(big.p50)} / ${ms(big.p95)}`.padStart(22)}  ${ratio}`,
    );
  }
}

/** One dry retention sweep over the large tenant: what is idle past a year minus three days. */
async function sweepFigure(db: PostgresDatabase): Promise<void> {
  const memory = await createMemoryManager({
    database: db,
    redis: false,
    autoMigrate: false,
    summarization: { idleFinalizeAfterMs: 0 },
    retention: { defaultDays: 362, sweepIntervalMs: 0 },
  });
  try {
    const started = performance.now();
    const swept = await memory.sweepRetention({ dry_run: true });
    const seconds = (performance.now() - started) / 1000;
    say(`dry sweep: ${swept.sessions_erased} sessions due (batches of 100) in ${seconds.toFixed(2)} s`);
    // The plan the sweep makes: generic, once per connection, on the indexes (see indexPlanned).
    const rows = await db.transaction(async (tx) => {
      await tx.query("SET LOCAL plan_cache_mode = force_generic_plan");
      for (const setting of ["enable_seqscan", "enable_sort", "enable_hashjoin"]) {
        await tx.query(`SET LOCAL ${setting} = off`);
      }
      await tx.query(`PREPARE sweep_candidates AS ${candidatesSql(100)}`);
      return (
        await tx.query<{ "QUERY PLAN": string }>(
          `EXPLAIN ANALYZE EXECUTE sweep_candidates(now(), 362, 362, '{}', '{}', '-infinity', '', '')`,
        )
      ).rows;
    });
    say(`sweep plan: ${rows.map((row) => row["QUERY PLAN"].trim()).join(" | ")}`);
  } finally {
    await memory.close();
  }
}

/**
 * `count` sessions of `tenant` with 1 to 1000 messages each (session n has 1 + (n * 397) % 1000),
 * alternating user and assistant, with times and tokens as the write path stores them; returns
 * the number of messages.
 */
async function generateTranscripts(db: PostgresDatabase, tenant: string, count: number): Promise<number> {
  const length = "(1 + (n * 397) % 1000)";
  await db.query(
    `INSERT INTO memory_sessions (tenant, session_id, next_seq, created_at, updated_at, default_title)
     SELECT $1, 't' || lpad(n::text, 6, '0'), ${length} + 1, now() - interval '30 days', now(), 'Transcript ' || n
     FROM generate_series(1, $2::integer) AS n`,
    [tenant, count],
  );
  const { rows } = await db.query<{ messages: string }>(
    `WITH inserted AS (
       INSERT INTO memory_messages (tenant, session_id, seq, message, tokens, created_at)
       SELECT $1, 't' || lpad(n::text, 6, '0'), seq,
              json_build_object('role', CASE WHEN seq % 2 = 1 THEN 'user' ELSE 'assistant' END,
                'content', 'Turn ' || seq || ': ' || ($3::text[])[1 + (n * seq) % 20] || ' and '
                  || ($3::text[])[1 + (n + seq * 7) % 20] || ', under 1500 CHF if you can',
                'timestamp', 1750000000 + n * 10000 + seq),
              14, now() - interval '30 days' + seq * interval '1 second'
       FROM generate_series(1, $2::integer) AS n, generate_series(1, ${length}) AS seq
       RETURNING 1
     )
     SELECT count(*)::text AS messages FROM inserted`,
    [tenant, count, WORDS],
  );
  await db.query("ANALYZE memory_messages");
  return Number(rows[0]?.messages ?? 0);
}

/** Export to a file, then import from it into a fresh tenant; messages per second of each. */
async function transferFigures(memory: MemoryManager, messages: number): Promise<void> {
  const folder = await mkdtemp(join(tmpdir(), "swm-bench-transfer-"));
  const file = join(folder, "export.jsonl");
  const rates = { export: [] as number[], import: [] as number[] };
  try {
    for (let run = 0; run < RUNS; run++) {
      let started = performance.now();
      const out = createWriteStream(file);
      for await (const line of memory.forTenant("transfer").exportSessions()) {
        if (!out.write(`${line}\n`)) await once(out, "drain");
      }
      out.end();
      await once(out, "finish");
      rates.export.push(messages / ((performance.now() - started) / 1000));
      started = performance.now();
      const totals = await memory
        .forTenant(`restored${run}`)
        .importSessions(splitLines(createReadStream(file)));
      rates.import.push(totals.messages_imported / ((performance.now() - started) / 1000));
      if (totals.messages_imported !== messages)
        throw new Error(`imported ${totals.messages_imported} of ${messages} messages`);
    }
    const size = (await stat(file)).size / 1024 / 1024;
    say(
      `export: median ${Math.round(median(rates.export))} messages/s; import: median ${Math.round(median(rates.import))} messages/s (${messages} messages, ${size.toFixed(1)} MiB of JSON Lines, ${RUNS} runs, PostgreSQL durable)`,
    );
  } finally {
    await rm(folder, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const scratch = await createScratchDatabase(ADMIN_URL, "swm_bench_sessions");
  // Generating a million rows and building their indexes takes minutes, not the 10 s default.
  const db = new PostgresDatabase({ connectionString: scratch.url, queryTimeoutMs: 30 * 60 * 1000 });
  const memory = await createMemoryManager({
    database: db,
    redis: false,
    summarization: { idleFinalizeAfterMs: 0 },
    retention: { sweepIntervalMs: 0 },
  });
  try {
    say(
      `sessions bench: ${SMALL} and ${LARGE} sessions (one message each), ${SAMPLES} calls x ${RUNS} runs per figure`,
    );
    load(`generating ${SMALL} sessions`);
    say(`generated in ${(await generate(db, "small", SMALL)).toFixed(1)} s`);
    const small = memory.forTenant("small");
    load(`listing at ${SMALL}`);
    const listingSmall = await listingFigures(db, small, SMALL);
    load(`search over ${SMALL} messages`);
    const searchSmall = await searchFigures(small);
    load(`generating ${LARGE} sessions`);
    say(`generated in ${(await generate(db, "large", LARGE)).toFixed(1)} s`);
    const large = memory.forTenant("large");
    load(`listing at ${LARGE}`);
    const listingLarge = await listingFigures(db, large, LARGE);
    load(`search over ${LARGE} messages`);
    const searchLarge = await searchFigures(large);
    load("results (p50 / p95, medians of runs)");
    say("listing (limit 20):");
    printFigures(listingSmall, listingLarge);
    say("search (limit 20):");
    printFigures(searchSmall, searchLarge);
    load(`retention sweep over ${SMALL + LARGE} sessions`);
    await sweepFigure(db);
    load(`generating ${TRANSFER_SESSIONS} sessions of 1 to 1000 messages`);
    const messages = await generateTranscripts(db, "transfer", TRANSFER_SESSIONS);
    load("export and import");
    await transferFigures(memory, messages);
  } finally {
    await memory.close();
    await db.close();
    await scratch.drop();
  }
}

await main();
