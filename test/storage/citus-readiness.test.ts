import { readdirSync, readFileSync } from "node:fs";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PostgresLegacyStore } from "../../src/legacy/legacy-store.js";
import { createMemoryManager, type MemoryManagerOptions } from "../../src/manager/create-memory-manager.js";
import type { MemoryManager } from "../../src/manager/memory-manager.js";
import { createMemoryService } from "../../src/service/index.js";
import { PostgresDatabase } from "../../src/storage/database.js";
import { connectRedis } from "../../src/storage/redis-client.js";
import { ExtractiveSummarizer } from "../../src/summarizer/extractive-summarizer.js";
import { cli } from "../cli/run-cli.js";
import { FAST_RESILIENCE, until, untilClosed } from "../faults/support/environment.js";
import { TABLE_SQL } from "../legacy/phase-support.js";
import { recordingLogger } from "../support/fixtures.js";
import { generateLegacySessions, insertLegacySessions } from "../support/legacy-sessions.js";
import { PostgresClusterProcess, RedisServerProcess } from "../support/processes.js";
import { SESSION_TABLES, workOutSession } from "../support/session-workout.js";

// Citus readiness: every statement the product issues against a session-scoped table is keyed by
// tenant and session_id, so that a distributed PostgreSQL (Citus, distributing the tables by
// their key) can route it to the one node holding the session. A PostgreSQL cluster of the test's
// own records every statement every process sends (pg_stat_statements) during a run that goes
// through every path: the library with and without Redis, summaries, a Redis outage and its stale
// marks, a PostgreSQL outage and its outbox replay, the idle sweep, the HTTP service and its
// probes, the operator commands, and the legacy migration phases. Each statement is then planned
// by the server (a generic plan, as the product's pool plans them), and every scan of a
// session-scoped table must be bound to a tenant and a session: by parameters, or by a join to
// something that is. The statements that legitimately span sessions are listed below, each with
// its reason; one that is neither keyed nor listed fails the test, and so does a listed one the
// run never issued (the list must not outlive the code). Besides those: the migrations (their
// statements, found in the migration files, run once per database under an advisory lock) and the
// legacy migration's tables (below). The health checks need no exception: /health reads one
// session's config, and the recovery probe is `SELECT 1`.

