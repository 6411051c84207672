import pg from "pg";
import { afterAll, beforeAll, expect, it } from "vitest";
import { readMemoryEnvironment } from "../../src/environment.js";
import { ValidationError } from "../../src/errors.js";
import { createMemoryManager } from "../../src/manager/create-memory-manager.js";
import type { MemoryManager } from "../../src/manager/memory-manager.js";
import { candidatesSql } from "../../src/sessions/retention.js";
import type { Database } from "../../src/storage/database.js";
import { recordingLogger } from "../support/fixtures.js";
import { createTestDatabase, uniqueName, useTestServers } from "../support/servers.js";
import { SESSION_TABLES } from "../support/session-tables.js";
import { inEveryDatabase, type Opener } from "./deployments.js";

const servers = useTestServers();
const DAY_MS = 24 * 60 * 60 * 1000;

// Tenants: one on the default (7 days), one kept forever, one with 10 days.
const ON_DEFAULT = uniqueName("keep_default");
const FOREVER = uniqueName("keep_forever");
const TEN_DAYS = uniqueName("keep_ten");
/** The fake clock the sweeper judges idleness by; the database writes at the real time. */
let clockMs = Date.now();

/** Every row and Redis key the sessions have left, by table ("redis" for the keys). */
async function leftovers(db: Database, tenant: string, sessions: readonly string[]) {
  const counts: Record<string, number> = {};
  for (const table of SESSION_TABLES) {
    const { rows } = await db.query<{ n: string | number }>(
      `SELECT count(*) AS n FROM ${table} WHERE tenant = $1 AND session_id = ANY($2::text[])`,
      [tenant, sessions],
    );
    const n = Number(rows[0]?.n ?? 0);
    if (n > 0) counts[table] = n;
  }
  if (servers.redis && db === servers.database.db) {
    const keys = await servers.redis.redis.scanKeys(`${servers.redis.keyPrefix}:*`);
    const mine = keys.filter((key) => sessions.some((session) => key.includes(`{${tenant}:${session}}`)));
    if (mine.length > 0) counts.redis = mine.length;
  }
  return counts;
}

/** Writes `count` messages and reads the context (so that Redis holds a copy), with a summary. */
async function writeSession(memory: MemoryManager, sessionId: string, count: number): Promise<void> {
  await memory.addMessages(
    sessionId,
    Array.from({ length: count }, (_, turn) => ({
      role: "user" as const,
      content: `Turn ${turn} of ${sessionId}`,
    })),
  );
  await memory.saveContext(sessionId, { session_id: sessionId, current_state: "idle" });
  await memory.summaryStore.addSummary(sessionId, "Talked.");
  await memory.getContext(sessionId);
}