/** The statements that span sessions by design, and why. */
const CROSS_SESSION: readonly { statement: RegExp; reason: string }[] = [
  {
    statement: /^SELECT s\.tenant, s\.session_id FROM memory_sessions s\s+WHERE s\.updated_at < \$1/,
    reason:
      "the idle sweep (Transcript.idleUnsummarized): finds sessions idle for a day, once a minute; under Citus a multi-shard query, off the request path",
  },
  {
    statement: /^DELETE FROM memory_redis_stale\s+WHERE ctid = ANY\(ARRAY\(/,
    reason:
      "the stale-buffer sweep (Transcript.takeRedisStale): takes the marks of sessions whose Redis copy missed a write, after a Redis outage; multi-shard, off the request path",
  },
  {
    statement: /^SELECT s\.session_id, coalesce\(s\.title, s\.default_title\)[\s\S]*AS sort_at/,
    reason:
      "the session listing (SessionCatalog.list): a keyset page of one tenant's sessions from the (tenant, updated_at | created_at) index; under Citus a multi-shard query unless the tables are distributed by tenant",
  },
  {
    statement: /^WITH q AS \(SELECT websearch_to_tsquery/,
    reason:
      "full-text search (searchMessages): every message of one tenant, through the GIN index; multi-shard under Citus unless distributed by tenant",
  },
  {
    statement:
      /^SELECT session_id, next_seq - \$\d+ AS messages FROM memory_sessions\s+WHERE tenant = \$1 AND user_id = \$2/,
    reason:
      "eraseUser: finds one user's sessions (by the user index), each then erased by the keyed clearSessionMemory statements",
  },
  {
    statement: /^SELECT s\.tenant,\s+count\(\*\)::bigint AS sessions,/,
    reason:
      "`swisper-memory stats` without a session: the whole store's figures per tenant (an operator's report)",
  },
];

/**
 * Statements keyed by tenant and session_id row by row, that carry several sessions' rows in one
 * statement (arrays of parameters), and why.
 */
const BATCHED: readonly { statement: RegExp; reason: string }[] = [
  {
    statement: /^WITH input AS \(\s+SELECT i\.tenant, i\.session_id, i\.idempotency_key/,
    reason:
      "the append (Transcript's APPEND_SQL): group commit puts the appends that wait meanwhile, of any sessions, into one statement; each row is keyed by its own tenant and session_id. Under Citus, batch per shard (or per session)",
  },
];

/** Tables of the legacy migration, outside the session-keyed schema, and why. */
const LEGACY_TABLES: readonly { table: string; reason: string }[] = [
  {
    table: "swisper_sessions",
    reason:
      "the legacy system's own table (keyed by session_id alone), read and mirrored during the migration; not ours",
  },
  {
    table: "memory_legacy_outbox",
    reason:
      "the queue of writes for the legacy store, which has no tenants (the mirror serves one tenant): keyed by session_id alone, and scanned across sessions by the retry pass and `legacy status`; it is dropped once the migration is done",
  },
];

const TEST_TAG = "/* citus-readiness check */";

let postgres: PostgresClusterProcess;
let redis: RedisServerProcess;
let pool: pg.Pool;

beforeAll(async () => {
  [postgres, redis] = await Promise.all([
    PostgresClusterProcess.start({
      settings: {
        shared_preload_libraries: "pg_stat_statements",
        "pg_stat_statements.max": "10000",
        "pg_stat_statements.track": "all",
      },
    }),
    // Durable (append-only file, no eviction), so that writes wait in the outbox while PostgreSQL is away.
    RedisServerProcess.start({ persist: true, args: ["--maxmemory-policy", "noeviction"] }),
  ]);
  pool = new pg.Pool({ connectionString: postgres.url, max: 2 });
  pool.on("error", () => {});
  await pool.query(`${TEST_TAG} CREATE EXTENSION pg_stat_statements`);
  await pool.query(`${TEST_TAG} SELECT pg_stat_statements_reset()`);
}, 120_000);

afterAll(async () => {
  await pool?.end();
  await redis?.stop();
  await postgres?.stop();
});

const KEY_PREFIX = "citus";

function openManager(options: Partial<MemoryManagerOptions> = {}): Promise<MemoryManager> {
  return createMemoryManager({
    database: postgres.url,
    redis: redis.url,
    keyPrefix: KEY_PREFIX,
    logger: recordingLogger(),
    summarizer: new ExtractiveSummarizer(),
    sessionDefaults: { summary_trigger_tokens: 300, max_buffer_tokens: 500, keep_recent_tokens: 100 },
    resilience: FAST_RESILIENCE,
    summarization: { idleFinalizeAfterMs: 0, backoffBaseMs: 20, backoffMaxMs: 200 },
    ...options,
  });
}

/** A run through every path that talks to PostgreSQL. */
async function representativeRun(): Promise<void> {
  // The library with Redis (its first start applies the migrations), for two tenants.
  const withRedis = await openManager();
  await workOutSession(withRedis, "keys-redis", 12);
  await workOutSession(withRedis.forTenant("globex"), "keys-redis", 12);
  await withRedis.addMessage("kept", { role: "user", content: "a session left for the operator commands" });
  // The sessions as data: reading one session is keyed; listing, search and erasing a user span
  // the tenant's sessions.
  await withRedis.addMessages("leaving", [{ role: "user", content: "erase me" }], { user_id: "leaver" });
  await withRedis.listSessions({ order: "created_desc" });
  await withRedis.searchMessages({ q: "erase" });
  await withRedis.getTranscript("kept");
  await withRedis.updateSession("kept", { title: "Kept" });
  await withRedis.eraseUser("leaver");

  // Redis killed: writes mark their sessions stale; Redis back: the marks are swept.
  await redis.kill();
  for (let i = 0; i < 4; i++)
    await withRedis.addMessage("kept", { role: "user", content: `during the outage ${i}` });
  await redis.restart();
  await untilClosed(withRedis, ["redis"]);
  await until(async () => (await staleMarks()) === 0, "the stale marks are swept");

  // PostgreSQL paused: writes wait in the Redis outbox; PostgreSQL back: they are replayed. (The
  // outbox continues a buffer that Redis holds: the read loads it.)
  await withRedis.getContext("kept");
  await postgres.pause("SIGSTOP");
  try {
    await until(async () => {
      await withRedis
        .addMessage("kept", { role: "user", content: "while PostgreSQL is away" })
        .catch(() => {});
      return withRedis.circuitBreaker.postgres.getState() === "open";
    }, "the PostgreSQL breaker opens");
    const [ack] = await withRedis.addMessages("kept", [{ role: "user", content: "held in the outbox" }]);
    expect(ack?.provisional).toBe(true);
  } finally {
    await postgres.pause("SIGCONT");
  }
  await untilClosed(withRedis, ["postgres"]);
  await withRedis.addMessage("kept", { role: "user", content: "after the outage" });
  await withRedis.close();

  // The library without Redis (leases and buffers in PostgreSQL), and the idle sweep.
  const withoutRedis = await openManager({
    redis: false,
    summarization: { idleFinalizeAfterMs: 1, idleCheckIntervalMs: 50, backoffBaseMs: 20, backoffMaxMs: 200 },
  });
  await workOutSession(withoutRedis, "keys-sql", 12);
  await withoutRedis.addMessage("idle", { role: "user", content: "left idle" });
  await new Promise((resolve) => setTimeout(resolve, 300));
  await withoutRedis.waitForIdle();
  await withoutRedis.close();

  // The HTTP service and its probes.
  const serviceRedis = await connectRedis({ url: redis.url });
  const memory = await openManager({ redis: serviceRedis });
  const app = await createMemoryService({
    memory,
    redis: serviceRedis,
    keyPrefix: KEY_PREFIX,
    databaseKind: "postgres",
  });
  for (const url of [
    "/health",
    "/ready",
    "/metrics",
    "/v1/sessions/kept/context?max_tokens=500",
    "/v1/sessions/kept/stats",
    "/v1/sessions/kept/summaries",
    "/v1/sessions/kept/config",
    "/v1/sessions/kept/swisper-context",
  ]) {
    const response = await app.inject({ method: "GET", url });
    expect(response.statusCode, url).toBeLessThan(500);
  }
  await app.inject({
    method: "POST",
    url: "/v1/sessions/http/messages",
    payload: { role: "user", content: "over HTTP" },
  });
  await app.inject({ method: "DELETE", url: "/v1/sessions/http" });
  await app.close();
  await memory.close();
  await serviceRedis.close();

  // The legacy migration: its table beside ours, phase gradual (coexistence's writes, and sampled reads).
  const legacyDatabase = new PostgresDatabase({ connectionString: postgres.url, maxConnections: 2 });
  await legacyDatabase.exec(TABLE_SQL);
  await insertLegacySessions(legacyDatabase, generateLegacySessions({ sessions: 3, length: () => 6 }));
  const legacy = await openManager({
    legacy: { phase: "gradual", sampleRate: 1, store: new PostgresLegacyStore({ database: legacyDatabase }) },
  });
  await legacy.addMessage("mirrored", { role: "user", content: "mirrored into the legacy store" });
  await legacy.saveContext("mirrored", { session_id: "mirrored", step: "compare" });
  await legacy.getContext("mirrored");
  await legacy.clearSessionMemory("mirrored");
  await legacy.close();
  await legacyDatabase.close();

  // The operator commands.
  const env = {
    DATABASE_URL: postgres.url,
    REDIS_URL: redis.url,
    MEMORY_KEY_PREFIX: KEY_PREFIX,
    LEGACY_DATABASE_URL: postgres.url,
  };
  for (const argv of [
    ["migrate"],
    ["stats"],
    ["stats", "kept"],
    ["inspect", "kept"],
    ["legacy", "import"],
    ["legacy", "verify"],
    ["legacy", "status"],
    ["clear", "kept", "--yes"],
  ]) {
    const result = await cli(env, ...argv);
    expect(result.code, `${argv.join(" ")}: ${result.stderr}`).toBeLessThan(2);
  }
}

async function staleMarks(): Promise<number> {
  const { rows } = await pool.query<{ n: string }>(
    `${TEST_TAG} SELECT count(*) AS n FROM memory_redis_stale`,
  );
  return Number(rows[0]!.n);
}

interface Captured {
  query: string;
  calls: number;
}

/** Every statement recorded in the product's database, but the test's own. */
async function capturedStatements(): Promise<Captured[]> {
  const { rows } = await pool.query<{ query: string; calls: string }>(
    `${TEST_TAG} SELECT query, calls FROM pg_stat_statements
     WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())`,
  );
  return rows
    .filter((row) => !row.query.includes(TEST_TAG))
    .map((row) => ({ query: row.query.trim(), calls: Number(row.calls) }));
}

/** Without `--` comments, whitespace collapsed: to find a statement in a migration file. */
function normalized(sql: string): string {
  return sql
    .replace(/--[^\n]*/g, " ")
    .replace(/\s+/g, " ")
    .trim();
}

/** The migration files' text, normalized. */
const MIGRATIONS_TEXT = readdirSync(new URL("../../src/storage/migrations/", import.meta.url))
  .filter((name) => name.endsWith(".sql"))
  .map((name) =>
    normalized(readFileSync(new URL(`../../src/storage/migrations/${name}`, import.meta.url), "utf8")),
  )
  .join(" ; ");

type Verdict =
  | { kind: "not session-scoped" | "legacy" | "migration" | "keyed" }
  | { kind: "batched"; scans: string[] }
  | { kind: "cross-session"; scans: string[] }
  | { kind: "unplannable"; error: string };

interface PlanNode {
  "Node Type": string;
  "Relation Name"?: string;
  Alias?: string;
  "Subplan Name"?: string;
  "CTE Name"?: string;
  "Function Call"?: string;
  Plans?: PlanNode[];
  [field: string]: unknown;
}

/** The plan fields that constrain rows: a scan's own conditions and the joins' (any node's). */
const CONDITIONS = [
  "Index Cond",
  "Recheck Cond",
  "Filter",
  "Join Filter",
  "Hash Cond",
  "Merge Cond",
  "TID Cond",
];
const KEYS = ["tenant", "session_id"] as const;

function* nodesOf(node: PlanNode): Generator<PlanNode> {
  yield node;
  for (const child of node.Plans ?? []) yield* nodesOf(child);
}

/**
 * Whether every scan of a session-scoped table in `plan` is bound to one tenant and one session:
 * its tenant and session_id equal to parameters, or to the columns of something that is (a join,
 * transitively). Bound to a function of array parameters (unnest), a scan is keyed row by row but
 * the statement carries several sessions: "batched".
 */
function judgePlan(plan: PlanNode): Verdict {
  const nodes = [...nodesOf(plan)];
  // What each alias is: a session table's scan, a function over parameters, a CTE's scan, other.
  const sources = new Map<string, "params" | "array-params" | "pending">();
  const ctes = new Map<string, PlanNode>();
  for (const node of nodes) {
    const cte = /^CTE (.+)$/.exec(node["Subplan Name"] ?? "")?.[1];
    if (cte) ctes.set(cte, node);
    if (node.Alias && node["Function Call"]?.includes("$")) sources.set(node.Alias, "array-params");
  }
  // alias.column = target, from every condition anywhere in the plan (both directions).
  const bindings: { alias: string; column: string; target: string }[] = [];
  for (const node of nodes) {
    for (const field of CONDITIONS) {
      const condition = node[field];
      if (typeof condition !== "string") continue;
      for (const match of condition.matchAll(
        /(?:(\w+)\.)?(tenant|session_id) = (\$\d+|(\w+)\.(tenant|session_id))/g,
      )) {
        const alias = match[1] ?? node.Alias ?? "";
        bindings.push({ alias, column: match[2]!, target: match[3]! });
        if (match[4]) bindings.push({ alias: match[4], column: match[5]!, target: `${alias}.${match[2]}` });
      }
      for (const match of condition.matchAll(/(\$\d+) = (?:(\w+)\.)?(tenant|session_id)\b/g)) {
        bindings.push({ alias: match[2] ?? node.Alias ?? "", column: match[3]!, target: match[1]! });
      }
    }
  }
  // A CTE's scan is bound as the CTE's own scans are: by array parameters, else by its session scans.
  for (const node of nodes) {
    if (node["Node Type"] !== "CTE Scan" || !node.Alias || !node["CTE Name"]) continue;
    const body = ctes.get(node["CTE Name"]);
    if (
      body &&
      [...nodesOf(body)].some((inner) => inner.Alias && sources.get(inner.Alias) === "array-params")
    )
      sources.set(node.Alias, "array-params");
  }
  // Fixed point: (alias, column) is bound when it equals a parameter or a bound (alias, column).
  const bound = new Map<string, "params" | "array-params">();
  for (const [alias, kind] of sources)
    if (kind !== "pending") for (const key of KEYS) bound.set(`${alias}.${key}`, kind);
  for (let changed = true; changed; ) {
    changed = false;
    for (const { alias, column, target } of bindings) {
      const key = `${alias}.${column}`;
      const via = target.startsWith("$") ? "params" : bound.get(target);
      if (!via || bound.get(key) === "params" || bound.get(key) === via) continue;
      bound.set(key, via);
      changed = true;
    }
  }
  const unbound: string[] = [];
  const batched: string[] = [];
  for (const node of nodes) {
    const table = node["Relation Name"];
    if (
      !table ||
      !(SESSION_TABLES as readonly string[]).includes(table) ||
      !node["Node Type"].includes("Scan")
    )
      continue;
    const kinds = KEYS.map((key) => bound.get(`${node.Alias}.${key}`));
    const where = `${node["Node Type"]} on ${table} ${node.Alias}`;
    if (kinds.some((kind) => kind === undefined)) unbound.push(where);
    else if (kinds.includes("array-params")) batched.push(where);
  }
  if (unbound.length > 0) return { kind: "cross-session", scans: unbound };
  // Rows inserted from array parameters are keyed row by row, several sessions a statement.
  const fromArrays = [...sources.values()].includes("array-params");
  for (const node of nodes) {
    const table = node["Relation Name"];
    if (node["Node Type"] !== "ModifyTable" || node.Operation !== "Insert" || !fromArrays) continue;
    if (table && (SESSION_TABLES as readonly string[]).includes(table)) batched.push(`Insert on ${table}`);
  }
  if (batched.length > 0) return { kind: "batched", scans: batched };
  return { kind: "keyed" };
}

/**
 * pg_stat_statements writes constants as parameters, also where the grammar wants a literal: a
 * typed literal (`interval $7`) becomes a cast, `extract($10 FROM x)` becomes `date_part($10, x)`.
 */
function plannable(query: string): string {
  return query
    .replace(/\b(interval|timestamptz|timestamp|date|jsonb|json|numeric)\s+(\$\d+)/g, "$2::$1")
    .replace(/\bextract\((\$\d+) FROM /g, "date_part($1::text, ");
}

async function judge(client: pg.PoolClient, query: string): Promise<Verdict> {
  if (LEGACY_TABLES.some(({ table }) => new RegExp(`\\b${table}\\b`).test(query))) return { kind: "legacy" };
  if (!SESSION_TABLES.some((table) => new RegExp(`\\b${table}\\b`).test(query)))
    return { kind: "not session-scoped" };
  if (MIGRATIONS_TEXT.includes(normalized(query))) return { kind: "migration" };
  const text = plannable(query);
  const parameters = Math.max(0, ...[...text.matchAll(/\$(\d+)/g)].map((match) => Number(match[1])));
  try {
    await client.query(`${TEST_TAG} PREPARE judged AS ${text}`);
    const args = parameters > 0 ? `(${Array(parameters).fill("NULL").join(", ")})` : "";
    const { rows } = await client.query<{ "QUERY PLAN": [{ Plan: PlanNode }] }>(
      `${TEST_TAG} EXPLAIN (VERBOSE, COSTS OFF, FORMAT JSON) EXECUTE judged${args}`,
    );
    return judgePlan(rows[0]!["QUERY PLAN"][0].Plan);
  } catch (error) {
    return { kind: "unplannable", error: String(error) };
  } finally {
    await client.query(`${TEST_TAG} DEALLOCATE ALL`);
  }
}

const oneLine = (query: string) => query.replace(/\s+/g, " ").slice(0, 140);

describe("Citus readiness", () => {
  it("every statement on a session-scoped table is keyed by tenant and session_id, but the listed ones", async () => {
    await representativeRun();
    const statements = await capturedStatements();
    const client = await pool.connect();
    const verdicts: { query: string; calls: number; verdict: Verdict }[] = [];
    try {
      // As the product's pool plans them (PostgresDatabase: plan_cache_mode=force_generic_plan).
      await client.query(`${TEST_TAG} SET plan_cache_mode = force_generic_plan`);
      for (const { query, calls } of statements)
        verdicts.push({ query, calls, verdict: await judge(client, query) });
    } finally {
      client.release();
    }
    const count = (kind: Verdict["kind"]) => verdicts.filter(({ verdict }) => verdict.kind === kind).length;
    const problems: string[] = [];
    const listed = (list: readonly { statement: RegExp }[], query: string) =>
      list.find(({ statement }) => statement.test(normalized(query)));
    for (const { query, verdict } of verdicts) {
      if (verdict.kind === "unplannable")
        problems.push(`could not plan: ${oneLine(query)}: ${verdict.error}`);
      if (verdict.kind === "cross-session" && !listed(CROSS_SESSION, query))
        problems.push(`not keyed by tenant and session_id (${verdict.scans.join("; ")}): ${oneLine(query)}`);
      if (verdict.kind === "batched" && !listed(BATCHED, query))
        problems.push(`several sessions in one statement (${verdict.scans.join("; ")}): ${oneLine(query)}`);
      if (verdict.kind === "keyed" && (listed(CROSS_SESSION, query) || listed(BATCHED, query)))
        problems.push(`listed as an exception, but keyed: ${oneLine(query)}`);
    }
    for (const { statement } of [...CROSS_SESSION, ...BATCHED]) {
      if (!verdicts.some(({ query }) => statement.test(normalized(query))))
        problems.push(`listed, but the run never issued it: ${statement}`);
    }
    for (const { table } of LEGACY_TABLES) {
      if (!verdicts.some(({ query }) => query.includes(table)))
        problems.push(`the run never touched ${table}`);
    }
    console.log(
      `[citus] ${statements.length} statements: ${count("keyed")} keyed by tenant and session_id, ` +
        `${count("batched")} batched (keyed row by row), ${count("cross-session")} cross-session (listed), ` +
        `${count("migration")} migration, ${count("legacy")} legacy tables, ${count("not session-scoped")} on no session table`,
    );
    for (const { query, verdict } of verdicts)
      if (verdict.kind === "cross-session" || verdict.kind === "batched")
        console.log(`[citus] ${verdict.kind}: ${oneLine(query)}`);
    expect(problems).toEqual([]);
    // The run went through the paths that matter (a check of the capture itself).
    expect(count("keyed")).toBeGreaterThanOrEqual(18);

    // And the judge tells a keyed statement from one that is not (a check of the check).
    const examples: [string, Verdict["kind"]][] = [
      ["SELECT seq FROM memory_messages WHERE session_id = $1", "cross-session"],
      ["SELECT seq FROM memory_messages WHERE tenant = $1 ORDER BY seq LIMIT $2", "cross-session"],
      ["DELETE FROM memory_summaries WHERE tenant = $1", "cross-session"],
      [
        "SELECT m.seq FROM memory_messages m JOIN memory_sessions s ON s.tenant = m.tenant AND s.session_id = m.session_id",
        "cross-session",
      ],
      [
        "SELECT m.seq FROM memory_messages m JOIN memory_sessions s ON s.tenant = m.tenant AND s.session_id = m.session_id WHERE s.tenant = $1 AND s.session_id = $2",
        "keyed",
      ],
      ["UPDATE memory_sessions SET updated_at = now() WHERE tenant = $1 AND session_id = $2", "keyed"],
      [
        "INSERT INTO memory_redis_stale (tenant, session_id) SELECT t, s FROM unnest($1::text[], $2::text[]) AS u(t, s)",
        "batched",
      ],
    ];
    const judged = await pool.connect();
    try {
      await judged.query(`${TEST_TAG} SET plan_cache_mode = force_generic_plan`);
      for (const [query, kind] of examples) expect((await judge(judged, query)).kind, query).toBe(kind);
    } finally {
      judged.release();
    }
  }, 180_000);
});