function retentionSuite(open: Opener): void {
  let root: MemoryManager;
  let db: Database;
  let close: () => Promise<void>;
  const tenant = (name: string) => root.forTenant(name);
  beforeAll(async () => {
    clockMs = Date.now();
    const opened = await open();
    root = opened.memory;
    db = opened.db;
    close = opened.close;
    const onDefault = tenant(ON_DEFAULT);
    await writeSession(onDefault, "plain", 3);
    await onDefault.setSessionConfig("long", { retention_days: 30 });
    await writeSession(onDefault, "long", 2);
    await writeSession(tenant(FOREVER), "plain", 4);
    await tenant(FOREVER).setSessionConfig("short", { retention_days: 1 });
    await writeSession(tenant(FOREVER), "short", 5);
    await writeSession(tenant(TEN_DAYS), "plain", 6);
    await root.waitForIdle();
  });
  afterAll(async () => {
    await close();
  });

  it("erases nothing before any session is idle past its retention", async () => {
    clockMs = Date.now() + 12 * 60 * 60 * 1000;
    expect(await root.sweepRetention()).toEqual({
      sessions_erased: 0,
      messages_erased: 0,
      dry_run: false,
      ran: true,
    });
    expect((await tenant(FOREVER).listSessions()).sessions).toHaveLength(2);
  });

  it("erases exactly the idle sessions (a fake clock), everywhere, and nothing else", async () => {
    clockMs = Date.now() + 8 * DAY_MS;
    // A dry run counts and erases nothing.
    expect(await root.sweepRetention({ dry_run: true })).toMatchObject({
      sessions_erased: 2,
      messages_erased: 8,
    });
    expect(await tenant(ON_DEFAULT).getSession("plain")).not.toBeNull();

    const before = root.retentionErased();
    // The tenant default's 7 days and the session's own 1 day have passed; 30, 10 and forever not.
    expect(await root.sweepRetention()).toEqual({
      sessions_erased: 2,
      messages_erased: 8,
      dry_run: false,
      ran: true,
    });
    expect(root.retentionErased()).toEqual({ sessions: before.sessions + 2, messages: before.messages + 8 });
    expect(await leftovers(db, ON_DEFAULT, ["plain"])).toEqual({});
    expect(await leftovers(db, FOREVER, ["short"])).toEqual({});
    for (const [name, session] of [
      [ON_DEFAULT, "plain"],
      [FOREVER, "short"],
    ] as const) {
      expect(await tenant(name).getSession(session)).toBeNull();
      expect((await tenant(name).getContext(session)).buffer_messages).toEqual([]);
      expect(await tenant(name).loadContext(session)).toBeNull();
      expect((await tenant(name).getTranscript(session)).messages).toEqual([]);
    }
    const kept = async (name: string) =>
      (await tenant(name).listSessions()).sessions.map((session) => [
        session.session_id,
        session.message_count,
      ]);
    expect(await kept(ON_DEFAULT)).toEqual([["long", 2]]);
    expect(await kept(FOREVER)).toEqual([["plain", 4]]);
    expect(await kept(TEN_DAYS)).toEqual([["plain", 6]]);
    expect((await tenant(ON_DEFAULT).getContext("long")).buffer_messages).toHaveLength(2);
  });

  it("erases the longer retentions when their time comes, and never a session kept forever", async () => {
    clockMs = Date.now() + 31 * DAY_MS;
    expect(await root.sweepRetention()).toMatchObject({ sessions_erased: 2, messages_erased: 8 });
    expect(await leftovers(db, ON_DEFAULT, ["long"])).toEqual({});
    expect(await leftovers(db, TEN_DAYS, ["plain"])).toEqual({});
    clockMs = Date.now() + 365 * 100 * DAY_MS;
    expect(await root.sweepRetention()).toMatchObject({ sessions_erased: 0 });
    expect((await tenant(FOREVER).getSession("plain"))?.message_count).toBe(4);
  });

  it("keeps a session written after the sweep read it (the guard, under the row lock)", async () => {
    const memory = tenant(ON_DEFAULT);
    await memory.addMessage("busy", { role: "user", content: "still here" });
    expect(await memory.eraseSessionIf("busy", async () => false)).toBe(false);
    expect((await memory.getTranscript("busy")).messages).toHaveLength(1);
    expect((await memory.getContext("busy")).buffer_messages).toHaveLength(1);
  });

  it("sweeps one process at a time: a lease held elsewhere is waited for, an expired one taken", async () => {
    const memory = tenant(ON_DEFAULT);
    await memory.addMessage("leased", { role: "user", content: "old" });
    clockMs = Date.now() + 8 * DAY_MS;
    await db.query(
      `INSERT INTO memory_retention_lease (name, holder, expires_at) VALUES ('retention', 'elsewhere', now() + interval '1 hour')
       ON CONFLICT (name) DO UPDATE SET holder = 'elsewhere', expires_at = now() + interval '1 hour'`,
    );
    expect(await root.sweepRetention()).toMatchObject({ ran: false, sessions_erased: 0 });
    expect(await memory.getSession("leased")).not.toBeNull();
    await db.query("UPDATE memory_retention_lease SET expires_at = now() - interval '1 second'");
    // "leased", and "busy" of the test before: both idle 8 days now.
    expect(await root.sweepRetention()).toMatchObject({ ran: true, sessions_erased: 2 });
    expect(await memory.getSession("leased")).toBeNull();
    expect(await memory.getSession("busy")).toBeNull();
  });

  it("refuses a bad retention_days, naming the key", async () => {
    for (const value of [0, 1.5, 36_501, "7"]) {
      const error = await tenant(ON_DEFAULT)
        .setSessionConfig("x", { retention_days: value as never })
        .catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(ValidationError);
      expect((error as ValidationError).field).toBe("config.retention_days");
    }
    const config = await tenant(ON_DEFAULT).setSessionConfig("x", { retention_days: null });
    expect(config.retention_days).toBeNull();
  });
}

inEveryDatabase("retention", servers, retentionSuite, {
  retention: {
    defaultDays: 7,
    tenantDays: { [FOREVER]: null, [TEN_DAYS]: 10 },
    sweepIntervalMs: 0,
    now: () => clockMs,
  },
});

it("reads the idle-time index to find the sessions to erase, in its generic plan", async () => {
  if (!servers.database.url) return;
  const plan = await servers.database.db.transaction(async (tx) => {
    // As the sweep plans it: once per connection, for any parameters, on the indexes.
    await tx.query("SET LOCAL plan_cache_mode = force_generic_plan");
    for (const setting of ["enable_seqscan", "enable_sort", "enable_hashjoin"]) {
      await tx.query(`SET LOCAL ${setting} = off`);
    }
    await tx.query(`PREPARE sweep_candidates AS ${candidatesSql(100)}`);
    const { rows } = await tx.query<{ "QUERY PLAN": string }>(
      `EXPLAIN EXECUTE sweep_candidates(now(), 7, 7, '{}', '{}', '-infinity', '', '')`,
    );
    await tx.query("DEALLOCATE sweep_candidates");
    return rows.map((row) => row["QUERY PLAN"]).join("\n");
  });
  expect(plan).toMatch(/Index (Only )?Scan using memory_sessions_by_idle/);
  expect(plan).not.toMatch(/Sort|Seq Scan|Hash/);
});

it("refuses bad retention settings, naming the variable or option", async () => {
  for (const [env, field] of [
    [{ MEMORY_RETENTION_DAYS: "0" }, "MEMORY_RETENTION_DAYS"],
    [{ MEMORY_RETENTION_DAYS: "seven" }, "MEMORY_RETENTION_DAYS"],
    [{ MEMORY_RETENTION_TENANT_DAYS: "acme=30" }, "MEMORY_RETENTION_TENANT_DAYS"],
    [{ MEMORY_RETENTION_SWEEP_SECONDS: "-1" }, "MEMORY_RETENTION_SWEEP_SECONDS"],
  ] as const) {
    let error: unknown;
    try {
      readMemoryEnvironment(env);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).field).toBe(field);
  }
  expect(readMemoryEnvironment({ MEMORY_RETENTION_TENANT_DAYS: "acme:30, beta:forever" })).toMatchObject({
    MEMORY_RETENTION_TENANT_DAYS: new Map([
      ["acme", 30],
      ["beta", null],
    ]),
  });
  for (const [retention, field] of [
    [{ defaultDays: 0 }, "retention.defaultDays"],
    [{ tenantDays: { acme: 2.5 } }, "retention.tenantDays.acme"],
    [{ sweepIntervalMs: -5 }, "retention.sweepIntervalMs"],
  ] as const) {
    const error = await createMemoryManager({
      database: servers.database.db,
      redis: false,
      autoMigrate: false,
      logger: recordingLogger(),
      retention,
    }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).field).toBe(field);
  }
});

// Plans are made once per connection (generic plans), often while the tables are still empty: a
// sweep or a search planned then must still read indexes, never whole tables, as they grow.
it("sweeps and searches without reading a table sequentially, on plans made on a fresh database", async () => {
  if (!servers.database.url) return;
  const database = await createTestDatabase();
  const url = database.url as string;
  const tables = ["memory_sessions", "memory_session_configs", "memory_retention_lease", "memory_messages"];
  const scans = async () => {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    const { rows } = await client.query<{ relname: string; seq_scan: string }>(
      "SELECT relname, seq_scan FROM pg_stat_user_tables WHERE relname = ANY($1)",
      [tables],
    );
    await client.end();
    return Object.fromEntries(rows.map((row) => [row.relname, Number(row.seq_scan)]));
  };
  try {
    const fresh = await createMemoryManager({
      database: url,
      redis: false,
      logger: recordingLogger(),
      retention: { defaultDays: 1, sweepIntervalMs: 0, now: () => Date.now() + 2 * DAY_MS },
    });
    const before = await scans();
    await fresh.sweepRetention();
    await fresh.searchMessages({ q: "kit" });
    await fresh.searchMessages({ q: "kit", mode: "substring" });
    for (const session of ["a", "b", "c"]) await fresh.addMessage(session, { role: "user", content: "kit" });
    await fresh.setSessionConfig("c", { retention_days: 30 });
    expect(await fresh.sweepRetention()).toMatchObject({ sessions_erased: 2 });
    expect((await fresh.searchMessages({ q: "kit", mode: "substring" })).results).toHaveLength(1);
    // Closing ends the server processes, which report their counts as they exit.
    await fresh.close();
    await new Promise((resolve) => setTimeout(resolve, 200));
    const after = await scans();
    expect(
      Object.fromEntries(tables.map((table) => [table, (after[table] ?? 0) - (before[table] ?? 0)])),
    ).toEqual(Object.fromEntries(tables.map((table) => [table, 0])));
  } finally {
    await database.drop();
  }
});
